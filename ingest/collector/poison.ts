/**
 * Poison units: what a collector does with input that can never be published as it is.
 *
 * The person glasswatch watches can write to the logs it reads, so one crafted record (nested
 * thousands deep, a gzip bomb, a line Kafka refuses as too large) must never hold a checkpoint
 * still: whatever follows it (a root `StopLogging`) would never be seen. Failures therefore fall in
 * two kinds, decided by cause, never by a `retriable` flag alone (kafkajs marks "gave up after its
 * retries" as non-retriable even when the broker is merely down):
 *
 * - **retriable**: the broker, the store, S3/SQS/Okta are unavailable. The unit is retried with
 *   back-off and never skipped; the checkpoint stays where it is.
 * - **permanent**: the unit itself is bad (`INPUT_TOO_LARGE`, `INPUT_CORRUPT`, a record Kafka refuses
 *   as too large, an event that cannot be serialized). It becomes a dead letter naming the unit and
 *   the reason, the checkpoint moves on, `glasswatch_collector_poison_units_total` counts it, and one
 *   `pipeline.poison` alert is raised per unit (id derived from collector + unit, so a re-read after
 *   a crash raises the same alert, which the delivery ledger delivers once).
 */
import type { Bus } from '../../core/bus/types.js';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import type { Source } from '../../core/event.js';
import { type Logger, silentLogger } from '../../core/log.js';
import { type Alert, pipelineAlert } from '../../detectors/alerts/alert.js';
import { pipelineAlertMessage } from '../../detectors/stages/alert-stage.js';

/** Error codes that mean "this input is bad", whatever the transport says. */
export const PERMANENT_INPUT_CODES: ReadonlySet<string> = new Set([
  'INPUT_TOO_LARGE',
  'INPUT_CORRUPT',
  'INPUT_TOO_DEEP',
  'BG_BUS_RECORD_TOO_LARGE',
  'BG_INGEST_RECORD_TOO_LARGE',
]);

/** Kafka error types that refuse one record (or the batch holding it) for its size or shape. */
const KAFKA_RECORD_REFUSED = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD']);

/** The error and its causes, outermost first (bounded: a cause chain can be cyclic). */
function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e: unknown = err; e !== undefined && e !== null && out.length < 8; e = (e as { cause?: unknown }).cause) {
    if (out.includes(e)) break;
    out.push(e);
  }
  return out;
}

/** True when Kafka refused a record for its size (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE, INVALID_RECORD). */
export function isRecordRefused(err: unknown): boolean {
  return causes(err).some((e) => {
    const x = e as { type?: unknown; code?: unknown };
    return (typeof x.type === 'string' && KAFKA_RECORD_REFUSED.has(x.type)) || x.code === 'BG_BUS_RECORD_TOO_LARGE';
  });
}

/**
 * Worth another try soon: our own retriable flag, or kafkajs saying it gave up on a broker that
 * is down or a leader that is moving (`KafkaJSNumberOfRetriesExceeded` is flagged non-retriable by
 * kafkajs itself, which is why the cause is read, not the flag).
 */
export function isTransientFailure(err: unknown): boolean {
  if (isRecordRefused(err)) return false;
  return causes(err).some((e) => {
    const x = e as { retriable?: unknown; name?: unknown };
    return x.retriable === true || x.name === 'KafkaJSNumberOfRetriesExceeded' || x.name === 'KafkaJSConnectionError';
  });
}

export type FailureKind = 'retriable' | 'permanent';

/**
 * Retriable unless the cause says the input itself is bad. Unknown errors are retriable on
 * purpose: skipping on an error we do not understand would lose data silently, retrying only
 * delays it (and the silence watchdog and error counters say so).
 */
export function classifyFailure(err: unknown): FailureKind {
  for (const e of causes(err)) {
    if (e instanceof GlasswatchError && PERMANENT_INPUT_CODES.has(e.code)) return 'permanent';
  }
  return isRecordRefused(err) ? 'permanent' : 'retriable';
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes, so a dead letter about an oversized record is never oversized itself. */
export function truncateUtf8(text: string, maxBytes: number): { text: string; truncated: boolean } {
  // Fast path: a UTF-16 unit is at most 3 UTF-8 bytes.
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes) return { text, truncated: false };
  return { text: Buffer.from(text.slice(0, maxBytes)).subarray(0, maxBytes).toString('utf8'), truncated: true };
}

export interface PoisonUnit {
  /** Where the unit is: `s3://bucket/key`, `/var/log/audit.log@1234`, `okta:/api/v1/logs?...`, `sqs:<queue>#<id>`. */
  unit: string;
  source: Source | null;
  /** Dead letters from this unit, and the first reason. */
  deadLetters: number;
  reason: string;
}

export interface PoisonAlertsOptions {
  bus: Bus;
  collector: string;
  /** Topic the alert JSON is published to (the collectors' `alertsTopic`). */
  alertsTopic: string;
  logger?: Logger;
  now?: () => number;
}

/** The `pipeline.poison` alert of one unit. */
export function poisonAlert(collector: string, p: PoisonUnit, nowMs: number): Alert {
  const at = new Date(nowMs).toISOString();
  const reason = p.reason.length > 512 ? `${p.reason.slice(0, 512)}…` : p.reason;
  return pipelineAlert({
    type: 'pipeline.poison',
    severity: 'high',
    key: [collector, p.unit],
    source: p.source,
    reason,
    time: at,
    detectedAt: at,
    summary: `Collector ${collector} could not publish ${p.deadLetters} record(s) of ${p.unit} and dead-lettered them (${reason}); the rest of the unit was published and the source moved on. Someone who can write to this source may be hiding activity: inspect the dead letter.`,
  });
}

/**
 * Publishes `pipeline.poison` alerts. A failure rejects (retriable): the caller leaves its
 * checkpoint where it is, so the unit is read again and the alert is not lost to the outage.
 */
export class PoisonAlerts {
  readonly #o: PoisonAlertsOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  /** Alerts raised so far (tests, CLI summary); bounded to the last 100. */
  readonly raised: Alert[] = [];

  constructor(options: PoisonAlertsOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
  }

  async raise(p: PoisonUnit): Promise<Alert> {
    const alert = poisonAlert(this.#o.collector, p, this.#now());
    try {
      await this.#o.bus.publish(this.#o.alertsTopic, [pipelineAlertMessage(alert)]);
    } catch (err) {
      throw new GlasswatchError(
        'BG_INGEST_POISON_ALERT',
        `${this.#o.collector}: pipeline.poison alert for ${p.unit} not published: ${errorMessage(err)}`,
        {
          stage: 'sending',
          retriable: true,
          cause: err,
          context: { unit: p.unit },
        },
      );
    }
    this.#log.warn('pipeline.poison', {
      collector: this.#o.collector,
      alertId: alert.id,
      unit: p.unit,
      deadLetters: p.deadLetters,
      reason: alert.reason,
    });
    this.raised.push(alert);
    if (this.raised.length > 100) this.raised.shift();
    return alert;
  }
}
