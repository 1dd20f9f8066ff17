-- The oldest stored event of one CloudTrail account or Okta org before `to`: where "no rotation
-- seen" stops being evidence. Raw events removed by retention move it forward.
-- Parameters: source (String: cloudtrail | okta), scope (String: the account or org), to_ms (Int64).
-- First the day, read in the sort key's order (source, day) and stopped at the first matching row;
-- then the earliest time of that day alone (the key prunes every other day). Ordering by `time`
-- directly would sort the whole first day of every part.
SELECT toUnixTimestamp64Milli(time) AS since_ms
FROM events
WHERE source = {source:String}
  AND time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
  AND if(source = 'cloudtrail', account, org) = {scope:String}
  AND toDate(time) = (
    SELECT toDate(time)
    FROM events
    WHERE source = {source:String}
      AND time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
      AND if(source = 'cloudtrail', account, org) = {scope:String}
    ORDER BY source, toDate(time)
    LIMIT 1
  )
ORDER BY time
LIMIT 1
