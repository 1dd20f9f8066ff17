-- Ticket coverage findings for [from, to). Parameters: from_ms, to_ms (Int64, epoch milliseconds).
-- A ticket is judged by its latest version updated before `to` (so a re-run later gives the same
-- rows); a session by its latest version. Sentinels instead of NULL: '' for no id, -1 for no time.
--   unused_ticket       approved, window ended in the period, no session ever linked to it
--   use_without_ticket  a session in the period with no ticket at all
--   self_approval       a session in the period under a ticket its requester approved (one per use);
--                       a self-approved ticket never used, in the period its window ends
--   early_use           a session in the period that began before its ticket's window (early_ms)
--   window_overrun      a session in the period that ran on after its ticket's window (overrun_ms)
-- A session that began under a ticket and later fell outside it ends up linked to the ticket
-- that came closest at the end; the `breakglass.authorized` alert keeps the ticket it began
-- under. Both count as uses, and a session is measured against the ticket it began under.
WITH
  ticket AS (
    SELECT
      ticket_id, identities, requester, approvers, toString(status) AS status,
      toUnixTimestamp64Milli(not_before) AS not_before_ms, toUnixTimestamp64Milli(not_after) AS not_after_ms
    FROM tickets
    WHERE updated_at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
    ORDER BY updated_at DESC, received_at DESC
    LIMIT 1 BY ticket_id
  ),
  began AS (
    SELECT session_id, any(ticket_id) AS began_ticket
    FROM alerts
    WHERE type = 'breakglass.authorized' AND ticket_id != '' AND time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
    GROUP BY session_id
  ),
  last AS (
    SELECT
      session_id, toString(identity) AS identity, ticket_id, toString(reason) AS reason,
      toUnixTimestamp64Milli(start) AS start_ms, toUnixTimestamp64Milli(end) AS end_ms
    FROM sessions
    WHERE start < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
    ORDER BY version DESC
    LIMIT 1 BY session_id
  ),
  session AS (
    SELECT l.session_id AS session_id, l.identity AS identity, if(b.began_ticket != '', b.began_ticket, l.ticket_id) AS ticket_id,
           l.reason AS reason, l.start_ms AS start_ms, l.end_ms AS end_ms
    FROM last AS l
    LEFT JOIN began AS b ON b.session_id = l.session_id
  ),
  used AS (
    SELECT ticket_id, toInt64(uniqExact(session_id)) AS uses
    FROM (
      SELECT session_id, ticket_id FROM last WHERE ticket_id != ''
      UNION ALL
      SELECT session_id, began_ticket FROM began
    )
    GROUP BY ticket_id
  )
SELECT * FROM
(
  SELECT
    'unused_ticket' AS kind, t.ticket_id AS ticket_id, t.identities AS identities, '' AS session_id,
    t.requester AS requester, t.approvers AS approvers, t.not_before_ms AS not_before_ms, t.not_after_ms AS not_after_ms,
    toInt64(-1) AS start_ms, toInt64(-1) AS end_ms, toInt64(0) AS uses, toInt64(-1) AS early_ms, toInt64(-1) AS overrun_ms,
    '' AS reason
  FROM ticket AS t
  WHERE t.status = 'approved'
    AND t.not_after_ms >= {from_ms:Int64} AND t.not_after_ms < {to_ms:Int64}
    AND t.ticket_id NOT IN (SELECT ticket_id FROM used)

  UNION ALL

  -- A self-approved ticket never used: reported once, in the period its window ends.
  SELECT
    'self_approval', t.ticket_id, t.identities, '', t.requester, t.approvers, t.not_before_ms, t.not_after_ms,
    toInt64(-1), toInt64(-1), toInt64(0), toInt64(-1), toInt64(-1), 'self_approved'
  FROM ticket AS t
  WHERE t.status = 'approved'
    AND t.not_after_ms >= {from_ms:Int64} AND t.not_after_ms < {to_ms:Int64}
    AND t.ticket_id NOT IN (SELECT ticket_id FROM used)
    AND has(arrayMap(a -> lower(trimBoth(a)), t.approvers), lower(trimBoth(t.requester)))

  UNION ALL

  -- Each use of a self-approved ticket, in the period of the use.
  SELECT
    'self_approval', t.ticket_id, t.identities, s.session_id, t.requester, t.approvers, t.not_before_ms, t.not_after_ms,
    s.start_ms, s.end_ms, toInt64(-1), toInt64(-1), toInt64(-1), 'self_approved'
  FROM session AS s
  INNER JOIN ticket AS t ON t.ticket_id = s.ticket_id
  WHERE s.start_ms >= {from_ms:Int64} AND s.ticket_id != ''
    AND has(arrayMap(a -> lower(trimBoth(a)), t.approvers), lower(trimBoth(t.requester)))

  UNION ALL

  SELECT
    'use_without_ticket', '', [s.identity], s.session_id, '', [], toInt64(-1), toInt64(-1),
    s.start_ms, s.end_ms, toInt64(-1), toInt64(-1), toInt64(-1), s.reason
  FROM session AS s
  WHERE s.start_ms >= {from_ms:Int64} AND s.ticket_id = ''

  UNION ALL

  SELECT
    'early_use', t.ticket_id, t.identities, s.session_id, t.requester, t.approvers, t.not_before_ms, t.not_after_ms,
    s.start_ms, s.end_ms, toInt64(-1), t.not_before_ms - s.start_ms, toInt64(-1), s.reason
  FROM session AS s
  INNER JOIN ticket AS t ON t.ticket_id = s.ticket_id
  WHERE s.start_ms >= {from_ms:Int64} AND s.ticket_id != '' AND s.start_ms < t.not_before_ms

  UNION ALL

  SELECT
    'window_overrun', t.ticket_id, t.identities, s.session_id, t.requester, t.approvers, t.not_before_ms, t.not_after_ms,
    s.start_ms, s.end_ms, toInt64(-1), toInt64(-1), s.end_ms - t.not_after_ms, s.reason
  FROM session AS s
  INNER JOIN ticket AS t ON t.ticket_id = s.ticket_id
  WHERE s.start_ms >= {from_ms:Int64} AND s.ticket_id != '' AND s.end_ms > t.not_after_ms
)
ORDER BY kind, ticket_id, session_id
