import { errorMessage } from '../../core/errors.js';
import type { AuditEvent } from '../../core/event.js';
import type { Logger } from '../../core/log.js';
import type { Alert } from '../alerts/alert.js';
import { handleText, revocationIneffectiveAlert } from '../alerts/revocation-alert.js';
import type { Identity } from '../identities.js';
import type { BreakGlassSession } from '../sessions.js';
import type { StateChange } from '../state/changelog.js';
import type { RevocationLedger, RevocationPolicy, RevocationRecord } from './dispatcher.js';
import { countsAsUse, type RevocationWatch, RevocationWatches, sessionHandles, type Verification, type VerifyOptions } from './verify.js';

export interface VerifierHooks {
  ledger: RevocationLedger;
  log: Logger;
  identity: (id: string) => Identity | undefined;
  raise: (a: Alert) => Promise<void>;
  change: (c: StateChange) => void;
  clock: 'replay' | 'live';
}

/** Verification totals: how many revocations the later logs proved or disproved. */
export interface VerifyTotals {
  watched: number;
  verified: number;
  ineffective: number;
  /** Live: the window ended before the revocation worker recorded an outcome. */
  unknown: number;
}

/**
 * Proves each `revoked` revocation from the logs that follow it: the session's handles are
 * watched; a successful event by one of them after the target's allowance raises
 * `breakglass.revocation_ineffective` and records `verified: false`; a window without one records
 * `verified: true`. Replay knows the outcome inline and counts from the triggering event's time
 * (deterministic). Live, the revocation worker answers later: the outcome is read from the
 * revocation ledger (the record of truth the worker writes before its alert) when a handle acts
 * or the window ends, so no outcome has to be routed back to the partition that owns the session.
 */
export class RevocationVerifier {
  readonly watches: RevocationWatches;
  readonly totals: VerifyTotals = { watched: 0, verified: 0, ineffective: 0, unknown: 0 };

  constructor(
    readonly options: VerifyOptions,
    readonly hooks: VerifierHooks,
  ) {
    this.watches = new RevocationWatches(options);
  }

  /**
   * Starts watching after the revocations of an unauthorized session: inline records that
   * answered `revoked` (replay, or a re-run finding them in the ledger), or, live, the orders just
   * appended for the policy's targets (outcome read later).
   */
  watch(
    session: BreakGlassSession,
    trigger: AuditEvent,
    records: readonly RevocationRecord[],
    policy: RevocationPolicy | undefined,
    o: { alertId: string; partition: number; timeMs: number; orderedMs: number },
  ): void {
    if (!this.options.enabled) return;
    const handles = sessionHandles(session, trigger);
    if (handles.length === 0) return;
    // One literal shape for every watch (no spreads): the watches map and every lookup stay monomorphic.
    const add = (
      revocationId: string,
      target: RevocationWatch['target'],
      revokedAtMs: number | null,
      orderedMs: number,
      record: RevocationRecord | null,
    ) => {
      const w: RevocationWatch = {
        revocationId,
        alertId: o.alertId,
        sessionId: session.id,
        identity: session.identity,
        target,
        partition: o.partition,
        handles,
        revokedAtMs,
        orderedMs,
        record,
        lastEventId: null,
        lastEventTime: null,
      };
      this.watches.add(w);
      this.totals.watched++;
      this.hooks.change({ kind: 'watch', partition: o.partition, watch: w });
    };
    if (records.length > 0) {
      for (const r of records) {
        if (r.outcome !== 'revoked' || r.verification) continue;
        const revokedAtMs = this.hooks.clock === 'replay' ? o.timeMs : Date.parse(r.completedAt);
        add(r.revocationId, r.target as RevocationWatch['target'], revokedAtMs, revokedAtMs, r);
      }
      return;
    }
    if (policy?.mode !== 'auto') return;
    for (const t of policy.targets) add(`${o.alertId}:${t.kind}`, t.kind, null, o.orderedMs, null);
  }

  /**
   * Judges the watches whose handles the event carries (`watches.touched(e)`, checked first and
   * synchronously by the caller: no promise per event on the common path).
   */
  async onEvent(
    e: AuditEvent,
    touched: ReturnType<RevocationWatches['touched']>,
    timeMs: number,
    detectedAtMs: () => number,
  ): Promise<void> {
    for (const { watch: w, handle } of touched) {
      if (timeMs < this.watches.startMs(w)) continue; // before the revocation: the session at work, not news
      w.lastEventId = e.id;
      w.lastEventTime = e.time;
      if (!countsAsUse(e)) continue; // refused (the cut holds), or allowed to anyone
      if (!(await this.#known(w))) continue;
      if (!this.watches.proves(w, timeMs)) continue;
      await this.#ineffective(w, handle, e, timeMs, detectedAtMs());
    }
  }

  /** Concludes the watches of `partition` whose window ended at its event-time watermark. */
  async conclude(partition: number, watermarkMs: number | undefined): Promise<void> {
    if (watermarkMs === undefined || this.watches.size === 0) return;
    for (const w of this.watches.ended(partition, watermarkMs)) {
      const known = await this.#known(w);
      // Failed or not revocable: its own `breakglass.revocation` alert said so; nothing to verify.
      if (!this.watches.get(w.revocationId)) continue;
      // Known now: its window starts at the answer, which may be later than the order.
      if (known && watermarkMs <= this.watches.startMs(w) + this.options.windowMs) continue;
      this.#done(w);
      if (!known || !w.record) {
        // Live: no outcome a whole window after the order. Loud: nobody can say the session was cut.
        this.totals.unknown++;
        this.hooks.log.warn('revocation not verified: no outcome recorded within the verify window', {
          revocationId: w.revocationId,
          sessionId: w.sessionId,
        });
        continue;
      }
      const quietSince = new Date(this.watches.startMs(w) + this.watches.allowanceMs(w)).toISOString();
      const v: Verification = {
        verified: true,
        at: new Date(this.watches.startMs(w) + this.options.windowMs).toISOString(),
        eventId: w.lastEventId ?? '',
        detail: `no successful event by ${w.handles.join(', ')} from ${quietSince} for ${this.options.windowMs / 60_000} min (stream seen to ${new Date(watermarkMs).toISOString()}); last event by them: ${w.lastEventId ? `${w.lastEventId} at ${w.lastEventTime}` : 'none'}`,
      };
      await this.#record(w.record, v);
      this.totals.verified++;
    }
  }

  /**
   * Whether the watch's outcome is `revoked` and known. Live, the ledger is asked when a handle
   * acts or the window ends (rare); a failed or impossible revocation has its own alert, so its watch ends.
   */
  async #known(w: RevocationWatch): Promise<boolean> {
    if (w.record) return true;
    let r: RevocationRecord | null;
    try {
      r = await this.hooks.ledger.finished(w.revocationId);
    } catch (err) {
      this.hooks.log.error('revocation outcome not read; verification retried on the next event', {
        revocationId: w.revocationId,
        error: errorMessage(err),
      });
      return false;
    }
    if (!r) return false;
    if (r.outcome !== 'revoked') {
      this.#done(w);
      return false;
    }
    w.record = r;
    w.revokedAtMs = Date.parse(r.completedAt);
    this.hooks.change({ kind: 'watch', partition: w.partition, watch: w });
    return true;
  }

  async #ineffective(w: RevocationWatch, handle: string, e: AuditEvent, timeMs: number, detectedAtMs: number): Promise<void> {
    const r = w.record!;
    const after = Math.round((timeMs - w.revokedAtMs!) / 1000);
    const allowance = this.watches.allowanceMs(w) / 1000;
    const identity = this.hooks.identity(w.identity) ?? ({ id: w.identity } as Identity);
    const what = handleText(handle);
    const alert = revocationIneffectiveAlert({
      identity,
      event: e,
      revocationId: w.revocationId,
      sessionId: w.sessionId,
      target: w.target,
      record: r,
      handle,
      afterSeconds: after,
      allowanceSeconds: allowance,
      detectedAtMs,
    });
    this.#done(w);
    this.totals.ineffective++;
    await this.hooks.raise(alert);
    await this.#record(r, {
      verified: false,
      at: e.time,
      eventId: e.id,
      detail: `${what} succeeded ${after} s after the revocation (allowance ${allowance} s): ${e.action} (event ${e.id})`,
    });
  }

  async #record(r: RevocationRecord, v: Verification): Promise<void> {
    // On the record itself too: replay's summary shows it (live records are not kept, so nothing grows).
    r.verification = v;
    try {
      await this.hooks.ledger.verify(r, v);
    } catch (err) {
      // The alert is out; the report would show the revocation unverified. Loud, not silent.
      this.hooks.log.error('revocation verification not recorded', { revocationId: r.revocationId, error: errorMessage(err) });
    }
  }

  #done(w: RevocationWatch): void {
    this.watches.delete(w.revocationId);
    this.hooks.change({ kind: 'watch-done', partition: w.partition, revocationId: w.revocationId });
  }

  /** Takes back the watches of partitions assigned to this member (from the changelog). */
  restore(watches: readonly RevocationWatch[]): void {
    for (const w of watches) this.watches.add(w);
  }
}
