import { createHash, randomBytes } from 'node:crypto';
import { errorMessage, withRetry } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Store } from '../../core/store/client.js';
import type { RevocationRequest } from '../revoke/types.js';
import type { ConfirmPolicy, ConfirmSettings, ConfirmVia } from './config.js';
import type { Question, QuestionSender } from './senders.js';
import {
  answersSince,
  askedSince,
  type ConfirmationStep,
  type ConfirmState,
  firstAnswer,
  openQuestions,
  recordStep,
  SETTLED,
  stepsOf,
} from './store.js';
import { signConfirmToken } from './token.js';

/** What the gate revokes through: the detector, so outcome alerts and verification follow as at a verdict. */
export interface ConfirmationHost {
  revokeConfirmed(request: RevocationRequest, eventTimeMs: number, detectedAtMs: number): Promise<void>;
}

/** The detector's view of the gate. */
export interface Confirmations {
  asks(identity: string): boolean;
  /** Appended to the unauthorized alert's summary: the revocation waits for the owner, at most the timeout. */
  note(identity: string): string | null;
  /** Records the question (durably) and sends it in the background; never waits for the owner. */
  ask(request: RevocationRequest, eventTimeMs: number, detectedAtMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface GateOptions {
  store: Store;
  settings: ConfirmSettings;
  /** Identity id → its `confirm:`. */
  policies: ReadonlyMap<string, ConfirmPolicy>;
  senders: Record<ConfirmVia, QuestionSender>;
  log: Logger;
  /** How often answers and timeouts are looked at while questions are open. @default 250 */
  pollMs?: number;
  /**
   * How often questions asked by another detector process are taken on from the store, so one that
   * crashed while waiting is still revoked at the timeout by the members left. @default 5000
   */
  adoptEveryMs?: number;
}

interface OpenQuestion {
  asked: ConfirmationStep;
  request: RevocationRequest;
  eventTimeMs: number;
  detectedAtMs: number;
}

const KNOWN_MS = 86_400_000;
const MAX_KNOWN = 100_000;

/** A question's id from its unauthorized alert: a re-run of the same verdict never asks twice. */
export function confirmationIdOf(alertId: string): string {
  return `cf-${createHash('sha256').update(alertId).digest('hex').slice(0, 32)}`;
}

export function confirmLink(
  settings: ConfirmSettings,
  step: Pick<ConfirmationStep, 'confirmationId' | 'sessionId' | 'identity' | 'dueAtMs' | 'nonce'>,
): string {
  const token = signConfirmToken(settings.secret, {
    c: step.confirmationId,
    s: step.sessionId,
    i: step.identity,
    e: step.dueAtMs,
    n: step.nonce,
  });
  return `${settings.consoleUrl}/confirm/${encodeURIComponent(step.confirmationId)}?token=${token}`;
}

/**
 * "Was this you?" before cutting. For an identity with `confirm:`, an unauthorized use is a question
 * to its owner instead of an immediate revocation: the `asked` row (with the revocation request) is
 * in the store before the detector goes on, so a crash loses nothing; the question is sent in the
 * background. The console records the answer (`yes` with a ticket, or `no`) in the same table; this
 * gate polls for it and revokes on `no`, on no answer by the timeout, or when the question could not
 * be delivered. Held like the detector's pending verdicts: open questions are taken back from the
 * store at start, and a due one revokes at once.
 */
export class ConfirmationGate implements Confirmations {
  readonly totals = { asked: 0, yes: 0, no: 0, timeout: 0, undelivered: 0 };
  /** Milliseconds from the unauthorized verdict (alert detection) to the question handed to its receiver. */
  readonly sendLatencyMs: number[] = [];
  readonly #open = new Map<string, OpenQuestion>();
  readonly #sending = new Set<Promise<void>>();
  #host: ConfirmationHost | null = null;
  #timer: NodeJS.Timeout | null = null;
  #ticking: Promise<void> | null = null;
  /** Being revoked and recorded right now: not taken on again from the store meanwhile. */
  readonly #concluding = new Set<string>();
  #adoptedAtMs = 0;
  #closed = false;
  /** Questions asked in the last day (taken from the store at start): a verdict seen again is not asked twice. */
  readonly #known = new Set<string>();

  constructor(readonly o: GateOptions) {}

  asks(identity: string): boolean {
    return this.o.policies.has(identity);
  }

  note(identity: string): string | null {
    const p = this.o.policies.get(identity);
    return p ? `; asking its owner first (${p.via}): revoked on "no" or after ${p.timeoutSeconds} s without an answer` : null;
  }

  get open(): number {
    return this.#open.size;
  }

  attach(host: ConfirmationHost): void {
    this.#host = host;
  }

  /** Takes back the questions a stopped process left open (due ones revoke at the first tick). */
  async start(): Promise<void> {
    for (const id of await askedSince(this.o.store, Date.now() - KNOWN_MS)) this.#known.add(id);
    const taken = await this.#adopt();
    if (taken) this.o.log.info('open confirmations taken back', { count: taken });
    this.#schedule();
  }

  /** Open questions in the store this gate does not hold yet (asked by a process that stopped, or by another member). */
  async #adopt(): Promise<number> {
    this.#adoptedAtMs = Date.now();
    let taken = 0;
    for (const step of await openQuestions(this.o.store)) {
      if (this.#open.has(step.confirmationId) || this.#concluding.has(step.confirmationId)) continue;
      const parsed = parseRequest(step.request);
      if (!parsed) {
        this.o.log.error('open confirmation without its revocation request; cannot revoke it', { confirmationId: step.confirmationId });
        continue;
      }
      this.#open.set(step.confirmationId, { asked: step, ...parsed });
      this.#known.add(step.confirmationId);
      taken++;
    }
    return taken;
  }

  async ask(request: RevocationRequest, eventTimeMs: number, detectedAtMs: number): Promise<void> {
    const policy = this.o.policies.get(request.identity);
    if (!policy) return;
    const confirmationId = confirmationIdOf(request.alert.id);
    if (this.#open.has(confirmationId)) return;
    // The same verdict again (an event re-delivered after a crash): the first question stands. The
    // store is read only for a question known to be asked, not once per verdict.
    const before = this.#known.has(confirmationId) ? await stepsOf(this.o.store, [confirmationId]) : [];
    const asked = before.find((s) => s.state === 'asked');
    if (asked) {
      const settled = before.some((s) => s.state === 'yes' || s.state === 'timeout' || s.state === 'undelivered' || s.state === 'revoked');
      if (!settled) this.#open.set(confirmationId, { asked, request, eventTimeMs, detectedAtMs });
      this.#schedule();
      return;
    }
    const now = Date.now();
    const step: ConfirmationStep = {
      confirmationId,
      state: 'asked',
      sessionId: request.session.id,
      identity: request.identity,
      alertId: request.alert.id,
      via: policy.via,
      owner: policy.owner,
      nonce: randomBytes(18).toString('base64url'),
      ticketId: '',
      actor: 'glasswatch',
      detail: `asked ${policy.owner} via ${policy.via}; no answer by the due time revokes`,
      askedAtMs: now,
      dueAtMs: now + policy.timeoutSeconds * 1000,
      atMs: now,
      request: JSON.stringify({ request, eventTimeMs, detectedAtMs }),
    };
    await recordStep(this.o.store, step);
    this.#known.add(confirmationId);
    if (this.#known.size > MAX_KNOWN) this.#known.delete(this.#known.values().next().value as string);
    this.totals.asked++;
    this.#open.set(confirmationId, { asked: step, request, eventTimeMs, detectedAtMs });
    const sending = this.#send(step, request, detectedAtMs).finally(() => this.#sending.delete(sending));
    this.#sending.add(sending);
    this.#schedule();
  }

  async #send(step: ConfirmationStep, request: RevocationRequest, detectedAtMs: number): Promise<void> {
    const e = request.event;
    const q: Question = {
      confirmationId: step.confirmationId,
      sessionId: step.sessionId,
      identity: step.identity,
      alertId: step.alertId,
      owner: step.owner,
      via: step.via as ConfirmVia,
      link: confirmLink(this.o.settings, step),
      askedAtMs: step.askedAtMs,
      dueAtMs: step.dueAtMs,
      principal: e.actor.name ?? e.actor.id ?? 'unknown principal',
      sourceIp: e.sourceIp ?? 'unknown IP',
      action: e.action,
      eventTime: e.time,
      where: [e.source, e.account, e.org, e.cluster].filter(Boolean).join(' '),
    };
    try {
      // Retried while the answer could still come in time; past that, the timeout revokes anyway.
      const detail = await withRetry(() => this.o.senders[q.via](q), {
        retries: 3,
        initialDelayMs: 200,
        maxDelayMs: Math.max(200, (step.dueAtMs - Date.now()) / 4),
      });
      this.sendLatencyMs.push(Date.now() - detectedAtMs);
      if (this.sendLatencyMs.length > 1000) this.sendLatencyMs.shift();
      this.o.log.info('confirmation asked', { confirmationId: q.confirmationId, identity: q.identity, via: q.via, detail });
    } catch (err) {
      // Fail closed: an owner who cannot be asked cannot answer, so the session is revoked now.
      this.o.log.error('confirmation not delivered; revoking at once', { confirmationId: q.confirmationId, error: errorMessage(err) });
      const open = this.#open.get(q.confirmationId);
      if (open) await this.#conclude(open, 'undelivered', `question not delivered (${errorMessage(err)}): revoked at once`, 'glasswatch');
    }
  }

  #schedule(): void {
    if (this.#timer || this.#closed) return;
    // Always on (unref'd): with nothing open a tick is one store read every adoptEveryMs.
    this.#timer = setInterval(() => {
      this.tick().catch((err: unknown) => this.o.log.error('confirmations not checked; retried', { error: errorMessage(err) }));
    }, this.o.pollMs ?? 250);
    this.#timer.unref();
  }

  /** Acts on answers recorded by the console and on questions past their due time. */
  tick(nowMs = Date.now()): Promise<void> {
    if (this.#ticking) return this.#ticking;
    this.#ticking = this.#tick(nowMs).finally(() => {
      this.#ticking = null;
    });
    return this.#ticking;
  }

  async #tick(nowMs: number): Promise<void> {
    if (!this.#host) return;
    if (nowMs - this.#adoptedAtMs >= (this.o.adoptEveryMs ?? 5000)) await this.#adopt();
    if (this.#open.size === 0) return;
    // An answer is recorded after its question was asked: the oldest open question bounds the search.
    let since = Number.POSITIVE_INFINITY;
    for (const q of this.#open.values()) since = Math.min(since, q.asked.askedAtMs);
    // Less five minutes: the console answering may run on another host with its own clock.
    const steps = await answersSince(this.o.store, since - 300_000);
    for (const [id, q] of [...this.#open]) {
      const answer = firstAnswer(steps, id);
      if (answer?.state === 'yes') {
        this.#open.delete(id);
        this.totals.yes++;
        this.o.log.warn('owner confirmed a break-glass use; session kept and flagged for review', {
          confirmationId: id,
          sessionId: q.asked.sessionId,
          ticketId: answer.ticketId,
        });
      } else if (answer?.state === 'no') {
        this.totals.no++;
        await this.#conclude(q, 'revoked', `owner answered no at ${new Date(answer.atMs).toISOString()}: revoked`, 'glasswatch');
      } else if (nowMs >= q.asked.dueAtMs) {
        this.totals.timeout++;
        await this.#conclude(
          q,
          'timeout',
          `no answer within ${Math.round((q.asked.dueAtMs - q.asked.askedAtMs) / 1000)} s: revoked`,
          'glasswatch',
        );
      }
    }
  }

  async #conclude(q: OpenQuestion, state: ConfirmState, detail: string, actor: string): Promise<void> {
    const id = q.asked.confirmationId;
    if (!this.#open.delete(id)) return;
    if (state === 'undelivered') this.totals.undelivered++;
    this.#concluding.add(id);
    try {
      // Another detector member (each takes on the open questions in the store) may have settled it.
      if ((await stepsOf(this.o.store, [id])).some((s) => SETTLED.includes(s.state))) return;
      // Revoke first, record after: a crash in between revokes again at the next start (same revocation ids).
      await this.#host!.revokeConfirmed(q.request, q.eventTimeMs, q.detectedAtMs);
      await recordStep(this.o.store, { ...q.asked, state, detail, actor, request: '', atMs: Date.now() });
    } catch (err) {
      this.#open.set(id, q);
      this.o.log.error('revocation after a confirmation failed; retried', { confirmationId: id, error: errorMessage(err) });
    } finally {
      this.#concluding.delete(id);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await Promise.allSettled([...this.#sending]);
    await this.#ticking?.catch(() => {});
  }
}

function parseRequest(text: string): Omit<OpenQuestion, 'asked'> | null {
  try {
    const v = JSON.parse(text) as Omit<OpenQuestion, 'asked'>;
    if (!v?.request?.alert || !v.request.session || typeof v.eventTimeMs !== 'number') return null;
    return v;
  } catch {
    return null;
  }
}
