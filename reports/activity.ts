import type { Store } from '../core/store/client.js';
import { logValidationForEvents } from './log-validation.js';
import { iso, isoOrNull, runColumns, runQuery, strings, textOrNull } from './sql.js';
import type { LogValidationStatus, SessionAction, SessionLogValidation, SignInAttempt, TicketTimeline } from './types.js';

/**
 * The detail the activity report gives per session beyond its counts: every action, the ticket's
 * life from its stored versions, the CloudTrail log validation of the objects the events came
 * from, and the failed sign-ins of the period one by one.
 */

interface ActionRow {
  session_id: string;
  time_ms: number | string;
  action: string;
  targets: string;
  outcome: string;
  category: string;
  event_id: string;
}

interface TicketVersionRow {
  ticket_id: string;
  updated_ms: number | string;
  status: string;
  requester: string;
  approvers: string[];
  not_before_ms: number | string;
  not_after_ms: number | string;
  origin: string;
}

interface AttemptRow {
  time_ms: number | string;
  identity: string;
  source: string;
  principal: string;
  source_ip: string;
  reason: string;
  event_id: string;
}

/** Targets are stored as the normalized JSON list; the report shows `type name` (or id) of each, `; `-joined. */
export function targetText(targets: string): string | null {
  let list: unknown;
  try {
    list = JSON.parse(targets);
  } catch {
    return textOrNull(targets);
  }
  if (!Array.isArray(list)) return null;
  const parts = list
    .map((t) => {
      if (!t || typeof t !== 'object') return '';
      const { type, name, id } = t as { type?: unknown; name?: unknown; id?: unknown };
      const label = typeof name === 'string' && name ? name : typeof id === 'string' ? id : '';
      return typeof type === 'string' && type && label ? `${type} ${label}` : label;
    })
    .filter((x) => x !== '');
  return parts.length ? parts.join('; ') : null;
}

/**
 * Every action of the sessions that started in the period, by session id, in time order. Read
 * column by column (a month of 16,667 sessions has 221k actions): no object per row but the action,
 * and each distinct target list parsed once.
 */
export async function actionsBySession(store: Store, fromMs: number, toMs: number): Promise<Map<string, SessionAction[]>> {
  const { data, rows } = await runColumns(store, 'session-actions', { from_ms: fromMs, to_ms: toMs });
  const col = <K extends keyof ActionRow>(name: K) => (data[name] ?? []) as ActionRow[K][];
  const [sessionIds, times, actions, targets, outcomes, categories, eventIds] = [
    col('session_id'),
    col('time_ms'),
    col('action'),
    col('targets'),
    col('outcome'),
    col('category'),
    col('event_id'),
  ];
  const texts = new Map<string, string | null>();
  const out = new Map<string, SessionAction[]>();
  let list: SessionAction[] = [];
  let current: string | undefined;
  for (let i = 0; i < rows; i++) {
    // Rows come ordered by session: one map lookup per session, not per action.
    const id = sessionIds[i] as string;
    if (id !== current) {
      current = id;
      list = out.get(id) ?? [];
      out.set(id, list);
    }
    const t = targets[i] as string;
    let target = texts.get(t);
    if (target === undefined) {
      target = targetText(t);
      texts.set(t, target);
    }
    list.push({
      time: iso(Number(times[i])),
      action: actions[i] as string,
      target,
      outcome: outcomes[i] as string,
      category: textOrNull(categories[i]),
      eventId: eventIds[i] as string,
    });
  }
  return out;
}

const CLOSING = new Set(['closed', 'revoked', 'rejected']);

/** The timeline of each ticket from its versions updated before `to` (so a later run gives the same rows). */
export async function ticketVersions(store: Store, ids: string[], toMs: number): Promise<Map<string, TicketVersionRow[]>> {
  const out = new Map<string, TicketVersionRow[]>();
  if (ids.length === 0) return out;
  const rows = await runQuery<TicketVersionRow>(store, 'ticket-versions', { ids: [...new Set(ids)].sort(), to_ms: toMs });
  for (const r of rows) {
    const list = out.get(r.ticket_id) ?? [];
    list.push(r);
    out.set(r.ticket_id, list);
  }
  return out;
}

export function ticketTimeline(
  ticketId: string,
  versions: TicketVersionRow[],
  use: { startMs: number; principal: string | null },
): TicketTimeline {
  const first = versions[0];
  const latest = versions[versions.length - 1];
  const requested = versions.find((v) => v.status === 'requested') ?? first;
  const approved = versions.find((v) => v.status === 'approved');
  const closed = versions.find((v) => CLOSING.has(v.status));
  return {
    ticketId,
    status: latest?.status ?? null,
    notBefore: latest ? isoOrNull(latest.not_before_ms) : null,
    notAfter: latest ? isoOrNull(latest.not_after_ms) : null,
    requestedAt: requested ? iso(Number(requested.updated_ms)) : null,
    requestedBy: textOrNull(requested?.requester),
    approvedAt: approved ? iso(Number(approved.updated_ms)) : null,
    approvedBy: approved ? strings(approved.approvers) : [],
    usedAt: iso(use.startMs),
    usedBy: use.principal,
    closedAt: closed ? iso(Number(closed.updated_ms)) : null,
    closedAs: closed?.status ?? null,
    closedVia: textOrNull(closed?.origin),
  };
}

const GRAVITY: Record<LogValidationStatus, number> = { mismatch: 3, missing_digest: 2, pending: 1, valid: 0 };

/** Per session, the validation status of the log objects its CloudTrail events came from. */
export async function logValidationBySession(
  store: Store,
  sessions: { sessionId: string; source: string; eventIds: string[] }[],
): Promise<Map<string, SessionLogValidation>> {
  const cloudtrail = sessions.filter((s) => s.source === 'cloudtrail');
  const byEvent = cloudtrail.length
    ? await logValidationForEvents(
        store,
        cloudtrail.flatMap((s) => s.eventIds),
      )
    : new Map();
  const out = new Map<string, SessionLogValidation>();
  for (const s of sessions) {
    const objects = new Map<string, LogValidationStatus>();
    for (const id of s.eventIds) {
      const v = byEvent.get(id);
      if (v) objects.set(v.objectKey, v.status);
    }
    const list = [...objects].map(([objectKey, status]) => ({ objectKey, status })).sort((a, b) => (a.objectKey < b.objectKey ? -1 : 1));
    const worst = list.reduce<LogValidationStatus | null>((w, o) => (w === null || GRAVITY[o.status] > GRAVITY[w] ? o.status : w), null);
    out.set(s.sessionId, { status: worst, objects: list });
  }
  return out;
}

export async function signInAttempts(store: Store, fromMs: number, toMs: number): Promise<SignInAttempt[]> {
  const rows = await runQuery<AttemptRow>(store, 'attempts', { from_ms: fromMs, to_ms: toMs });
  return rows.map((r) => ({
    time: iso(Number(r.time_ms)),
    identity: r.identity,
    source: r.source,
    principal: textOrNull(r.principal),
    sourceIp: textOrNull(r.source_ip),
    reason: textOrNull(r.reason),
    eventId: textOrNull(r.event_id),
  }));
}
