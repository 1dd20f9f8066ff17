-- Failed sign-ins as a break-glass identity in [from, to): `breakglass.attempt` alerts, one row each.
-- Parameters: from_ms, to_ms (Int64, epoch milliseconds). Alerts may be stored twice before a
-- merge, so one row per alert id.
SELECT
  toUnixTimestamp64Milli(time) AS time_ms, identity, toString(source) AS source, principal, source_ip,
  reason, event_ids[1] AS event_id, alert_id
FROM alerts
WHERE type = 'breakglass.attempt'
  AND time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
  AND time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
ORDER BY time_ms, alert_id
LIMIT 1 BY alert_id
