-- Successful credential changes in [since, to) that may be rotation evidence for the given
-- principals; the report decides per credential which of them count.
-- Parameters: since_ms, to_ms (Int64, epoch milliseconds); principals (Array(String), lower-case:
-- IAM user names, Okta logins, 'root').
-- `credential_changes` holds the successful CloudTrail password, login profile, access key and MFA
-- changes and Okta password and factor resets of `events`, kept beside them as they are stored
-- (migration 16): the period's few candidates, not every event of it. Ordinary users change
-- passwords and keys all day, so the principal filter runs here: done by the principal (or Root),
-- or naming it as a target. Stored at least once, as events are: one row per (source, id).
SELECT
  toString(source) AS source, id, toUnixTimestamp64Milli(time) AS time_ms, toString(action) AS action,
  actor_name, toString(actor_type) AS actor_type, account, org, targets
FROM credential_changes
WHERE time >= fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC')
  AND time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
  AND (
    (actor_type = 'Root' AND has({principals:Array(String)}, 'root'))
    OR lower(actor_name) IN {principals:Array(String)}
    -- One pass over the targets for every principal (ASCII case-insensitive, as positionCaseInsensitive);
    -- multiSearchAny takes at most 255 needles, so more principals are searched one by one.
    OR if(length({principals:Array(String)}) <= 255,
          multiSearchAnyCaseInsensitive(targets, arrayMap(p -> concat('"name":"', p, '"'), {principals:Array(String)})),
          arrayExists(p -> positionCaseInsensitive(targets, concat('"name":"', p, '"')) > 0, {principals:Array(String)}))
  )
ORDER BY time_ms, id
LIMIT 1 BY source, id
