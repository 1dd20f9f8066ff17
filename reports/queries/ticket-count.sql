-- Approved tickets whose window overlaps [from, to), judged by their latest version before `to`.
-- Parameters: from_ms, to_ms (Int64, epoch milliseconds).
SELECT count() AS tickets
FROM
(
  SELECT toString(status) AS status, toUnixTimestamp64Milli(not_before) AS not_before_ms, toUnixTimestamp64Milli(not_after) AS not_after_ms
  FROM tickets
  WHERE updated_at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
  ORDER BY updated_at DESC, received_at DESC
  LIMIT 1 BY ticket_id
)
WHERE status = 'approved' AND not_before_ms < {to_ms:Int64} AND not_after_ms >= {from_ms:Int64}
