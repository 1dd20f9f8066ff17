/**
 * Normalize → publish → acknowledge → checkpoint, the one delivery path of every live collector.
 *
 * A collector hands over a *unit* (an API page, a webhook body, a chunk of a log file) and a
 * `commit` callback that saves its checkpoint. Events go to `topics.events` keyed by
 * `identityKey` (per-identity order), dead letters to `topics.deadLetters` with the reason and
 * origin in headers; `commit` runs only after the bus acknowledged every record of the unit. A
 * crash therefore re-sends at most the units that were not acknowledged, and the dedupe window
 * drops the ones it already saw.
 */
import type { Bus, OutgoingMessage } from '../../core/bus/types.js';
import { DEAD_LETTER_HEADERS } from '../../core/bus/types.js';
import { errorMessage, GlasswatchError, type RetryOptions, withRetry } from '../../core/errors.js';
import type { AuditEvent } from '../../core/event.js';
import { type Logger, silentLogger } from '../../core/log.js';
import { identityKey } from '../../core/pipeline/stage.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { normalizeBuffer, normalizeDocument } from '../index.js';
import type { NormalizeOptions, NormalizeResult, Origin } from '../types.js';
import type { DedupeWindow } from './dedupe.js';
import type { CollectorMetrics } from './metrics.js';
import { isRecordRefused, isTransientFailure, PoisonAlerts, truncateUtf8 } from './poison.js';

/** Headers on a collector's dead letter, beside `DEAD_LETTER_HEADERS.reason`. */
export const COLLECTOR_DLQ_HEADERS = {
  collector: 'x-glasswatch-dlq-collector',
  source: 'x-glasswatch-dlq-source',
  /** JSON `Origin` ({file, line, index, path}). */
  origin: 'x-glasswatch-dlq-origin',
  stage: 'x-glasswatch-dlq-stage',
  /** Set when the text was cut: the original size in bytes. */
  truncated: 'x-glasswatch-dlq-truncated-from',
} as const;

/** Something told about every acknowledged unit (the silence watchdog). */
export interface DeliveryListener {
  delivered(events: number): void;
}

export interface PublisherOptions {
  bus: Bus;
  /** Metrics label, log binding and dead-letter header: `okta`, `okta-hook`, `k8s`, `cloudtrail`. */
  collector: string;
  topics: { events: string; deadLetters: string };
  normalize?: NormalizeOptions;
  metrics?: CollectorMetrics;
  logger?: Logger;
  /** Drop events whose dedupe key was already delivered. Share one window (and one bus) between paths that overlap. */
  dedupe?: DedupeWindow;
  /** @default `<source>:<id>`, plus `:<stage>` for Kubernetes (one auditID has several stages) */
  dedupeKey?: (event: AuditEvent) => string;
  listener?: DeliveryListener;
  /** Retries of a failed publish before `publishUnit` rejects. @default { retries: 5 } (transient errors only) */
  retry?: RetryOptions;
  /**
   * Largest event (JSON bytes) sent to Kafka; a bigger one is a dead letter (truncated text, its
   * location and size), never a produce request the broker refuses forever. Below the broker's
   * default `message.max.bytes` (1 MiB). @default 1_000_000
   */
  maxRecordBytes?: number;
  /** Dead-letter text is cut to this many UTF-8 bytes (the origin names where the whole input is). @default 262144 */
  maxDeadLetterBytes?: number;
  /** When set, a unit with dead letters raises one `pipeline.poison` alert on this topic before its checkpoint moves. */
  alertsTopic?: string;
}

export interface UnitSummary {
  events: number;
  deadLetters: number;
  skipped: number;
  duplicates: number;
}

export function defaultDedupeKey(e: AuditEvent): string {
  if (e.source === 'k8s') return `k8s:${e.id}:${typeof e.raw.stage === 'string' ? e.raw.stage : ''}`;
  return `${e.source}:${e.id}`;
}

// kafkajs' idempotent producer must not send concurrently, and the dedupe check must see every
// earlier unit's outcome: units sharing a bus publish one after another.
const locks = new WeakMap<Bus, Promise<unknown>>();
function serialized<T>(bus: Bus, fn: () => Promise<T>): Promise<T> {
  const previous = locks.get(bus) ?? Promise.resolve();
  const next = previous.then(fn, fn);
  locks.set(
    bus,
    next.catch(() => {}),
  );
  return next;
}

interface Pending {
  message: OutgoingMessage;
  /** Where the record came from, for the dead letter if Kafka refuses it. */
  origin: Origin;
  source: string | null;
}

export class EventPublisher {
  readonly collector: string;
  readonly #o: PublisherOptions;
  readonly #log: Logger;
  readonly #key: (e: AuditEvent) => string;
  readonly #maxRecordBytes: number;
  readonly #maxDeadLetterBytes: number;
  readonly #alerts: PoisonAlerts | null;

  constructor(options: PublisherOptions) {
    this.#o = options;
    this.collector = options.collector;
    this.#log = options.logger ?? silentLogger;
    this.#key = options.dedupeKey ?? defaultDedupeKey;
    this.#maxRecordBytes = options.maxRecordBytes ?? 1_000_000;
    this.#maxDeadLetterBytes = options.maxDeadLetterBytes ?? 256 * 1024;
    this.#alerts = options.alertsTopic
      ? new PoisonAlerts({ bus: options.bus, collector: options.collector, alertsTopic: options.alertsTopic, logger: this.#log })
      : null;
    options.metrics?.register(options.collector);
  }

  /** `pipeline.poison` alerts raised by this publisher (tests, CLI summary). */
  get poisonAlerts(): readonly Alert[] {
    return this.#alerts?.raised ?? [];
  }

  /**
   * Normalizes one parsed body with this collector's options (source restriction, org, cluster).
   * Never throws: a normalizer failure becomes a dead letter for the body, so the source moves on.
   */
  normalizeDocument(doc: unknown, origin: Origin): NormalizeResult[] {
    try {
      return normalizeDocument(doc, origin, this.#o.normalize);
    } catch (err) {
      if (!Array.isArray(doc)) return [this.#normalizerFailed(origin, err, 0)];
    }
    // An API page: one record broke the normalizer, the others still go out (the cursor moves past the page).
    const out: NormalizeResult[] = [];
    doc.forEach((item: unknown, index) => {
      const at: Origin = { ...origin, index };
      try {
        out.push(...normalizeDocument(item, at, this.#o.normalize));
      } catch (err) {
        out.push(this.#normalizerFailed({ ...at, path: `[${index}]` }, err, 0, `normalizer failed on this record: ${errorMessage(err)}`));
      }
    });
    return out;
  }

  /** Never throws: records normalized before a normalizer failure are kept, the rest of the unit is one dead letter. */
  normalizeBuffer(bytes: Buffer, file: string): NormalizeResult[] {
    const out: NormalizeResult[] = [];
    try {
      for (const r of normalizeBuffer(bytes, file, this.#o.normalize)) out.push(r);
    } catch (err) {
      out.push(this.#normalizerFailed({ file, line: null, index: null }, err, out.length));
    }
    return out;
  }

  #normalizerFailed(origin: Origin, err: unknown, after: number, reason?: string): NormalizeResult {
    this.#o.metrics?.recordError(this.collector, 'processing');
    return {
      kind: 'dead',
      source: this.#o.normalize?.source ?? null,
      reason: reason ?? `normalization stopped after ${after} record(s), the rest of the unit is unread: ${errorMessage(err)}`,
      origin,
      text: '',
    };
  }

  #deadLetter(reason: string, origin: Origin, source: string | null, text: string): Pending {
    const cut = truncateUtf8(text, this.#maxDeadLetterBytes);
    const headers: Record<string, string> = {
      [DEAD_LETTER_HEADERS.reason]: reason.length > 1024 ? `${reason.slice(0, 1024)}…` : reason,
      [COLLECTOR_DLQ_HEADERS.collector]: this.collector,
      [COLLECTOR_DLQ_HEADERS.source]: source ?? '',
      [COLLECTOR_DLQ_HEADERS.origin]: JSON.stringify(origin),
      [COLLECTOR_DLQ_HEADERS.stage]: 'processing',
    };
    if (cut.truncated) headers[COLLECTOR_DLQ_HEADERS.truncated] = String(Buffer.byteLength(text));
    return { message: { key: null, value: cut.text, headers }, origin, source };
  }

  /**
   * Publishes one unit and then runs `commit` (save the checkpoint). Input that can never be
   * published (an event too large or too deep to serialize, a record Kafka refuses for its size)
   * becomes a dead letter and the unit goes on; a unit with dead letters counts as poison. Rejects,
   * without committing, only when the bus did not acknowledge after the retries (broker down,
   * leader moving): the caller re-reads the unit later, it never skips it.
   */
  async publishUnit(results: readonly NormalizeResult[], commit?: () => Promise<void>): Promise<UnitSummary> {
    const o = this.#o;
    const summary = await serialized(o.bus, async () => {
      const events: Pending[] = [];
      const dead: Pending[] = [];
      const keys: string[] = [];
      const inUnit = new Set<string>();
      let skipped = 0;
      let duplicates = 0;
      let newest: number | null = null;
      for (const r of results) {
        if (r.kind === 'event') {
          const key = this.#key(r.event);
          if (o.dedupe && (o.dedupe.has(key) || inUnit.has(key))) {
            duplicates++;
            continue;
          }
          let value: string;
          try {
            value = JSON.stringify(r.event);
          } catch (err) {
            // Nested beyond V8's stack: no consumer could read it back either.
            dead.push(this.#deadLetter(`event ${r.event.id} cannot be serialized: ${errorMessage(err)}`, r.origin, r.event.source, ''));
            continue;
          }
          if (value.length * 3 > this.#maxRecordBytes && Buffer.byteLength(value) > this.#maxRecordBytes) {
            dead.push(
              this.#deadLetter(
                `event ${r.event.id} is ${Buffer.byteLength(value)} bytes, over the ${this.#maxRecordBytes}-byte record limit (maxRecordBytes)`,
                r.origin,
                r.event.source,
                value,
              ),
            );
            continue;
          }
          inUnit.add(key);
          keys.push(key);
          events.push({ message: { key: identityKey(r.event), value }, origin: r.origin, source: r.event.source });
          const t = Date.parse(r.event.time);
          if (!Number.isNaN(t) && (newest === null || t > newest)) newest = t;
        } else if (r.kind === 'dead') {
          dead.push(this.#deadLetter(r.reason, r.origin, r.source, r.text));
        } else skipped++;
      }
      // Events before dead letters: a dead letter never holds back detection. A record Kafka refuses
      // joins the dead letters, with the reason, and the rest of the unit goes out.
      const refused: Pending[] = [];
      const refusedEvents = new Set<Pending>();
      await this.#send(o.topics.events, events, (p, err) => {
        refusedEvents.add(p);
        const event = typeof p.message.value === 'string' ? p.message.value : p.message.value.toString('utf8');
        refused.push(this.#deadLetter(`Kafka refused the event: ${errorMessage(err)}`, p.origin, p.source, event));
      });
      const deadLetters = [...dead, ...refused];
      await this.#send(o.topics.deadLetters, deadLetters, async (p, err) => {
        // The dead letter itself is refused (a broker limit below ours): keep its reason and origin, drop the text.
        const bare = this.#deadLetter(
          `${p.message.headers?.[DEAD_LETTER_HEADERS.reason] ?? ''} [text dropped: ${errorMessage(err)}]`,
          p.origin,
          p.source,
          '',
        );
        await this.#send(o.topics.deadLetters, [bare], (_, last) => {
          o.metrics?.recordError(o.collector, 'sending');
          this.#log.error('dead letter refused even without its text; the unit is named by the pipeline.poison alert', {
            origin: p.origin,
            error: errorMessage(last),
          });
        });
      });
      const eventCount = events.length - refused.length;
      o.dedupe?.addAll(refused.length === 0 ? keys : keys.filter((_, i) => !refusedEvents.has(events[i] as Pending)));
      // A unit with dead letters is poison: it held input that can never be published as it is.
      if (deadLetters.length > 0) {
        const first = deadLetters[0] as Pending;
        o.metrics?.recordPoison(o.collector);
        // Before the checkpoint moves: if the alert cannot be published, the unit is read again.
        await this.#alerts?.raise({
          unit: first.origin.file,
          source: (first.source || null) as AuditEvent['source'] | null,
          deadLetters: deadLetters.length,
          reason: first.message.headers?.[DEAD_LETTER_HEADERS.reason] ?? 'dead-lettered',
        });
      }
      o.metrics?.recordBatch(o.collector, {
        events: eventCount,
        deadLetters: deadLetters.length,
        skipped,
        duplicates,
        newestEventMs: newest,
      });
      return { events: eventCount, deadLetters: deadLetters.length, skipped, duplicates };
    });
    o.listener?.delivered(summary.events);
    if (commit) await commit();
    return summary;
  }

  /**
   * Publishes `batch` with retries of transient failures. When Kafka refuses a record for its size,
   * the batch is sent again one record at a time and each refused record goes to `refused`.
   */
  async #send(topic: string, batch: Pending[], refused: (p: Pending, err: unknown) => void | Promise<void>): Promise<void> {
    if (batch.length === 0) return;
    const o = this.#o;
    try {
      await withRetry(
        () =>
          o.bus.publish(
            topic,
            batch.map((p) => p.message),
          ),
        {
          retries: 5,
          ...o.retry,
          shouldRetry: o.retry?.shouldRetry ?? isTransientFailure,
          onRetry: (err, attempt, delayMs) => {
            o.metrics?.recordError(o.collector, 'sending');
            this.#log.warn('publish failed, retrying', { error: errorMessage(err), attempt, delayMs, topic, messages: batch.length });
          },
        },
      );
      return;
    } catch (err) {
      if (!isRecordRefused(err)) {
        o.metrics?.recordError(o.collector, 'sending');
        throw err instanceof GlasswatchError
          ? err
          : new GlasswatchError(
              'BG_INGEST_PUBLISH_FAILED',
              `${o.collector}: publishing ${batch.length} message(s) failed: ${errorMessage(err)}`,
              {
                stage: 'sending',
                retriable: true,
                cause: err,
              },
            );
      }
      if (batch.length === 1) {
        await refused(batch[0] as Pending, err);
        return;
      }
      this.#log.warn('Kafka refused a record of the batch; sending one by one', {
        topic,
        messages: batch.length,
        error: errorMessage(err),
      });
    }
    for (const p of batch) await this.#send(topic, [p], refused);
  }
  /** `normalizeDocument` + `publishUnit`. */
  publishDocument(doc: unknown, origin: Origin, commit?: () => Promise<void>): Promise<UnitSummary> {
    return this.publishUnit(this.normalizeDocument(doc, origin), commit);
  }

  /** `normalizeBuffer` + `publishUnit` (a whole S3 object or file chunk). */
  publishBuffer(bytes: Buffer, file: string, commit?: () => Promise<void>): Promise<UnitSummary> {
    return this.publishUnit(this.normalizeBuffer(bytes, file), commit);
  }
}
