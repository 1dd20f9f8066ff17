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
import { normalizeBuffer, normalizeDocument } from '../index.js';
import type { NormalizeOptions, NormalizeResult, Origin } from '../types.js';
import type { DedupeWindow } from './dedupe.js';
import type { CollectorMetrics } from './metrics.js';

/** Headers on a collector's dead letter, beside `DEAD_LETTER_HEADERS.reason`. */
export const COLLECTOR_DLQ_HEADERS = {
  collector: 'x-glasswatch-dlq-collector',
  source: 'x-glasswatch-dlq-source',
  /** JSON `Origin` ({file, line, index, path}). */
  origin: 'x-glasswatch-dlq-origin',
  stage: 'x-glasswatch-dlq-stage',
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
  /** Retries of a failed publish before `publishUnit` rejects. @default { retries: 5 } (retriable errors only) */
  retry?: RetryOptions;
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

export class EventPublisher {
  readonly collector: string;
  readonly #o: PublisherOptions;
  readonly #log: Logger;
  readonly #key: (e: AuditEvent) => string;

  constructor(options: PublisherOptions) {
    this.#o = options;
    this.collector = options.collector;
    this.#log = options.logger ?? silentLogger;
    this.#key = options.dedupeKey ?? defaultDedupeKey;
    options.metrics?.register(options.collector);
  }

  /** Normalizes one parsed body with this collector's options (source restriction, org, cluster). */
  normalizeDocument(doc: unknown, origin: Origin): NormalizeResult[] {
    return normalizeDocument(doc, origin, this.#o.normalize);
  }

  normalizeBuffer(bytes: Buffer, file: string): NormalizeResult[] {
    return [...normalizeBuffer(bytes, file, this.#o.normalize)];
  }

  /**
   * Publishes one unit and then runs `commit` (save the checkpoint). Rejects, without committing,
   * if the bus did not acknowledge after the retries: the caller re-reads the unit later.
   */
  async publishUnit(results: readonly NormalizeResult[], commit?: () => Promise<void>): Promise<UnitSummary> {
    const o = this.#o;
    const summary = await serialized(o.bus, async () => {
      const events: OutgoingMessage[] = [];
      const dead: OutgoingMessage[] = [];
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
          inUnit.add(key);
          keys.push(key);
          events.push({ key: identityKey(r.event), value: JSON.stringify(r.event) });
          const t = Date.parse(r.event.time);
          if (!Number.isNaN(t) && (newest === null || t > newest)) newest = t;
        } else if (r.kind === 'dead') {
          dead.push({
            key: null,
            value: r.text,
            headers: {
              [DEAD_LETTER_HEADERS.reason]: r.reason,
              [COLLECTOR_DLQ_HEADERS.collector]: o.collector,
              [COLLECTOR_DLQ_HEADERS.source]: r.source ?? '',
              [COLLECTOR_DLQ_HEADERS.origin]: JSON.stringify(r.origin),
              [COLLECTOR_DLQ_HEADERS.stage]: 'processing',
            },
          });
        } else skipped++;
      }
      await withRetry(
        async () => {
          // Events before dead letters: a dead letter never holds back detection.
          if (events.length > 0) await o.bus.publish(o.topics.events, events);
          if (dead.length > 0) await o.bus.publish(o.topics.deadLetters, dead);
        },
        {
          retries: 5,
          ...o.retry,
          onRetry: (err, attempt, delayMs) => {
            o.metrics?.recordError(o.collector, 'sending');
            this.#log.warn('publish failed, retrying', { error: errorMessage(err), attempt, delayMs, events: events.length });
          },
        },
      ).catch((err: unknown) => {
        o.metrics?.recordError(o.collector, 'sending');
        throw err instanceof GlasswatchError
          ? err
          : new GlasswatchError(
              'BG_INGEST_PUBLISH_FAILED',
              `${o.collector}: publishing ${events.length} event(s) failed: ${errorMessage(err)}`,
              {
                stage: 'sending',
                retriable: true,
                cause: err,
              },
            );
      });
      o.dedupe?.addAll(keys);
      o.metrics?.recordBatch(o.collector, { events: events.length, deadLetters: dead.length, skipped, duplicates, newestEventMs: newest });
      return { events: events.length, deadLetters: dead.length, skipped, duplicates };
    });
    o.listener?.delivered(summary.events);
    if (commit) await commit();
    return summary;
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
