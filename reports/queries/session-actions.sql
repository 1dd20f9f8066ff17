-- Every stored event of each break-glass session that started in [from, to), for the activity report.
-- Parameters: from_ms, to_ms (Int64, epoch milliseconds).
-- A session keeps its keys as `identity \0 key`, where the key is the source's session handle (AWS
-- access key id, Okta externalSessionId, Kubernetes user@IP) or `ip:<source IP>` when the event had
-- none. An event belongs to the session when its handle is one of those keys and its time lies in
-- [start, end]; an `ip:` key also needs the session's principal, as an IP alone is shared.
-- Failed sign-ins (`breakglass.attempt`) are never session events: the report lists them apart.
-- Events are stored at least once (ReplacingMergeTree): one row per (source, id).
WITH
  session_key AS (
    -- The latest version of each session, one row per key.
    SELECT session_id, source, principal, start, end, substring(k, position(k, '\0') + 1) AS key
    FROM (
      SELECT session_id, toString(source) AS source, principal, keys, start, end
      FROM sessions
      WHERE start >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
        AND start < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
      ORDER BY version DESC
      LIMIT 1 BY session_id
    )
    ARRAY JOIN keys AS k
  ),
  candidate AS (
    -- Events carrying a key of any version (a later version only adds keys and moves `end` on), from
    -- the period's start to the last session's end: the time filter prunes parts, the key set the rest.
    SELECT toString(source) AS source, id, time, toString(action) AS action, targets, toString(outcome) AS outcome,
           if(session_key != '', session_key, concat('ip:', source_ip)) AS key, actor_name
    FROM events
    WHERE time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
      AND time <= (
        SELECT max(end) FROM sessions
        WHERE start >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC') AND start < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
      )
      AND if(session_key != '', session_key, concat('ip:', source_ip)) IN (
        SELECT substring(k, position(k, '\0') + 1) FROM sessions ARRAY JOIN keys AS k
        WHERE start >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC') AND start < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
      )
      AND id NOT IN (
        SELECT arrayJoin(event_ids) FROM alerts
        WHERE type = 'breakglass.attempt' AND time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
      )
    ORDER BY ingested_at DESC
    LIMIT 1 BY source, id
  ),
  category AS (
    SELECT session_id, event_ids[1] AS event_id, arrayStringConcat(arraySort(groupUniqArray(toString(category))), '+') AS categories
    FROM alerts
    WHERE type = 'breakglass.activity' AND category != '' AND time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
      AND session_id IN (
        SELECT session_id FROM sessions
        WHERE start >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC') AND start < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
      )
    GROUP BY session_id, event_id
  )
SELECT
  k.session_id AS session_id, toUnixTimestamp64Milli(c.time) AS time_ms, c.action AS action, c.targets AS targets,
  c.outcome AS outcome, cat.categories AS category, c.id AS event_id
FROM candidate AS c
INNER JOIN session_key AS k ON k.source = c.source AND k.key = c.key
LEFT JOIN category AS cat ON cat.session_id = k.session_id AND cat.event_id = c.id
WHERE c.time >= k.start AND c.time <= k.end
  AND (NOT startsWith(k.key, 'ip:') OR c.actor_name = k.principal)
ORDER BY session_id, time_ms, event_id
LIMIT 1 BY session_id, event_id
