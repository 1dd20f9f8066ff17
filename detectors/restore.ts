import type { Store } from '../core/store/client.js';
import type { BreakGlassSession } from './sessions.js';
import type { UnauthorizedReason } from './tickets/ledger.js';

interface SessionRow {
  session_id: string;
  version: number | string;
  identity: string;
  source: BreakGlassSession['source'];
  principal: string;
  verdict: BreakGlassSession['verdict'];
  reason: string;
  ticket_id: string;
  approvers: string[];
  first_event_id: string;
  unauthorized_event_id: string;
  start_ms: number | string;
  end_ms: number | string;
  events: number | string;
  activity_command: number | string;
  activity_data: number | string;
  activity_config: number | string;
  source_ips: string[];
  account: string;
  org: string;
  cluster: string;
  detected_ms: number | string | null;
  keys: string[];
}

/**
 * The sessions a live detector had open when it stopped: their last version in the store,
 * ended less than `idleSeconds` before the last event seen of their identity. Event time,
 * never the wall clock: events that carry old timestamps (a backfill, a delayed delivery) keep
 * their sessions open across a restart, as the detector itself closes sessions by event time.
 * Without them a restart would split a running intrusion into two sessions and alert twice.
 */
export async function openSessionsFromStore(store: Store, idleSeconds: number): Promise<BreakGlassSession[]> {
  const rows = await (
    await store.client.query({
      query: `SELECT s.session_id AS session_id, s.version AS version, s.identity AS identity, s.source AS source,
                     s.principal AS principal, s.verdict AS verdict, s.reason AS reason, s.ticket_id AS ticket_id,
                     s.approvers AS approvers, s.first_event_id AS first_event_id, s.unauthorized_event_id AS unauthorized_event_id,
                     toUnixTimestamp64Milli(s.start) AS start_ms, toUnixTimestamp64Milli(s.end) AS end_ms, s.events AS events,
                     s.activity_command AS activity_command, s.activity_data AS activity_data, s.activity_config AS activity_config,
                     s.source_ips AS source_ips, s.account AS account, s.org AS org, s.cluster AS cluster,
                     if(s.detected_at IS NULL, NULL, toUnixTimestamp64Milli(assumeNotNull(s.detected_at))) AS detected_ms, s.keys AS keys
              FROM (SELECT * FROM sessions ORDER BY version DESC LIMIT 1 BY session_id) AS s
              INNER JOIN (SELECT identity, max(end) AS last_end FROM sessions GROUP BY identity) AS l ON s.identity = l.identity
              WHERE length(s.keys) > 0
                AND toUnixTimestamp64Milli(s.end) >= toUnixTimestamp64Milli(l.last_end) - {idleMs:Int64}`,
      query_params: { idleMs: idleSeconds * 1000 },
      format: 'JSONEachRow',
    })
  ).json<SessionRow>();
  return rows.map((r) => ({
    id: r.session_id,
    identity: r.identity,
    source: r.source,
    principal: r.principal || null,
    principalId: null,
    sourceIps: r.source_ips,
    keys: r.keys,
    firstEventId: r.first_event_id,
    startMs: Number(r.start_ms),
    endMs: Number(r.end_ms),
    events: Number(r.events),
    verdict: r.verdict,
    reason: (r.reason || null) as UnauthorizedReason | null,
    ticketId: r.ticket_id || null,
    approvers: r.approvers,
    unauthorizedEventId: r.unauthorized_event_id || null,
    activity: { command: Number(r.activity_command), data: Number(r.activity_data), config: Number(r.activity_config) },
    account: r.account || null,
    org: r.org || null,
    cluster: r.cluster || null,
    detectedAtMs: r.detected_ms === null ? null : Number(r.detected_ms),
    version: Number(r.version),
  }));
}
