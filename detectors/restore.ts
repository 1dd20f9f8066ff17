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
 * ended less than `idleSeconds` ago. Without them a restart would split a running
 * intrusion into two sessions and alert on it twice.
 */
export async function openSessionsFromStore(store: Store, idleSeconds: number, nowMs = Date.now()): Promise<BreakGlassSession[]> {
  const rows = await (
    await store.client.query({
      query: `SELECT session_id, version, identity, source, principal, verdict, reason, ticket_id, approvers, first_event_id,
                     unauthorized_event_id, toUnixTimestamp64Milli(start) AS start_ms, toUnixTimestamp64Milli(end) AS end_ms, events,
                     activity_command, activity_data, activity_config, source_ips, account, org, cluster,
                     if(detected_at IS NULL, NULL, toUnixTimestamp64Milli(assumeNotNull(detected_at))) AS detected_ms, keys
              FROM (SELECT * FROM sessions WHERE end >= fromUnixTimestamp64Milli({since:Int64}) ORDER BY version DESC LIMIT 1 BY session_id)
              WHERE length(keys) > 0`,
      query_params: { since: nowMs - idleSeconds * 1000 },
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
