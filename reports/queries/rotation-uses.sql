-- The uses of break-glass credentials in [from, to): the latest version of every session that started
-- in the period, with only what the rotation report reads (sessions.sql also joins detections and
-- revocations and returns 30 columns, which the rotation report does not need).
-- Parameters: from_ms, to_ms (Int64, epoch milliseconds).
SELECT
  session_id, toString(identity) AS identity, toString(source) AS source, principal, account, org, cluster,
  toUnixTimestamp64Milli(end) AS end_ms
FROM sessions
WHERE start >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
  AND start < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
ORDER BY version DESC
LIMIT 1 BY session_id
