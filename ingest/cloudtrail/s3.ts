/**
 * The S3 poller: reads a trail's bucket directly, the path that sees every region and every
 * account of an organization trail (EventBridge rules are regional; source-api-facts §4.4).
 *
 * Each poll lists every `…/CloudTrail/<region>/` prefix from its checkpoint (`StartAfter` = the
 * last key whose records the bus acknowledged), downloads a few objects ahead, publishes one object
 * per unit and saves the checkpoint after each acknowledged object. A crash therefore re-sends at
 * most the object in flight, and never skips one.
 *
 * Why a settle window: keys sort by their delivery minute plus a random suffix, so two files of the
 * same minute may become visible in either order. Keys younger than `settleSeconds` are left for
 * the next poll, so the checkpoint never passes a minute that may still receive files.
 */
import { ListObjectsV2Command, type ListObjectsV2CommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { errorMessage } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/log.js';
import type { CheckpointStore } from '../collector/checkpoint.js';
import type { CollectorMetrics } from '../collector/metrics.js';
import { classifyFailure } from '../collector/poison.js';
import type { EventPublisher } from '../collector/publisher.js';
import { sleep } from '../collector/run.js';
import { DEFAULT_MAX_OBJECT_DECOMPRESSED_BYTES, gunzipBounded, isGzip } from '../decode.js';
import type { NormalizeResult } from '../types.js';
import { dayStart, discoverRegionPrefixes, keyTime, normalizePrefix, utcDay } from './layout.js';
import { type LoadedObject, loadObject, objectResults, prefetch } from './objects.js';
import { checkpointScope, digestPrefixOf, isAccessDenied, pollDigestPrefix } from './validation/s3-digests.js';
import type { LogFileValidator } from './validation/validator.js';

/**
 * The unit to publish for one loaded object, with gzip inflated within `maxDecompressedBytes` off the
 * event loop: an object over the budget (a gzip bomb) is one dead letter naming its key, so the
 * prefix moves on instead of inflating 600 MB or retrying forever. A corrupt gzip goes to
 * `normalizeBuffer`, which keeps the whole lines of a truncated upload and dead-letters the rest.
 */
export async function objectUnit(
  publisher: { normalizeBuffer(bytes: Buffer, file: string): NormalizeResult[] },
  bucket: string,
  key: string,
  loaded: LoadedObject | { refused: string },
  maxDecompressedBytes = DEFAULT_MAX_OBJECT_DECOMPRESSED_BYTES,
): Promise<NormalizeResult[]> {
  return inEventTimeOrder(await objectResultsOf(publisher, bucket, key, loaded, maxDecompressedBytes));
}

/**
 * CloudTrail does not order the records inside a delivery object; replay judges them in event-time
 * order, so live publishes them so too (stable: equal times keep file order, as replay's sort does).
 * Only the events move; dead letters and skipped records keep their places.
 */
export function inEventTimeOrder(results: NormalizeResult[]): NormalizeResult[] {
  const slots: number[] = [];
  const events: Extract<NormalizeResult, { kind: 'event' }>[] = [];
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!;
    if (r.kind === 'event') {
      slots.push(i);
      events.push(r);
    }
  }
  let sorted = true;
  for (let i = 1; i < events.length && sorted; i++) if (events[i - 1]!.event.time > events[i]!.event.time) sorted = false;
  if (sorted) return results;
  events.sort((a, b) => (a.event.time < b.event.time ? -1 : a.event.time > b.event.time ? 1 : 0));
  const out = results.slice();
  for (let i = 0; i < slots.length; i++) out[slots[i]!] = events[i]!;
  return out;
}

async function objectResultsOf(
  publisher: { normalizeBuffer(bytes: Buffer, file: string): NormalizeResult[] },
  bucket: string,
  key: string,
  loaded: LoadedObject | { refused: string },
  maxDecompressedBytes: number,
): Promise<NormalizeResult[]> {
  const file = `s3://${bucket}/${key}`;
  if ('refused' in loaded)
    return [{ kind: 'dead', source: 'cloudtrail', reason: loaded.refused, origin: { file, line: null, index: null }, text: '' }];
  if (!('bytes' in loaded) || !isGzip(loaded.bytes)) return objectResults(publisher, bucket, key, loaded);
  let inflated: Buffer;
  try {
    inflated = await gunzipBounded(loaded.bytes, { maxBytes: maxDecompressedBytes, what: file });
  } catch (err) {
    if (classifyFailure(err) === 'permanent' && (err as { code?: string }).code === 'INPUT_TOO_LARGE') {
      return [{ kind: 'dead', source: 'cloudtrail', reason: errorMessage(err), origin: { file, line: null, index: null }, text: '' }];
    }
    return objectResults(publisher, bucket, key, loaded);
  }
  return publisher.normalizeBuffer(inflated, file);
}

/** The ids of the events of one object's unit (the link from events to their log object). */
export function eventIdsOf(results: readonly NormalizeResult[]): string[] {
  const ids: string[] = [];
  for (const r of results) if (r.kind === 'event') ids.push(r.event.id);
  return ids;
}

/** What survives a restart. Keep the shape stable: it is read back by newer versions. */
/**
 * The HTTP status when S3 refused one object for a reason of the object itself (403
 * InvalidObjectState for an archived object, AccessDenied from an SSE-KMS key the collector may not
 * use); null for what is transient or about the collector (404 is handled as missing; throttling,
 * timeouts, expired credentials).
 */
export function objectRefusal(err: unknown): number | null {
  const cause = (err as { cause?: unknown } | null)?.cause as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const status = cause?.$metadata?.httpStatusCode;
  if (status === undefined || status < 400 || status >= 500 || status === 404 || status === 408 || status === 429) return null;
  if (/Throttl|SlowDown|Timeout|ExpiredToken|TokenRefresh|InvalidAccessKeyId|SignatureDoesNotMatch/i.test(cause?.name ?? '')) return null;
  return status;
}

export const DEFAULT_MAX_OBJECT_BYTES = 64 * 1024 * 1024;

export interface S3Checkpoint {
  /** First UTC day (`YYYY-MM-DD`) read in a region prefix that has no checkpoint yet. */
  startDay: string;
  /** Per `…/CloudTrail/<region>/` prefix: the last key whose records were all acknowledged. */
  after: Record<string, string>;
}

export interface S3PollerOptions {
  s3: S3Client;
  bucket: string;
  /** The trail's S3 key prefix (what precedes `AWSLogs/`). @default "" */
  prefix?: string;
  publisher: EventPublisher;
  checkpoints: CheckpointStore<S3Checkpoint>;
  /** First day to read on a fresh start, `YYYY-MM-DD` (backfill). @default the UTC day of the first start */
  startDate?: string | null;
  /** Keys whose delivery minute is younger than this are left for the next poll. @default 60 */
  settleSeconds?: number;
  /** Objects downloaded ahead of the one being published. @default 4 */
  prefetch?: number;
  /** Output budget of one object's gzip; beyond it the object is a dead letter. @default 256 MiB */
  maxDecompressedBytes?: number;
  /** Objects larger than this (as listed) are dead letters, never downloaded; CloudTrail's are a few MiB gzipped. @default 64 MiB */
  maxObjectBytes?: number;
  /**
   * Polls in which S3 refused one object (`objectRefusal`) before it becomes a dead letter, provided
   * another object of the bucket was read since its first refusal (a collector that can read nothing
   * waits for the fix instead of skipping the trail). @default 5
   */
  maxObjectRefusals?: number;
  /** How often accounts and regions are re-discovered. @default 300 */
  discoveryIntervalSeconds?: number;
  /**
   * Log-file validation (validation/): published objects are hashed, digest folders read after
   * the log objects of each poll. null = off. `validationExplicit` false (validateLogFiles unset)
   * turns it off by itself when the digests cannot be read (AccessDenied), saying so in `validationOff`.
   */
  validator?: LogFileValidator | null;
  validationExplicit?: boolean;
  metrics?: CollectorMetrics;
  logger?: Logger;
  now?: () => number;
}

export interface PollSummary {
  prefixes: number;
  objects: number;
  events: number;
  deadLetters: number;
  skipped: number;
  duplicates: number;
  /** Region prefixes whose pass stopped on an error (retried next poll). */
  failedPrefixes: number;
}

const emptySummary = (): PollSummary => ({
  prefixes: 0,
  objects: 0,
  events: 0,
  deadLetters: 0,
  skipped: 0,
  duplicates: 0,
  failedPrefixes: 0,
});

export class S3Poller {
  readonly #o: S3PollerOptions;
  readonly #prefix: string;
  readonly #log: Logger;
  readonly #now: () => number;
  #checkpoint: S3Checkpoint | null = null;
  #regions: string[] = [];
  #discoveredAt = Number.NEGATIVE_INFINITY;
  /** Objects read so far (a counter, not a clock: proves "another object was readable since"). */
  #reads = 0;
  readonly #refusals = new Map<string, { count: number; readsAtFirst: number }>();
  #validator: LogFileValidator | null;
  /** Why validation is off, or null while it runs. */
  validationOff: string | null;

  constructor(options: S3PollerOptions) {
    this.#o = options;
    this.#prefix = normalizePrefix(options.prefix ?? '');
    this.#log = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.#validator = options.validator ?? null;
    this.validationOff = this.#validator ? null : 'validateLogFiles: false';
  }

  get collector(): string {
    return this.#o.publisher.collector;
  }

  /** The checkpoint as last saved (tests, status output). */
  get checkpoint(): Readonly<S3Checkpoint> | null {
    return this.#checkpoint;
  }

  async #loadCheckpoint(): Promise<S3Checkpoint> {
    if (this.#checkpoint) return this.#checkpoint;
    const saved = await this.#o.checkpoints.load();
    if (saved) {
      this.#checkpoint = { startDay: saved.startDay, after: { ...saved.after } };
    } else {
      // Saved at once: a restart on a later day must still start from the first day, not from "today".
      this.#checkpoint = { startDay: this.#o.startDate ?? utcDay(this.#now()), after: {} };
      await this.#o.checkpoints.save(this.#checkpoint);
    }
    return this.#checkpoint;
  }

  /**
   * One pass over every region prefix. Stops between objects once `signal` is aborted (the object
   * in flight is finished and checkpointed first). Listing failures reject; a failure inside one
   * region prefix is logged and counted, and the pass goes on with the next prefix.
   */
  async pollOnce(signal?: AbortSignal): Promise<PollSummary> {
    const checkpoint = await this.#loadCheckpoint();
    const o = this.#o;
    if (this.#now() - this.#discoveredAt >= (o.discoveryIntervalSeconds ?? 300) * 1000) {
      this.#regions = await discoverRegionPrefixes(o.s3, o.bucket, this.#prefix, signal);
      this.#discoveredAt = this.#now();
    }
    const summary = emptySummary();
    summary.prefixes = this.#regions.length;
    for (const region of this.#regions) {
      if (signal?.aborted) break;
      try {
        await this.#pollRegion(region, checkpoint, summary, signal);
      } catch (err) {
        if (signal?.aborted) break;
        summary.failedPrefixes++;
        o.metrics?.recordError(this.collector, 'receiving');
        this.#log.warn('cloudtrail s3: region prefix pass failed; retried next poll', {
          prefix: region,
          after: checkpoint.after[region] ?? null,
          error: errorMessage(err),
        });
      }
    }
    if (this.#validator && !signal?.aborted) await this.#validate(checkpoint, signal);
    if (summary.objects > 0 || summary.failedPrefixes > 0) this.#log.info('cloudtrail s3 poll', { bucket: o.bucket, ...summary });
    return summary;
  }

  /** The digest pass (validation/s3-digests.ts) and the sweep of objects overdue for a digest. */
  async #validate(checkpoint: S3Checkpoint, signal?: AbortSignal): Promise<void> {
    const validator = this.#validator as LogFileValidator;
    const o = this.#o;
    validator.scope = checkpointScope(o.bucket, checkpoint);
    const settledBefore = this.#now() - (o.settleSeconds ?? 60) * 1000;
    for (const prefix of new Set(this.#regions.map(digestPrefixOf))) {
      if (signal?.aborted) return;
      try {
        await pollDigestPrefix(prefix, {
          s3: o.s3,
          bucket: o.bucket,
          validator,
          publisher: o.publisher,
          checkpoints: o.checkpoints,
          checkpoint,
          settledBefore,
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        if (signal?.aborted) return;
        if (isAccessDenied(err) && !o.validationExplicit) {
          this.validationOff = `digests not readable (${errorMessage(err)}); set validateLogFiles: true to make this an error`;
          this.#validator = null;
          this.#log.warn('cloudtrail log-file validation off', { bucket: o.bucket, reason: this.validationOff });
          return;
        }
        o.metrics?.recordError(this.collector, 'receiving');
        this.#log.warn('cloudtrail log validation: digest pass failed; retried next poll', { prefix, error: errorMessage(err) });
      }
    }
    try {
      await validator.sweep();
    } catch (err) {
      this.#log.warn('cloudtrail log validation: sweep failed; retried next poll', { error: errorMessage(err) });
    }
  }

  async #pollRegion(region: string, checkpoint: S3Checkpoint, summary: PollSummary, signal?: AbortSignal): Promise<void> {
    const o = this.#o;
    const settledBefore = this.#now() - (o.settleSeconds ?? 60) * 1000;
    for (;;) {
      const startAfter = checkpoint.after[region] ?? dayStart(region, checkpoint.startDay);
      const page: ListObjectsV2CommandOutput = await o.s3.send(
        new ListObjectsV2Command({ Bucket: o.bucket, Prefix: region, StartAfter: startAfter }),
        signal ? { abortSignal: signal } : {},
      );
      const keys: string[] = [];
      const oversized = new Map<string, number>();
      let unsettled = false;
      for (const item of page.Contents ?? []) {
        if (!item.Key) continue;
        const time = keyTime(item.Key) ?? item.LastModified?.getTime() ?? 0;
        if (time > settledBefore) {
          unsettled = true;
          break;
        }
        keys.push(item.Key);
        if (item.Size !== undefined && item.Size > (o.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES)) oversized.set(item.Key, item.Size);
      }
      for await (const [key, loaded] of prefetch(keys, o.prefetch ?? 4, (k) => {
        // Never downloaded: it would sit in memory whole (times the prefetch depth) before anything could refuse it.
        const size = oversized.get(k);
        if (size !== undefined)
          return Promise.resolve({
            refused: `object is ${size} bytes, over the ${o.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES}-byte limit (maxObjectBytes)`,
          });
        return this.#load(k, signal);
      })) {
        const results = await objectUnit(o.publisher, o.bucket, key, loaded, o.maxDecompressedBytes);
        const unit = await o.publisher.publishUnit(results, async () => {
          checkpoint.after[region] = key;
          await o.checkpoints.save(checkpoint);
        });
        summary.objects++;
        summary.events += unit.events;
        summary.deadLetters += unit.deadLetters;
        summary.skipped += unit.skipped;
        summary.duplicates += unit.duplicates;
        // After the publish and its checkpoint: validation never holds events back.
        if (this.#validator && 'bytes' in loaded) await this.#validator.logObject(o.bucket, key, loaded.bytes, eventIdsOf(results));
        if (signal?.aborted) return;
      }
      if (unsettled || !page.IsTruncated || keys.length === 0) return;
    }
  }

  /** `loadObject`, except that an object S3 keeps refusing while others are readable becomes `{ refused }`. */
  async #load(key: string, signal?: AbortSignal): Promise<LoadedObject | { refused: string }> {
    try {
      const loaded = await loadObject(this.#o.s3, this.#o.bucket, key, signal);
      if ('bytes' in loaded) this.#reads++;
      this.#refusals.delete(key);
      return loaded;
    } catch (err) {
      const status = objectRefusal(err);
      if (status === null) throw err;
      const r = this.#refusals.get(key) ?? { count: 0, readsAtFirst: this.#reads };
      r.count++;
      this.#refusals.set(key, r);
      if (r.count < (this.#o.maxObjectRefusals ?? 5) || this.#reads <= r.readsAtFirst) throw err;
      this.#refusals.delete(key);
      return { refused: `S3 refused the object ${r.count} times (HTTP ${status}) while other objects were readable: ${errorMessage(err)}` };
    }
  }

  /**
   * Polls every `intervalMs` until `signal` aborts. A failed poll (listing denied, endpoint down)
   * is logged and counted, and retried at the next interval: the collector never exits on its own.
   */
  async run(intervalMs: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.pollOnce(signal);
      } catch (err) {
        if (signal.aborted) break;
        this.#o.metrics?.recordError(this.collector, 'receiving');
        this.#log.warn('cloudtrail s3 poll failed; retrying', { bucket: this.#o.bucket, error: errorMessage(err), retryInMs: intervalMs });
      }
      await sleep(intervalMs, signal);
    }
  }
}
