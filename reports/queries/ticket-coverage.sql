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
-- Two passes instead of one per finding kind: the engine inlines a CTE at every reference, so six
-- UNION branches read the sessions, tickets and alerts six times over. Each pass emits 0..n kinds
-- per row (ARRAY JOIN); the columns of a kind are those it always had.
SELECT * FROM
(
  -- Tickets of the period nobody used, and among them the self-approved ones (once, in the period
  -- their window ends).
  SELECT
    kind, t.ticket_id AS ticket_id, t.identities AS identities, '' AS session_id,
    t.requester AS requester, t.approvers AS approvers, t.not_before_ms AS not_before_ms, t.not_after_ms AS not_after_ms,
    toInt64(-1) AS start_ms, toInt64(-1) AS end_ms, toInt64(0) AS uses, toInt64(-1) AS early_ms, toInt64(-1) AS overrun_ms,
    if(kind = 'unused_ticket', '', 'self_approved') AS reason
  FROM ticket AS t
  ARRAY JOIN if(has(arrayMap(a -> lower(trimBoth(a)), t.approvers), lower(trimBoth(t.requester))),
                ['unused_ticket', 'self_approval'], ['unused_ticket']) AS kind
  WHERE t.status = 'approved'
    AND t.not_after_ms >= {from_ms:Int64} AND t.not_after_ms < {to_ms:Int64}
    AND t.ticket_id NOT IN (SELECT ticket_id FROM used)

  UNION ALL

  -- Sessions of the period: without a ticket, or measured against the ticket they began under
  -- (a self-approval per use, an early use, a window overrun).
  SELECT
    kind,
    if(kind = 'use_without_ticket', '', t.ticket_id),
    if(kind = 'use_without_ticket', [s.identity], t.identities),
    s.session_id,
    if(kind = 'use_without_ticket', '', t.requester),
    if(kind = 'use_without_ticket', [], t.approvers),
    if(kind = 'use_without_ticket', toInt64(-1), t.not_before_ms),
    if(kind = 'use_without_ticket', toInt64(-1), t.not_after_ms),
    s.start_ms, s.end_ms, toInt64(-1),
    if(kind = 'early_use', t.not_before_ms - s.start_ms, toInt64(-1)),
    if(kind = 'window_overrun', s.end_ms - t.not_after_ms, toInt64(-1)),
    if(kind = 'self_approval', 'self_approved', s.reason)
  FROM session AS s
  LEFT JOIN (SELECT *, 1 AS known FROM ticket) AS t ON t.ticket_id = s.ticket_id
  ARRAY JOIN arrayConcat(
    if(s.ticket_id = '', ['use_without_ticket'], []),
    if(s.ticket_id != '' AND t.known = 1 AND has(arrayMap(a -> lower(trimBoth(a)), t.approvers), lower(trimBoth(t.requester))),
       ['self_approval'], []),
    if(s.ticket_id != '' AND t.known = 1 AND s.start_ms < t.not_before_ms, ['early_use'], []),
    if(s.ticket_id != '' AND t.known = 1 AND s.end_ms > t.not_after_ms, ['window_overrun'], [])
  ) AS kind
  WHERE s.start_ms >= {from_ms:Int64}
)
ORDER BY kind, ticket_id, session_id
