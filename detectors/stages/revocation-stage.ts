import type { Bus, BusMessage } from '../../core/bus/types.js';
import type { Logger } from '../../core/log.js';
import {
  RevocationDispatcher,
  type RevocationDispatcherOptions,
  type RevocationLedger,
  type RevocationPolicy,
  type RevocationRecord,
  revocationIdOf,
  targetsOf,
} from '../revoke/dispatcher.js';
import type { RevocationRequest, RevocationTarget } from '../revoke/types.js';
import { AppendBuffer } from './append-buffer.js';

export const REVOCATION_STAGE = 'revocation/1';
export const REVOCATION_HEADERS = {
  stage: 'glasswatch-stage',
  target: 'glasswatch-revocation-target',
  id: 'glasswatch-revocation-id',
} as const;

/** One revocation at one target, as the detector appends it to the revocations topic. */
export interface RevocationOrder {
  revocationId: string;
  target: RevocationTarget['kind'];
  request: RevocationRequest;
  eventTimeMs: number;
  detectedAtMs: number;
}

export function decodeOrder(m: BusMessage): RevocationOrder | null {
  if (m.headers[REVOCATION_HEADERS.stage] !== REVOCATION_STAGE) return null;
  const o = JSON.parse(m.value.toString('utf8')) as RevocationOrder;
  if (
    typeof o?.revocationId !== 'string' ||
    typeof o.target !== 'string' ||
    typeof o.request?.identity !== 'string' ||
    !o.request.alert ||
    !o.request.session
  )
    throw new Error(`${m.topic}/${m.partition}@${m.offset}: not a revocation order (revocationId, target, request)`);
  return o;
}

/**
 * The detector's side of revocation: an automatic revocation is appended to the revocations
 * topic, one order per target, keyed by session; revocation workers (one consumer group per target
 * kind) call the target, retry while it is still useful, and raise the `breakglass.revocation`
 * outcome alert. The detector never waits on a target. Manual mode needs no target and stays
 * inline (a ledger record and its alert), exactly as before.
 */
export class RevocationAppender extends RevocationDispatcher {
  /** Orders appended by this process (tests, status). */
  appended = 0;

  constructor(
    policies: ReadonlyMap<string, RevocationPolicy>,
    ledger: RevocationLedger,
    log: Logger,
    readonly bus: Bus,
    readonly topic: string,
    options: RevocationDispatcherOptions & { onAppend?: (revocationId: string) => void } = {},
  ) {
    super(policies, ledger, log, options);
    this.#onAppend = options.onAppend;
    this.#buffer = new AppendBuffer<string>(bus, topic, async (ids) => {
      this.appended += ids.length;
      for (const id of ids) this.#onAppend?.(id);
    });
  }
  readonly #buffer: AppendBuffer<string>;
  readonly #onAppend: ((revocationId: string) => void) | undefined;

  override async revoke(request: RevocationRequest, eventTimeMs: number, detectedAtMs: number): Promise<RevocationRecord[]> {
    const policy = this.policies.get(request.identity);
    if (policy?.mode !== 'auto') return super.revoke(request, eventTimeMs, detectedAtMs);
    // A followed link with no target for its plane is recorded inline (not_revocable), like manual mode.
    const targets = targetsOf(policy, request);
    if (targets.length === 0) return super.revoke(request, eventTimeMs, detectedAtMs);
    const orders = targets.map((t) => {
      const revocationId = revocationIdOf(request, t.kind);
      const order: RevocationOrder = {
        revocationId,
        target: t.kind,
        request: { ...request, idempotencyKey: revocationId },
        eventTimeMs,
        detectedAtMs,
      };
      return {
        key: request.session.id,
        value: JSON.stringify(order),
        headers: {
          [REVOCATION_HEADERS.stage]: REVOCATION_STAGE,
          [REVOCATION_HEADERS.target]: t.kind,
          [REVOCATION_HEADERS.id]: revocationId,
        },
      };
    });
    for (const o of orders) this.#buffer.add(o.headers[REVOCATION_HEADERS.id]!, o.headers[REVOCATION_HEADERS.id]!, o);
    return [];
  }

  /** Resolves once every order so far is on the topic. */
  settle(): Promise<void> {
    return this.#buffer.settle();
  }
}
