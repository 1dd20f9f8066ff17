-- Every version of the given tickets updated before `to`, oldest first: the ticket timeline of the
-- activity report (requested, approved, closed). Parameters: ids (Array(String)), to_ms (Int64).
-- A version may be stored twice before a merge: one row per (ticket, updated_at), the latest received.
SELECT
  ticket_id, toUnixTimestamp64Milli(updated_at) AS updated_ms, toString(status) AS status, requester, approvers,
  toUnixTimestamp64Milli(not_before) AS not_before_ms, toUnixTimestamp64Milli(not_after) AS not_after_ms,
  toString(origin) AS origin
FROM tickets
WHERE ticket_id IN {ids:Array(String)}
  AND updated_at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
ORDER BY ticket_id, updated_ms, received_at DESC
LIMIT 1 BY ticket_id, updated_ms
