-- Every break-glass credential seen in a session that started before `to`: one row per
-- (identity, principal, scope). Parameters: to_ms (Int64, epoch milliseconds).
-- `assumed_role` is true when the credential's first session began with sts:AssumeRole (the
-- principal is then the caller, and the break-glass credential is a role: nothing to rotate).
-- Only that one event per credential is looked up, by (source, day, id), the events sort key.
WITH
  credential AS (
    SELECT
      identity, source, principal, scope,
      argMin(first_event_id, start) AS first_event, min(start) AS first_start,
      max(principal LIKE '%:assumed-role/%') AS role_principal
    FROM (
      -- Every version, not the latest of each: what is read here is set when a session opens and
      -- never changes (detectors/sessions.ts), so the versions group alike and no sort is needed.
      SELECT toString(identity) AS identity, toString(source) AS source, principal,
             multiIf(source = 'cloudtrail', account, source = 'okta', org, cluster) AS scope,
             first_event_id, start
      FROM sessions
      WHERE start < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
    )
    GROUP BY identity, source, principal, scope
  ),
  assumed AS (
    SELECT DISTINCT id
    FROM events
    WHERE source = 'cloudtrail' AND action = 'sts.amazonaws.com:AssumeRole'
      AND (toDate(time), id) IN (SELECT toDate(first_start), first_event FROM credential WHERE source = 'cloudtrail')
  )
SELECT
  identity, source, principal, scope,
  toUInt8(first_event IN (SELECT id FROM assumed)) AS assumed_role,
  toUInt8(role_principal) AS role_principal
FROM credential
ORDER BY identity, principal, scope
