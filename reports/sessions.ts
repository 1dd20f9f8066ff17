import type { Store } from '../core/store/client.js';
import { actionsBySession, logValidationBySession, signInAttempts, ticketTimeline, ticketVersions } from './activity.js';
import { withDigest } from './digest.js';
import { iso, msOrNull, runQuery, strings, textOrNull } from './sql.js';
import type {
  ActivityReport,
  ActivitySession,
  Incident,
  Period,
  RevocationAttempt,
  RevocationSummary,
  UnauthorizedReport,
} from './types.js';

/** One session row of `sessions.sql`, typed once for both session reports. */
interface SessionRow {
  session_id: string;
  identity: string;
  source: string;
  principal: string;
  verdict: string;
  reason: string;
  ticket_id: string;
  approvers: string[];
  first_event_id: string;
  unauthorized_event_id: string;
  source_ips: string[];
  account: string;
  org: string;
  cluster: string;
  start_ms: number | string;
  end_ms: number | string;
  events: number | string;
  activity_command: number | string;
  activity_data: number | string;
  activity_config: number | string;
  detected_ms: number | string;
  revocation_ids: string[];
  revocation_targets: string[];
  revocation_outcomes: string[];
  revocation_details: string[];
  revocation_attempts: (number | string)[];
  revocation_requested_ms: (number | string)[];
  revocation_completed_ms: (number | string)[];
  revocation_time_to_revoke_ms: (number | string)[];
  revocation_verified: (number | string)[];
  revocation_verified_ms: (number | string)[];
  revocation_verify_event_ids: string[];
  revocation_verify_details: string[];
}

/** How far a session's revocation got, strongest first: one target that cut it off is enough. */
const OUTCOME_ORDER = ['revoked', 'failed', 'not_revocable', 'manual'] as const;

function revocationsOf(r: SessionRow): RevocationAttempt[] {
  const ids = strings(r.revocation_ids);
  return ids
    .map((id, i) => {
      const ttr = Number(r.revocation_time_to_revoke_ms[i]);
      const v = verificationOf(r, i);
      return {
        revocationId: id,
        target: String(r.revocation_targets[i] ?? ''),
        outcome: String(r.revocation_outcomes[i] ?? 'failed') as RevocationAttempt['outcome'],
        detail: String(r.revocation_details[i] ?? ''),
        attempts: Number(r.revocation_attempts[i] ?? 0),
        requestedAt: iso(Number(r.revocation_requested_ms[i])),
        completedAt: iso(Number(r.revocation_completed_ms[i])),
        // The dispatcher writes -1 for manual hand-offs: nothing was measured.
        timeToRevokeMs: Number.isFinite(ttr) && ttr >= 0 ? ttr : null,
        verified: v.verified,
        verifiedAt: v.verifiedAt,
        verifyEventId: v.verifyEventId,
        verifyDetail: v.verifyDetail,
      };
    })
    .sort((a, b) => (a.revocationId < b.revocationId ? -1 : a.revocationId > b.revocationId ? 1 : 0));
}

/** The verification columns of revocation `i` (2 / -1 / '' mean not verified; absent in an older store). */
function verificationOf(r: SessionRow, i: number): Pick<RevocationAttempt, 'verified' | 'verifiedAt' | 'verifyEventId' | 'verifyDetail'> {
  const v = Number(r.revocation_verified?.[i] ?? 2);
  const at = Number(r.revocation_verified_ms?.[i] ?? -1);
  if (v !== 0 && v !== 1) return { verified: null, verifiedAt: null, verifyEventId: null, verifyDetail: null };
  return {
    verified: v === 1,
    verifiedAt: at >= 0 ? iso(at) : null,
    verifyEventId: textOrNull(String(r.revocation_verify_event_ids?.[i] ?? '')),
    verifyDetail: textOrNull(String(r.revocation_verify_details?.[i] ?? '')),
  };
}

function summarize(records: RevocationAttempt[]): { revocation: RevocationSummary; timeToRevokeMs: number | null } {
  const revocation = OUTCOME_ORDER.find((o) => records.some((r) => r.outcome === o)) ?? null;
  const times = records.filter((r) => r.outcome === 'revoked' && r.timeToRevokeMs !== null).map((r) => r.timeToRevokeMs as number);
  return { revocation, timeToRevokeMs: times.length ? Math.min(...times) : null };
}

async function sessionRows(store: Store, period: Period, verdict: '' | 'unauthorized'): Promise<SessionRow[]> {
  return runQuery<SessionRow>(store, 'sessions', { from_ms: period.fromMs, to_ms: period.toMs, verdict });
}

function common(r: SessionRow) {
  const startMs = Number(r.start_ms);
  const detectedMs = msOrNull(r.detected_ms);
  const records = revocationsOf(r);
  const { revocation, timeToRevokeMs } = summarize(records);
  return {
    startMs,
    endMs: Number(r.end_ms),
    detectedMs,
    timeToDetectMs: detectedMs === null ? null : detectedMs - startMs,
    records,
    revocation,
    timeToRevokeMs,
    activity: { command: Number(r.activity_command), data: Number(r.activity_data), config: Number(r.activity_config) },
  };
}

export async function buildActivityReport(store: Store, period: Period): Promise<ActivityReport> {
  const [rows, actions, attempts] = await Promise.all([
    sessionRows(store, period, ''),
    actionsBySession(store, period.fromMs, period.toMs),
    signInAttempts(store, period.fromMs, period.toMs),
  ]);
  const [tickets, validation] = await Promise.all([
    ticketVersions(
      store,
      rows.map((r) => r.ticket_id).filter((t) => t !== ''),
      period.toMs,
    ),
    logValidationBySession(
      store,
      rows.map((r) => ({
        sessionId: r.session_id,
        source: r.source,
        eventIds: [r.first_event_id, ...(actions.get(r.session_id) ?? []).map((a) => a.eventId)],
      })),
    ),
  ]);
  let revocations = 0;
  const sessions: ActivitySession[] = rows.map((r) => {
    const c = common(r);
    revocations += c.records.length;
    const versions = r.ticket_id ? tickets.get(r.ticket_id) : undefined;
    const ticket = r.ticket_id
      ? ticketTimeline(r.ticket_id, versions ?? [], { startMs: c.startMs, principal: textOrNull(r.principal) })
      : null;
    return {
      sessionId: r.session_id,
      identity: r.identity,
      source: r.source,
      principal: r.principal,
      verdict: r.verdict === 'authorized' ? 'authorized' : 'unauthorized',
      reason: textOrNull(r.reason),
      ticketId: textOrNull(r.ticket_id),
      requester: ticket?.requestedBy ?? null,
      approvers: strings(r.approvers),
      account: textOrNull(r.account),
      org: textOrNull(r.org),
      cluster: textOrNull(r.cluster),
      sourceIps: strings(r.source_ips),
      firstEventId: r.first_event_id,
      start: iso(c.startMs),
      end: iso(c.endMs),
      durationMs: c.endMs - c.startMs,
      events: Number(r.events),
      activity: c.activity,
      timeToDetectMs: c.timeToDetectMs,
      timeToRevokeMs: c.timeToRevokeMs,
      revocation: c.revocation,
      ticket,
      actions: actions.get(r.session_id) ?? [],
      logValidation: validation.get(r.session_id) ?? { status: null, objects: [] },
    };
  });
  const authorized = sessions.filter((s) => s.verdict === 'authorized').length;
  return withDigest<ActivityReport>({
    report: 'breakglass-activity',
    from: iso(period.fromMs),
    to: iso(period.toMs),
    totals: {
      sessions: sessions.length,
      authorized,
      unauthorized: sessions.length - authorized,
      attempts: attempts.length,
      revocations,
      actions: sessions.reduce((n, s) => n + s.actions.length, 0),
      logValidationFailures: sessions.filter((s) => s.logValidation.status === 'mismatch' || s.logValidation.status === 'missing_digest')
        .length,
    },
    sessions,
    attempts,
  });
}

export async function buildUnauthorizedReport(store: Store, period: Period): Promise<UnauthorizedReport> {
  const rows = await sessionRows(store, period, 'unauthorized');
  const incidents: Incident[] = rows.map((r) => {
    const c = common(r);
    return {
      sessionId: r.session_id,
      identity: r.identity,
      source: r.source,
      principal: r.principal,
      reason: r.reason || 'unknown',
      ticketId: textOrNull(r.ticket_id),
      approvers: strings(r.approvers),
      unauthorizedEventId: r.unauthorized_event_id,
      sourceIps: strings(r.source_ips),
      account: textOrNull(r.account),
      org: textOrNull(r.org),
      cluster: textOrNull(r.cluster),
      start: iso(c.startMs),
      end: iso(c.endMs),
      events: Number(r.events),
      activity: c.activity,
      detectedAt: c.detectedMs === null ? null : iso(c.detectedMs),
      timeToDetectMs: c.timeToDetectMs,
      timeToRevokeMs: c.timeToRevokeMs,
      revocation: c.revocation,
      revocations: c.records,
    };
  });
  const count = (o: RevocationSummary) => incidents.filter((i) => i.revocation === o).length;
  return withDigest<UnauthorizedReport>({
    report: 'unauthorized-use',
    from: iso(period.fromMs),
    to: iso(period.toMs),
    totals: {
      incidents: incidents.length,
      revoked: count('revoked'),
      failed: count('failed'),
      notRevocable: count('not_revocable'),
      manual: count('manual'),
      unrevoked: count(null),
      verified: incidents.reduce((n, i) => n + i.revocations.filter((v) => v.verified === true).length, 0),
      ineffective: incidents.reduce((n, i) => n + i.revocations.filter((v) => v.verified === false).length, 0),
    },
    incidents,
  });
}
