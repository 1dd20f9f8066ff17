-- The oldest stored event of one CloudTrail account or Okta org before `to`: where "no rotation
-- seen" stops being evidence. Raw events removed by retention move it forward.
-- Parameters: source (String: cloudtrail | okta), scope (String: the account or org), to_ms (Int64).
-- Read in the sort key's order (source, day) and stopped at the first row: the first day of
-- history is read, not all of it.
SELECT toUnixTimestamp64Milli(time) AS since_ms
FROM events
WHERE source = {source:String}
  AND time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
  AND if(source = 'cloudtrail', account, org) = {scope:String}
ORDER BY source, toDate(time), time
LIMIT 1
