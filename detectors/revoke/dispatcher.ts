import { errorMessage, GlasswatchError, withRetry } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Store } from '../../core/store/client.js';
import { insertRows, type StoreWriter } from '../../core/store/writer.js';
import type { RevocationOutcome, RevocationRequest, RevocationTarget } from './types.js';
import type { Verification } from './verify.js';

export type RevocationMode = 'auto' | 'manual' | 'off';

export interface RevocationPolicy {
  mode: RevocationMode;
  targets: RevocationTarget[];
  /** `followLinked`: one target per plane, for the person's linked sessions (detectors/people). */
  follow?: RevocationTarget[];
}

/** The targets a request goes to: the identity's own, or, following a link, the linked session's plane's. */
export function targetsOf(policy: RevocationPolicy, request: RevocationRequest): RevocationTarget[] {
  if (request.followedFrom === undefined) return policy.targets;
  return (policy.follow ?? []).filter((t) => t.kind === request.followTarget);
}

/** Alert id + target; a followed revocation also names the linked session (one record per linked session). */
export function revocationIdOf(request: RevocationRequest, kind: RevocationTarget['kind']): string {
  return request.followedFrom === undefined ? `${request.alert.id}:${kind}` : `${request.alert.id}:follow:${request.session.id}:${kind}`;
}

export interface RevocationRecord {
  revocationId: string;
  alertId: string;
  sessionId: string;
  identity: string;
  target: string;
  principal: string | null;
  outcome: RevocationOutcome;
  detail: string;
  attempts: number;
  requestedAt: string;
  completedAt: string;
  /** From the triggering event's time to the target's answer. */
  timeToRevokeMs: number;
  /** What later logs showed, once known (the store keeps it in the row's verify columns). */
  verification?: Verification;
  /** Set on a revocation that followed a link: the unauthorized session it followed from (`sessionId` is the linked one). */
  followedFrom?: string;
}

/** Remembers final outcomes so the same revocation is never sent twice (replays, restarts, redelivery). */
export interface RevocationLedger {
  finished(revocationId: string): Promise<RevocationRecord | null>;
  record(r: RevocationRecord): Promise<void>;
  /** Records what the later logs showed about a `revoked` revocation (detectors/revoke/verify.ts). */
  verify(r: RevocationRecord, v: Verification): Promise<void>;
}

export class MemoryRevocationLedger implements RevocationLedger {
  readonly records: RevocationRecord[] = [];
  async finished(id: string): Promise<RevocationRecord | null> {
    return this.records.find((r) => r.revocationId === id && r.outcome !== 'failed') ?? null;
  }
  async record(r: RevocationRecord): Promise<void> {
    this.records.push(r);
  }
  async verify(r: RevocationRecord, v: Verification): Promise<void> {
    this.records.push({ ...r, verification: v });
  }
}

/** Finished revocations this ledger wrote, remembered so a batch sees its own unflushed records. */
const RECENT_LIMIT = 10_000;

export class StoreRevocationLedger implements RevocationLedger {
  readonly #recent = new Map<string, RevocationRecord>();

  /**
   * With `writer` (the detector's per-batch StoreWriter), records join the batch's one insert and
   * its one audit-chain append instead of two inserts each; they are durable when the batch is,
   * before its offsets are committed. A crash before that hands the batch over again, and the
   * revocation is sent again: every target's revocation is idempotent (clear sessions, deny, delete).
   */
  constructor(
    readonly store: Store,
    readonly writer: StoreWriter | null = null,
  ) {}

  async finished(id: string): Promise<RevocationRecord | null> {
    const mine = this.#recent.get(id);
    if (mine) {
      // Remembered before its batch was flushed. Asked again means the batch may be handled again
      // after a failed flush, and this may be the only copy: it joins the batch again (an identical
      // row, which the table keeps once), so an answered revocation is never left unrecorded.
      if (this.writer) await this.writer.add('revocations', revocationRow(mine));
      return mine;
    }
    const rows = await (
      await this.store.client.query({
        query: `SELECT revocation_id, alert_id, session_id, identity, target, principal, outcome, detail, attempts,
                       toString(requested_at) AS requested_at, toString(completed_at) AS completed_at, time_to_revoke_ms,
                       followed_from
                FROM revocations WHERE revocation_id = {id:String} AND outcome != 'failed'
                ORDER BY completed_at DESC LIMIT 1`,
        query_params: { id },
        format: 'JSONEachRow',
      })
    ).json<Record<string, string | number>>();
    const r = rows[0];
    if (!r) return null;
    return {
      revocationId: String(r.revocation_id),
      alertId: String(r.alert_id),
      sessionId: String(r.session_id),
      identity: String(r.identity),
      target: String(r.target),
      principal: r.principal ? String(r.principal) : null,
      outcome: r.outcome as RevocationOutcome,
      detail: String(r.detail),
      attempts: Number(r.attempts),
      requestedAt: String(r.requested_at),
      completedAt: String(r.completed_at),
      timeToRevokeMs: Number(r.time_to_revoke_ms),
      ...(r.followed_from ? { followedFrom: String(r.followed_from) } : {}),
    };
  }
  async record(r: RevocationRecord): Promise<void> {
    await this.#write(r, revocationRow(r));
  }

  async #write(r: RevocationRecord, row: Record<string, unknown>): Promise<void> {
    if (r.outcome !== 'failed') {
      this.#recent.delete(r.revocationId);
      this.#recent.set(r.revocationId, r);
      if (this.#recent.size > RECENT_LIMIT) this.#recent.delete(this.#recent.keys().next().value as string);
    }
    if (this.writer) await this.writer.add('revocations', row);
    else await insertRows(this.store, 'revocations', [row]);
  }
  /**
   * The verification is a new version of the revocation's row (same `completed_at`, so the
   * ReplacingMergeTree keeps the later insert; readers order by `verified_at` too).
   */
  async verify(r: RevocationRecord, v: Verification): Promise<void> {
    // The verified version must be inserted after the record it replaces (same version column: the
    // later insert wins), so a record still waiting in the batch is written first. Rare: once per revocation.
    await this.writer?.flush();
    await insertRows(this.store, 'revocations', [
      {
        ...revocationRow(r),
        verified: v.verified ? 1 : 0,
        verified_at: v.at,
        verify_event_id: v.eventId,
        verify_detail: v.detail,
      },
    ]);
    // Stored now (the record before it): the store answers from here on, and a re-added unverified row could not
    // be inserted after this version.
    this.#recent.delete(r.revocationId);
  }
}

function revocationRow(r: RevocationRecord): Record<string, unknown> {
  return {
    revocation_id: r.revocationId,
    alert_id: r.alertId,
    session_id: r.sessionId,
    identity: r.identity,
    target: r.target,
    principal: r.principal ?? '',
    outcome: r.outcome,
    detail: r.detail,
    attempts: r.attempts,
    requested_at: r.requestedAt,
    completed_at: r.completedAt,
    time_to_revoke_ms: r.timeToRevokeMs,
    followed_from: r.followedFrom ?? '',
  };
}

export interface RevocationDispatcherOptions {
  retries?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * Calls each revocation target of an identity with retries (exponential backoff, full
 * jitter), records every outcome with its time-to-revoke, and never sends a revocation
 * that already finished. Revocation blocks (it is awaited by the detector) and never
 * sheds: a failed one is recorded `failed` and retried on the next redelivery.
 */
export class RevocationDispatcher {
  readonly totals: Record<RevocationOutcome, number> = { revoked: 0, failed: 0, not_revocable: 0, manual: 0 };

  constructor(
    readonly policies: ReadonlyMap<string, RevocationPolicy>,
    readonly ledger: RevocationLedger,
    readonly log: Logger,
    readonly options: RevocationDispatcherOptions = {},
  ) {}

  /**
   * `detectedAtMs` is when the alert was raised and `eventTimeMs` the triggering event's
   * time; completion is measured on the same clock as detection.
   */
  async revoke(request: RevocationRequest, eventTimeMs: number, detectedAtMs: number): Promise<RevocationRecord[]> {
    const policy = this.policies.get(request.identity);
    if (!policy || policy.mode === 'off') return [];
    const base = {
      alertId: request.alert.id,
      sessionId: request.session.id,
      identity: request.identity,
      principal: request.principal,
      ...(request.followedFrom === undefined ? {} : { followedFrom: request.followedFrom }),
    };
    // A revocation nobody can send (manual mode, or no target for a followed link's plane) is still a
    // record: like a finished automatic one, the earlier record comes back on a re-run (replay with a
    // store), so the same revocation alert is raised instead of silently dropped.
    const unsent = async (revocationId: string, target: string, outcome: 'manual' | 'not_revocable', detail: string) => {
      const at = new Date(detectedAtMs).toISOString();
      const rec: RevocationRecord = {
        ...base,
        revocationId,
        target,
        outcome,
        detail,
        attempts: 0,
        requestedAt: at,
        completedAt: at,
        timeToRevokeMs: -1,
      };
      const done = await this.ledger.finished(rec.revocationId);
      if (done) return [done];
      await this.ledger.record(rec);
      this.totals[outcome]++;
      return [rec];
    };
    if (policy.mode === 'manual')
      return unsent(
        `${request.alert.id}:manual`,
        'manual',
        'manual',
        'revocation is manual for this identity: the SOC must cut the session off',
      );
    const out: RevocationRecord[] = [];
    const targets = targetsOf(policy, request);
    if (request.followedFrom !== undefined && targets.length === 0) {
      // No target for the linked session's plane: said in a record (and its alert), never silently skipped.
      const kind = request.followTarget ?? 'webhook';
      return unsent(
        revocationIdOf(request, kind),
        kind,
        'not_revocable',
        `no revocation.${kind} is configured to follow the linked session into; cut it off by hand`,
      );
    }
    for (const target of targets) {
      const revocationId = revocationIdOf(request, target.kind);
      const done = await this.ledger.finished(revocationId);
      if (done) {
        out.push(done);
        continue;
      }
      const started = Date.now();
      let attempts = 0;
      let outcome: RevocationOutcome;
      let detail: string;
      try {
        const result = await withRetry(
          async () => {
            attempts++;
            return target.revoke({ ...request, idempotencyKey: revocationId });
          },
          {
            retries: this.options.retries ?? 4,
            initialDelayMs: this.options.initialDelayMs ?? 200,
            maxDelayMs: this.options.maxDelayMs ?? 10_000,
          },
        );
        outcome = result.outcome;
        detail = result.detail;
      } catch (err) {
        outcome = 'failed';
        detail = `${errorMessage(err)}${err instanceof GlasswatchError && err.hint ? ` (${err.hint})` : ''}`;
        this.log.error('revocation failed', {
          target: target.kind,
          identity: request.identity,
          alertId: request.alert.id,
          attempts,
          error: detail,
        });
      }
      const completedMs = detectedAtMs + (Date.now() - started);
      const rec: RevocationRecord = {
        ...base,
        revocationId,
        target: target.kind,
        outcome,
        detail,
        attempts,
        requestedAt: new Date(detectedAtMs).toISOString(),
        completedAt: new Date(completedMs).toISOString(),
        timeToRevokeMs: completedMs - eventTimeMs,
      };
      await this.ledger.record(rec);
      this.totals[outcome]++;
      out.push(rec);
    }
    return out;
  }
}
