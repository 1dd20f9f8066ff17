-- Successful credential changes in [since, to) that may be rotation evidence for the given
-- principals; the report decides per credential which of them count.
-- Parameters: since_ms, to_ms (Int64, epoch milliseconds); principals (Array(String), lower-case:
-- IAM user names, Okta logins, 'root').
-- The action list is fixed: CloudTrail password, login profile, access key and MFA changes;
-- Okta password and factor resets. Ordinary users change passwords and keys all day, so the
-- principal filter runs here: done by the principal (or Root), or naming it as a target.
SELECT
  toString(source) AS source, id, toUnixTimestamp64Milli(time) AS time_ms, toString(action) AS action,
  actor_name, toString(actor_type) AS actor_type, account, org, targets
FROM events
-- Every test in PREWHERE, the fixed action list (a LowCardinality column) first: the rows are
-- decided on small columns, and id, time and the rest are read only for granules holding evidence.
PREWHERE action IN (
    'signin.amazonaws.com:PasswordUpdated',
    'iam.amazonaws.com:ChangePassword',
    'iam.amazonaws.com:UpdateLoginProfile',
    'iam.amazonaws.com:CreateAccessKey',
    'iam.amazonaws.com:DeleteAccessKey',
    'iam.amazonaws.com:EnableMFADevice',
    'iam.amazonaws.com:DeactivateMFADevice',
    'user.account.reset_password',
    'user.account.update_password',
    'user.mfa.factor.reset_all'
  )
  AND outcome = 'success'
  AND source IN ('cloudtrail', 'okta')
  AND (
    (actor_type = 'Root' AND has({principals:Array(String)}, 'root'))
    OR lower(actor_name) IN {principals:Array(String)}
    -- One pass over the targets for every principal (ASCII case-insensitive, as positionCaseInsensitive);
    -- multiSearchAny takes at most 255 needles, so more principals are searched one by one.
    OR if(length({principals:Array(String)}) <= 255,
          multiSearchAnyCaseInsensitive(targets, arrayMap(p -> concat('"name":"', p, '"'), {principals:Array(String)})),
          arrayExists(p -> positionCaseInsensitive(targets, concat('"name":"', p, '"')) > 0, {principals:Array(String)}))
  )
  AND time >= fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC')
  AND time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
ORDER BY time_ms, id
LIMIT 1 BY source, id
