-- Failed sign-ins as a break-glass identity in [from, to): `breakglass.attempt` alerts.
-- Parameters: from_ms, to_ms (Int64, epoch milliseconds). Alerts may be stored twice before a
-- merge, so they are counted by id.
SELECT uniqExact(alert_id) AS attempts
FROM alerts
WHERE type = 'breakglass.attempt'
  AND time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
  AND time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
