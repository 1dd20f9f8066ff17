import type { Bus, BusMessage, OutgoingMessage } from '../../core/bus/types.js';
import type { Logger } from '../../core/log.js';
import { type Alert, type CompleteAlert, completeAlert } from '../alerts/alert.js';
import { AlertDispatcher, type DeliveryLedger, type DispatcherOptions, type DispatchResult } from '../alerts/dispatcher.js';
import { localProducer } from '../alerts/formats/index.js';
import { isAlertType } from '../alerts/routing.js';
import { AppendBuffer } from './append-buffer.js';

/** Headers of an alert appended by the detector: a delivery worker takes only these (the topic may carry other producers' copies). */
export const STAGE_HEADERS = { stage: 'glasswatch-stage', type: 'glasswatch-alert-type', id: 'glasswatch-alert-id' } as const;
export const ALERT_STAGE = 'alert/1';

/** Keyed by session, so one session's alerts stay in order on one partition (grouping, PagerDuty resolve). */
export function alertMessage(a: CompleteAlert): OutgoingMessage {
  return {
    key: a.sessionId ?? a.id,
    value: JSON.stringify(a),
    headers: { [STAGE_HEADERS.stage]: ALERT_STAGE, [STAGE_HEADERS.type]: a.type, [STAGE_HEADERS.id]: a.id },
  };
}

/**
 * An alert raised outside the detector (a collector's pipeline.silence, pipeline.poison,
 * pipeline.tamper) as the stage message the delivery workers take: completed with this process as
 * producer. Bare alert JSON on the topic is ignored by the workers.
 */
export function pipelineAlertMessage(alert: Alert): OutgoingMessage {
  return alertMessage(alert.schemaVersion ? (alert as CompleteAlert) : completeAlert({ ...alert }, { producer: localProducer() }));
}

/** The alert of a stage message; null for anything else on the topic. Throws on a stage message that is not an alert. */
export function decodeAlert(m: BusMessage): CompleteAlert | null {
  if (m.headers[STAGE_HEADERS.stage] !== ALERT_STAGE) return null;
  const a = JSON.parse(m.value.toString('utf8')) as unknown;
  if (!isAlertShape(a)) throw new Error(`${m.topic}/${m.partition}@${m.offset}: not a glasswatch alert (id, type, severity, detectedAt)`);
  return a as CompleteAlert;
}

/**
 * The detector's side of alert delivery: each alert is completed, throttled, and appended to the
 * alerts topic; delivery workers (one consumer group per output) take it from there. The detector
 * waits only for Kafka's acknowledgement, never for an output. The delivery ledger under the
 * topic's output name (`bus:<topic>`, as the Kafka output has always been named) keeps a
 * re-processed event from appending its alerts twice.
 */
export class AlertAppender extends AlertDispatcher {
  readonly #onAppend: ((a: CompleteAlert) => void) | undefined;
  readonly outputName: string;

  constructor(
    readonly bus: Bus,
    readonly topic: string,
    ledger: DeliveryLedger,
    log: Logger,
    options: DispatcherOptions & { onAppend?: (a: CompleteAlert) => void } = {},
  ) {
    super([], ledger, log, {}, { ...options, clock: 'event' });
    this.#onAppend = options.onAppend;
    this.outputName = `bus:${topic}`;
    this.#buffer = new AppendBuffer<CompleteAlert>(
      bus,
      topic,
      async (alerts) => {
        const at = new Date().toISOString();
        await this.ledger.recordMany(
          alerts.map((a) => ({
            alertId: a.id,
            output: this.outputName,
            status: 'delivered',
            attempts: 1,
            at,
            messageId: null,
            error: null,
          })),
        );
        for (const a of alerts) this.#onAppend?.(a);
      },
      (ids) => this.ledger.deliveredAmong(this.outputName, ids),
      (alerts) => {
        this.totals.delivered -= alerts.length;
        this.totals.skipped += alerts.length;
      },
    );
  }
  readonly #buffer: AppendBuffer<CompleteAlert>;

  override async dispatch(alert: Alert): Promise<DispatchResult> {
    const a = this.complete(alert);
    const result: DispatchResult = { delivered: 0, skipped: 0, failed: 0 };
    if (!this.throttle.admit(a)) {
      this.routingTotals.throttled++;
      return result;
    }
    // Appended with the other alerts of this turn (one ledger lookup and one produce request for
    // all of them; an alert appended before a restart is dropped there); the service settles
    // before committing the events' offsets.
    if (this.#buffer.add(a.id, a, alertMessage(a))) {
      result.delivered++;
      this.totals.delivered++;
    } else result.skipped++;
    return result;
  }

  /** Resolves once every alert dispatched so far is on the topic; the offset of their event may be committed then. */
  settle(): Promise<void> {
    return this.#buffer.settle();
  }

  override async close(): Promise<void> {
    await this.settle();
    await super.close();
  }
}

function isAlertShape(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const a = v as Record<string, unknown>;
  return (
    typeof a.id === 'string' &&
    typeof a.type === 'string' &&
    isAlertType(a.type) &&
    typeof a.severity === 'string' &&
    typeof a.detectedAt === 'string' &&
    !Number.isNaN(Date.parse(a.detectedAt))
  );
}

/**
 * Waits until the alerts and revocation orders a detector raised are on their topics (no-op for
 * the inline dispatchers of replay). The live service calls it before an event's offset commits.
 */
export async function settleAppends(d: { options: { alerts: unknown; revocations: unknown } }): Promise<void> {
  const r = d.options.revocations as { settle?: () => Promise<void> };
  const a = d.options.alerts as { settle?: () => Promise<void> };
  await Promise.all([r.settle?.(), a.settle?.()]);
}
