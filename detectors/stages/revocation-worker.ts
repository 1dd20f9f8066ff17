import type { Bus, BusMessage, Subscription } from '../../core/bus/types.js';
import { DEAD_LETTER_HEADERS } from '../../core/bus/types.js';
import { errorMessage, GlasswatchError, isRetriable } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Alert } from '../alerts/alert.js';
import { revocationAlert } from '../alerts/revocation-alert.js';
import { type RevocationLedger, type RevocationPolicy, type RevocationRecord, targetsOf } from '../revoke/dispatcher.js';
import type { RevocationOutcome, RevocationTarget } from '../revoke/types.js';
import { backoffMs, pause, type RetryPolicy } from './policy.js';
import { decodeOrder, type RevocationOrder } from './revocation-stage.js';

export interface RevocationWorkerOptions {
  bus: Bus;
  topic: string;
  /** The target kind this worker serves; its own consumer group, so a down Okta delays only Okta revocations. */
  target: RevocationTarget['kind'];
  policies: ReadonlyMap<string, RevocationPolicy>;
  ledger: RevocationLedger;
  log: Logger;
  policy: RetryPolicy;
  groupId: string;
  deadLetterTopic: string;
  /** Appends the `breakglass.revocation` outcome alert to the alerts topic. */
  raise: (alert: Alert) => Promise<unknown>;
  /** Called once an order of this target is finished (or found finished). */
  onDone?: (revocationId: string) => void;
}

/**
 * Carries out the revocation orders of one target kind. A retriable failure is retried with
 * backoff and full jitter through the bus (which heartbeats between attempts) until the order
 * is `maxAgeMs` old, then recorded `failed` with its outcome alert and dead-lettered. The
 * revocation ledger, keyed by revocation id (alert id + target), makes a re-read harmless: a
 * finished revocation is never sent again, only its outcome alert raised again (deduplicated by
 * the delivery ledger), so a crash between the target's answer and the commit loses nothing.
 */
export class RevocationWorker {
  readonly totals: Record<RevocationOutcome, number> = { revoked: 0, failed: 0, not_revocable: 0, manual: 0 };
  retries = 0;
  readonly #attempts = new Map<string, { n: number }>();
  readonly #stopping = new AbortController();
  #sub: Subscription | null = null;

  constructor(readonly o: RevocationWorkerOptions) {}

  async start(): Promise<this> {
    this.#sub = await this.o.bus.subscribe({
      topics: [this.o.topic],
      groupId: this.o.groupId,
      fromBeginning: true,
      deadLetterTopic: this.o.deadLetterTopic,
      maxAttempts: Number.MAX_SAFE_INTEGER,
      // A slow target holds one partition's orders, not every session's.
      partitionsConcurrently: 8,
      handler: (m) => this.#handle(m),
    });
    return this;
  }

  async #handle(m: BusMessage): Promise<void> {
    const order = decodeOrder(m);
    if (!order || order.target !== this.o.target) return;
    const done = await this.o.ledger.finished(order.revocationId);
    if (done) {
      await this.o.raise(revocationAlert(order.request.alert, done));
      return this.o.onDone?.(order.revocationId);
    }
    const policy = this.o.policies.get(order.request.identity);
    const target = policy ? targetsOf(policy, order.request).find((t) => t.kind === this.o.target) : undefined;
    if (!target) {
      // The config changed since the order was written: the SOC must hear that nobody revoked.
      return this.#finish(
        order,
        'failed',
        `no ${this.o.target} revocation target is configured for identity ${order.request.identity} any more`,
        0,
        m,
      );
    }
    let state = this.#attempts.get(order.revocationId);
    if (!state) {
      state = { n: 0 };
      this.#attempts.set(order.revocationId, state);
    } else await pause(backoffMs(state.n - 1, this.o.policy), this.#stopping.signal);
    state.n++;
    try {
      const result = await target.revoke(order.request);
      if (state.n > 1)
        this.o.log.info('revocation succeeded after retries', {
          target: this.o.target,
          revocationId: order.revocationId,
          attempts: state.n,
        });
      await this.#finish(order, result.outcome, result.detail, state.n, null);
    } catch (err) {
      const detail = `${errorMessage(err)}${err instanceof GlasswatchError && err.hint ? ` (${err.hint})` : ''}`;
      if (isRetriable(err) && Date.now() - order.detectedAtMs < this.o.policy.maxAgeMs) {
        if (state.n === 1)
          this.o.log.warn('revocation target failing; retrying until it answers or maxAge', {
            target: this.o.target,
            revocationId: order.revocationId,
            error: detail,
          });
        this.retries++;
        if (this.#stopping.signal.aborted && this.o.bus.kind === 'memory') {
          this.o.log.error('revocation not carried out at shutdown', { target: this.o.target, revocationId: order.revocationId });
          return;
        }
        throw new GlasswatchError(
          'BG_REVOCATION_RETRY',
          `${this.o.target}: revocation ${order.revocationId} not done yet (attempt ${state.n}): ${detail}`,
          {
            stage: 'sending',
            retriable: true,
            cause: err,
          },
        );
      }
      this.o.log.error('revocation failed', {
        target: this.o.target,
        identity: order.request.identity,
        alertId: order.request.alert.id,
        attempts: state.n,
        error: detail,
      });
      await this.#finish(order, 'failed', detail, state.n, m);
    }
  }

  async #finish(
    order: RevocationOrder,
    outcome: RevocationOutcome,
    detail: string,
    attempts: number,
    dead: BusMessage | null,
  ): Promise<void> {
    this.#attempts.delete(order.revocationId);
    const completedMs = Date.now();
    const r = order.request;
    const rec: RevocationRecord = {
      revocationId: order.revocationId,
      alertId: r.alert.id,
      sessionId: r.session.id,
      identity: r.identity,
      target: order.target,
      principal: r.principal,
      outcome,
      detail,
      attempts,
      requestedAt: new Date(order.detectedAtMs).toISOString(),
      completedAt: new Date(completedMs).toISOString(),
      timeToRevokeMs: completedMs - order.eventTimeMs,
      ...(r.followedFrom === undefined ? {} : { followedFrom: r.followedFrom }),
    };
    if (dead)
      await this.o.bus.publish(this.o.deadLetterTopic, [
        {
          key: dead.key,
          value: dead.value,
          headers: {
            ...dead.headers,
            [DEAD_LETTER_HEADERS.reason]: `revocation at ${order.target} ${outcome} after ${attempts} attempt(s): ${detail}`.slice(0, 1024),
            [DEAD_LETTER_HEADERS.topic]: dead.topic,
            [DEAD_LETTER_HEADERS.partition]: String(dead.partition),
            [DEAD_LETTER_HEADERS.offset]: dead.offset,
          },
        },
      ]);
    // The ledger first, then the outcome alert: after a crash between them the re-read finds the
    // finished revocation and raises the same alert id again (deduplicated), never revokes twice.
    await this.o.ledger.record(rec);
    await this.o.raise(revocationAlert(r.alert, rec));
    this.totals[outcome]++;
    this.o.onDone?.(order.revocationId);
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#sub?.stop();
  }
}
