import type { Store } from '../core/store/client.js';

/**
 * What the console reads from the store. Items keep the store's column names (the API returns
 * them as they are); times are ISO 8601 UTC. Every value is a query parameter.
 */
export type Row = Record<string, unknown>;

const ISO = { date_time_output_format: 'iso', output_format_json_quote_64bit_integers: 0 } as const;

async function rows<T = Row>(store: Store, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const result = await store.client.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: ISO as never });
  return result.json<T>();
}

const SESSION_COLUMNS = `session_id, version, identity, source, principal, verdict, reason, ticket_id, approvers, first_event_id,
  unauthorized_event_id, start, end, events, activity_command, activity_data, activity_config, source_ips, account, org,
  cluster, detected_at, keys`;

/** The latest revocation outcome per session, joined onto session lists. */
const REVOCATION_STATE = `SELECT session_id, argMax(outcome, completed_at) AS revocation_outcome, argMax(target, completed_at) AS revocation_target
  FROM (SELECT * FROM revocations ORDER BY completed_at DESC LIMIT 1 BY revocation_id) GROUP BY session_id`;

export interface SessionQuery {
  /** Only sessions with an event at or after this time (open sessions); null = all. */
  activeSinceMs: number | null;
  limit: number;
}

export async function listSessions(store: Store, q: SessionQuery): Promise<Row[]> {
  return rows(
    store,
    `SELECT s.*, r.revocation_outcome AS revocation_outcome, r.revocation_target AS revocation_target
     FROM (SELECT ${SESSION_COLUMNS} FROM sessions
           WHERE {all:UInt8} = 1 OR end >= fromUnixTimestamp64Milli({since:Int64})
           ORDER BY version DESC LIMIT 1 BY session_id) AS s
     LEFT JOIN (${REVOCATION_STATE}) AS r ON r.session_id = s.session_id
     ORDER BY s.end DESC, s.session_id LIMIT {limit:UInt32}`,
    { all: q.activeSinceMs === null ? 1 : 0, since: q.activeSinceMs ?? 0, limit: q.limit },
  );
}

export async function countOpenSessions(store: Store, activeSinceMs: number): Promise<number> {
  const r = await rows<{ n: number | string }>(
    store,
    'SELECT uniqExact(session_id) AS n FROM sessions WHERE end >= fromUnixTimestamp64Milli({since:Int64})',
    { since: activeSinceMs },
  );
  return Number(r[0]?.n ?? 0);
}

/** A cheap fingerprint of the recent sessions: it changes whenever one of them gets a new version. */
export async function sessionsFingerprint(store: Store, activeSinceMs: number): Promise<string> {
  const r = await rows<{ n: number | string; v: number | string }>(
    store,
    'SELECT count() AS n, sum(version) AS v FROM sessions WHERE end >= fromUnixTimestamp64Milli({since:Int64})',
    { since: activeSinceMs },
  );
  return `${r[0]?.n ?? 0}/${r[0]?.v ?? 0}`;
}

/** Which of these alerts and sessions have a row in the store yet. */
export async function storedRows(
  store: Store,
  alertIds: string[],
  sessionIds: string[],
): Promise<{ alerts: Set<string>; sessions: Set<string> }> {
  const [r] = await rows<{ alerts: string[]; sessions: string[] }>(
    store,
    `SELECT (SELECT groupUniqArray(alert_id) FROM alerts WHERE alert_id IN {a:Array(String)}) AS alerts,
            (SELECT groupUniqArray(session_id) FROM sessions WHERE session_id IN {s:Array(String)}) AS sessions`,
    { a: alertIds, s: sessionIds },
  );
  return { alerts: new Set(r?.alerts ?? []), sessions: new Set(r?.sessions ?? []) };
}

const TRIAGE_STATE = `SELECT alert_id, argMax(state, at) AS triage_state, argMax(actor, at) AS triage_actor, max(at) AS triage_at,
  argMax(comment, at) AS triage_comment FROM alert_triage GROUP BY alert_id`;

const ALERT_COLUMNS = `alert_id, type, severity, identity, source, event_ids, ticket_id, reason, category, rule_id, rule_title,
  session_id, principal, source_ip, time, detected_at, summary`;

export interface AlertQuery {
  sinceMs?: number | null;
  untilMs?: number | null;
  type?: string | null;
  /** Exact type prefix (`breakglass.` for the Requests view). */
  typePrefix?: string | null;
  severity?: string | null;
  identity?: string | null;
  sessionId?: string | null;
  triage?: 'open' | 'acknowledged' | 'resolved' | null;
  limit: number;
}

export async function listAlerts(store: Store, q: AlertQuery): Promise<Row[]> {
  const result = await rows<Row>(
    store,
    `SELECT a.*, if(t.triage_state = '', 'open', t.triage_state) AS triage_state,
            if(t.triage_state = '', NULL, t.triage_actor) AS triage_actor,
            if(t.triage_state = '', NULL, t.triage_at) AS triage_at,
            if(t.triage_state = '', NULL, t.triage_comment) AS triage_comment
     FROM (SELECT ${ALERT_COLUMNS} FROM alerts
           WHERE time >= fromUnixTimestamp64Milli({since:Int64}) AND time < fromUnixTimestamp64Milli({until:Int64})
             AND ({type:String} = '' OR type = {type:String})
             AND ({prefix:String} = '' OR startsWith(type, {prefix:String}))
             AND ({severity:String} = '' OR severity = {severity:String})
             AND ({identity:String} = '' OR identity = {identity:String})
             AND ({session:String} = '' OR session_id = {session:String})
           ORDER BY detected_at DESC LIMIT 1 BY alert_id) AS a
     LEFT JOIN (${TRIAGE_STATE}) AS t ON t.alert_id = a.alert_id
     WHERE {triage:String} = '' OR if(t.triage_state = '', 'open', t.triage_state) = {triage:String}
     ORDER BY a.detected_at DESC, a.alert_id LIMIT {limit:UInt32}`,
    {
      since: q.sinceMs ?? 0,
      until: q.untilMs ?? 8_000_000_000_000,
      type: q.type ?? '',
      prefix: q.typePrefix ?? '',
      severity: q.severity ?? '',
      identity: q.identity ?? '',
      session: q.sessionId ?? '',
      triage: q.triage ?? '',
      limit: q.limit,
    },
  );
  return result;
}

export async function alertExists(store: Store, alertId: string): Promise<boolean> {
  const r = await rows(store, 'SELECT 1 FROM alerts WHERE alert_id = {id:String} LIMIT 1', { id: alertId });
  return r.length > 0;
}

export async function triageHistory(store: Store, alertIds: string[]): Promise<Row[]> {
  if (alertIds.length === 0) return [];
  return rows(
    store,
    `SELECT triage_id, alert_id, state, actor, comment, at FROM alert_triage WHERE alert_id IN {ids:Array(String)}
     ORDER BY at LIMIT 1 BY triage_id`,
    { ids: alertIds },
  );
}

export interface SessionDetail {
  session: Row;
  events: Row[];
  alerts: Row[];
  ticket: Row[];
  revocations: Row[];
  triage: Row[];
  /** "Was this you?" steps of the session (detectors/confirm), oldest first. */
  confirmations: Row[];
}

/** A session with its timeline (at most `eventLimit` events), ticket versions, alerts and revocations. */
export async function sessionDetail(store: Store, sessionId: string, eventLimit = 2000): Promise<SessionDetail | null> {
  const [session] = await rows(
    store,
    `SELECT ${SESSION_COLUMNS} FROM sessions WHERE session_id = {id:String} ORDER BY version DESC LIMIT 1`,
    { id: sessionId },
  );
  if (!session) return null;
  const alerts = await listAlerts(store, { sessionId, limit: 5000 });
  const alertEvents = alerts.flatMap((a) => (a.event_ids as string[] | undefined) ?? []);
  const keys = (session.keys as string[] | undefined) ?? [];
  const events = await rows(
    store,
    `SELECT source, id, time, actor_name, actor_type, action, outcome, outcome_reason, source_ip, user_agent, account, org, cluster, raw
     FROM events
     WHERE time >= parseDateTime64BestEffort({start:String}, 3) - INTERVAL 1 SECOND
       AND time <= parseDateTime64BestEffort({end:String}, 3) + INTERVAL 1 SECOND
       AND (session_key IN {keys:Array(String)} OR id IN {ids:Array(String)})
     ORDER BY time, id LIMIT 1 BY source, id LIMIT {limit:UInt32}`,
    { start: String(session.start), end: String(session.end), keys, ids: alertEvents, limit: eventLimit },
  );
  // An activity alert's first event id is the event its review rule matched: the event's categories.
  const categories = new Map<string, Set<string>>();
  for (const a of alerts) {
    const first = (a.event_ids as string[] | undefined)?.[0];
    if (a.type !== 'breakglass.activity' || !first || !a.category) continue;
    if (!categories.has(first)) categories.set(first, new Set());
    categories.get(first)!.add(String(a.category));
  }
  for (const e of events) e.categories = [...(categories.get(String(e.id)) ?? [])].sort();
  const ticket = session.ticket_id
    ? await rows(
        store,
        `SELECT ticket_id, updated_at, identities, requester, approvers, status, not_before, not_after, scope_accounts, scope_orgs,
                scope_clusters, reason, origin FROM tickets WHERE ticket_id = {id:String}
         ORDER BY updated_at LIMIT 1 BY ticket_id, updated_at`,
        { id: String(session.ticket_id) },
      )
    : [];
  const revocations = await rows(
    store,
    `SELECT revocation_id, alert_id, session_id, identity, target, principal, outcome, detail, attempts, requested_at, completed_at,
            time_to_revoke_ms, verified, verified_at, verify_event_id, verify_detail,
            multiIf(verified = 1, 'verified', verified = 0, 'ineffective', outcome = 'revoked', 'pending', '') AS verification
     FROM revocations WHERE session_id = {id:String}
     ORDER BY completed_at DESC, verified_at DESC NULLS LAST LIMIT 1 BY revocation_id`,
    { id: sessionId },
  );
  revocations.sort((a, b) => String(a.requested_at).localeCompare(String(b.requested_at)));
  const triage = await triageHistory(
    store,
    alerts.map((a) => String(a.alert_id)),
  );
  // Every step but the stored request (the question's own copy of the event and alert).
  const confirmations = await rows(
    store,
    `SELECT confirmation_id, state, identity, alert_id, via, owner, ticket_id, actor, detail, asked_at, due_at, at
     FROM confirmations WHERE session_id = {id:String} ORDER BY at, state LIMIT 1 BY confirmation_id, state, at`,
    { id: sessionId },
  );
  return { session, events, alerts, ticket, revocations, triage, confirmations };
}

export type TicketStatusFilter = 'requested' | 'approved' | 'all';

/**
 * The latest version of each ticket, with when it was first requested and how many versions it has.
 * `approved` lists windows still active or upcoming at `nowMs`.
 */
export async function listTickets(store: Store, status: TicketStatusFilter, nowMs: number, limit = 500): Promise<Row[]> {
  return rows(
    store,
    `SELECT l.*, f.requested_at AS requested_at, f.versions AS versions
     FROM (SELECT ticket_id, updated_at, identities, requester, approvers, status, not_before, not_after, scope_accounts,
                  scope_orgs, scope_clusters, reason, origin
           FROM tickets ORDER BY updated_at DESC, received_at DESC LIMIT 1 BY ticket_id) AS l
     INNER JOIN (SELECT ticket_id, min(updated_at) AS requested_at, uniqExact(updated_at) AS versions FROM tickets GROUP BY ticket_id) AS f
       ON f.ticket_id = l.ticket_id
     WHERE {status:String} = 'all'
        OR ({status:String} = 'requested' AND l.status = 'requested')
        OR ({status:String} = 'approved' AND l.status = 'approved' AND l.not_after >= fromUnixTimestamp64Milli({now:Int64}))
     ORDER BY l.updated_at DESC, l.ticket_id LIMIT {limit:UInt32}`,
    { status, now: nowMs, limit },
  );
}

/** The most recent ticket versions (who requested, approved, closed or revoked what, and when). */
export async function recentTicketChanges(store: Store, limit = 50): Promise<Row[]> {
  return rows(
    store,
    `SELECT ticket_id, updated_at, identities, requester, approvers, status, not_before, not_after, reason, origin
     FROM tickets ORDER BY updated_at DESC, ticket_id LIMIT 1 BY ticket_id, updated_at LIMIT {limit:UInt32}`,
    { limit },
  );
}

export interface StoredHealth {
  sources: { source: string; last_event: string | null; events: number; dead_letters: number; last_silence: string | null }[];
}

/** Per source from the store: newest event, dead letters and the last silence alert (what the live counters cannot know after a restart). */
export async function storedHealth(store: Store): Promise<StoredHealth> {
  const [events, dead, silence] = await Promise.all([
    rows<{ source: string; last_event: string; n: number | string }>(
      store,
      'SELECT source, max(time) AS last_event, count() AS n FROM events GROUP BY source',
    ),
    rows<{ source: string; n: number | string }>(store, 'SELECT source, count() AS n FROM dead_letters GROUP BY source'),
    rows<{ source: string; at: string }>(
      store,
      "SELECT source, max(detected_at) AS at FROM alerts WHERE type = 'pipeline.silence' GROUP BY source",
    ),
  ]);
  const names = new Set([...events, ...dead, ...silence].map((r) => r.source).filter((s) => s !== ''));
  return {
    sources: [...names].sort().map((source) => ({
      source,
      last_event: events.find((e) => e.source === source)?.last_event ?? null,
      events: Number(events.find((e) => e.source === source)?.n ?? 0),
      dead_letters: Number(dead.find((d) => d.source === source)?.n ?? 0),
      last_silence: silence.find((s) => s.source === source)?.at ?? null,
    })),
  };
}
