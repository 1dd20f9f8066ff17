/**
 * A bounded hand-off between an HTTP receiver and its publisher. The receiver answers as soon as a
 * body is queued; when the queue is full `offer` returns false and the receiver answers 429/503
 * with `Retry-After` so the sender (kube-apiserver, Okta, EventBridge) retries — nothing is ever
 * dropped silently.
 *
 * The queue is bounded in bytes as well as in items and records: a count bound alone let 150
 * posts of 8 MiB each (few events, huge fields) grow the process to 1.5 GB while Kafka was down.
 */
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import type { Source } from '../../core/event.js';
import type { NormalizeResult, Origin } from '../types.js';
import { classifyFailure } from './poison.js';
import type { Spool, SpoolEntry } from './spool.js';

export interface QueueOptions<T> {
  /** Items (request bodies) waiting at most. */
  maxItems: number;
  /** Records waiting at most, summed over `weight(item)`. @default unbounded */
  maxWeight?: number;
  weight?: (item: T) => number;
  /** Bytes held at most, summed over `bytes(item)`; bounds memory whatever the record counts. */
  maxBytes: number;
  bytes: (item: T) => number;
  /** Handles one item; resolves when it is durable (published and acknowledged). */
  handle: (item: T) => Promise<void>;
  /** Called when `handle` rejects; the item is not retried by the queue. */
  onError: (err: unknown, item: T) => void;
}

export class BoundedQueue<T> {
  readonly #items: T[] = [];
  #weight = 0;
  #bytes = 0;
  #running: Promise<void> | null = null;
  #idle: (() => void)[] = [];
  readonly #o: QueueOptions<T>;

  constructor(options: QueueOptions<T>) {
    this.#o = options;
  }

  /** Queued records (summed weights), including the item being handled. */
  get weight(): number {
    return this.#weight;
  }

  /** Queued bytes, including the item being handled. */
  get bytes(): number {
    return this.#bytes;
  }

  get length(): number {
    return this.#items.length;
  }

  /**
   * Whether an item of `bytes` would be taken now: receivers ask before reading a body (from its
   * Content-Length), so a full queue costs the sender a round trip and us nothing.
   */
  wouldAccept(bytes: number, weight = 0): boolean {
    if (this.#items.length === 0) return true;
    if (this.#items.length >= this.#o.maxItems) return false;
    if (this.#bytes + bytes > this.#o.maxBytes) return false;
    return this.#o.maxWeight === undefined || this.#weight + weight <= this.#o.maxWeight;
  }

  /** Queues an item, or returns false (queue full): the caller must refuse the request. */
  offer(item: T): boolean {
    const w = this.#o.weight?.(item) ?? 0;
    const b = this.#o.bytes(item);
    // An empty queue takes any one item (each is bounded by the receiver's maxBodyBytes), so a
    // large body is not refused forever.
    if (!this.wouldAccept(b, w)) return false;
    this.#items.push(item);
    this.#weight += w;
    this.#bytes += b;
    if (!this.#running) this.#running = this.#drain();
    return true;
  }

  async #drain(): Promise<void> {
    for (;;) {
      const item = this.#items[0];
      if (item === undefined) break;
      try {
        await this.#o.handle(item);
      } catch (err) {
        this.#o.onError(err, item);
      }
      this.#items.shift();
      this.#weight -= this.#o.weight?.(item) ?? 0;
      this.#bytes -= this.#o.bytes(item);
    }
    this.#running = null;
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Resolves when everything queued so far has been handled. */
  drained(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}

/**
 * The dead letter of a whole request that cannot be normalized (a gzip bomb, a body a normalizer
 * failed on), naming the request id (`origin.file`) and the reason. Records Kafka refuses are the
 * publisher's business (ingest/collector/publisher.ts): it dead-letters them and publishes the rest.
 */
export function requestDeadLetter(where: Origin, err: unknown, source: Source | null, text = ''): NormalizeResult {
  return { kind: 'dead', source, reason: `${where.file}: ${errorMessage(err)}`, origin: where, text };
}

export interface DurableQueueOptions {
  spool: Spool;
  /** Publishes spooled records (in order, as one unit); resolves once Kafka acknowledged all of them. */
  handle: (payloads: Buffer[]) => Promise<void>;
  /** Records per drain unit at most: a backlog goes out in large produce requests. @default 64 */
  maxBatchRecords?: number;
  /** Payload bytes per drain unit at most (one record may exceed it alone). @default 8388608 */
  maxBatchBytes?: number;
  /**
   * The record can never be published (classified permanent): dead-letter it, then the drain goes
   * on. If this rejects too, the record is retried like a transient failure.
   */
  deadLetter: (payload: Buffer, err: unknown) => Promise<void>;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Back-off of a transient failure, doubling from `initialMs` to `maxMs`, with jitter. @default 250, 15000 */
  backoff?: { initialMs: number; maxMs: number };
}

/**
 * The durable hand-off of an HTTP receiver: `offer` resolves once the body is fsynced in the spool
 * (the receiver answers 2xx only then), one drainer publishes records in spool order and
 * acknowledges each after Kafka did. A transient failure (broker down, leader moving, kafkajs
 * giving up after its own retries) keeps the record and retries it with back-off, for as long as
 * it takes; a permanent one (the record itself is refused) goes to the dead letters. Order is the
 * spool's order, so per-key order is kept across outages and restarts.
 */
export class DurableQueue {
  readonly #o: DurableQueueOptions;
  readonly #spool: Spool;
  #stopped = false;
  #loop: Promise<void>;
  #idle: (() => void)[] = [];
  #wake: (() => void) | null = null;
  /** Records handed to `deadLetter` (tests, status). */
  deadLettered = 0;

  constructor(options: DurableQueueOptions) {
    this.#o = options;
    this.#spool = options.spool;
    this.#loop = this.#drain().catch(() => {});
  }

  get spool(): Spool {
    return this.#spool;
  }

  /** Whether a body of `bytes` would fit in the spool now. */
  wouldAccept(bytes: number): boolean {
    return this.#spool.wouldAccept(bytes);
  }

  /** Appends and fsyncs; false when the spool is full (answer 503 + Retry-After). Rejects on a disk error. */
  async offer(payload: Buffer): Promise<boolean> {
    try {
      await this.#spool.append([payload]);
      return true;
    } catch (err) {
      if (err instanceof GlasswatchError && err.code === 'BG_INGEST_SPOOL_FULL') return false;
      throw err;
    }
  }

  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.#wake = null;
  }

  async #drain(): Promise<void> {
    const { initialMs, maxMs } = this.#o.backoff ?? { initialMs: 250, maxMs: 15_000 };
    let attempt = 0;
    const retryLater = async (err: unknown) => {
      attempt++;
      const delay = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 16)) * (0.8 + Math.random() * 0.4);
      this.#o.onRetry?.(err, attempt, delay);
      await this.#sleep(delay);
    };
    const maxRecords = this.#o.maxBatchRecords ?? 64;
    const maxBytes = this.#o.maxBatchBytes ?? 8 * 1024 * 1024;
    while (!this.#stopped) {
      try {
        const seen = this.#spool.appends;
        const batch: SpoolEntry[] = [];
        let bytes = 0;
        for (let e = await this.#spool.next(); e; e = batch.length < maxRecords && bytes < maxBytes ? await this.#spool.next(e) : null) {
          if (batch.length > 0 && bytes + e.payload.length > maxBytes) break;
          batch.push(e);
          bytes += e.payload.length;
        }
        if (batch.length === 0) {
          for (const resolve of this.#idle.splice(0)) resolve();
          await this.#spool.waitForData(seen);
          continue;
        }
        try {
          await this.#o.handle(batch.map((e) => e.payload));
          await this.#spool.ack(batch.at(-1) as SpoolEntry, batch.length);
        } catch (err) {
          if (classifyFailure(err) !== 'permanent') throw err;
          // One record of the batch is bad: one at a time, so only it goes to the dead letters.
          for (const e of batch) {
            try {
              await this.#o.handle([e.payload]);
            } catch (one) {
              if (classifyFailure(one) !== 'permanent') throw one;
              await this.#o.deadLetter(e.payload, one);
              this.deadLettered++;
            }
            await this.#spool.ack(e);
          }
        }
        attempt = 0;
      } catch (err) {
        // Broker down, leader moving, a dead letter not published, a spool read error: the records
        // stay in the spool (acknowledged only after Kafka has them) and are tried again.
        if (this.#stopped) break;
        await retryLater(err);
      }
    }
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Resolves when every record spooled so far is acknowledged (or the queue stops). */
  async drained(): Promise<void> {
    while (!this.#stopped && this.#spool.records > 0) {
      await new Promise<void>((resolve) => {
        this.#idle.push(resolve);
        setTimeout(resolve, 50).unref();
      });
    }
  }

  /**
   * Stops the drainer after the record being published (waiting at most `graceMs` for it) and
   * closes the spool. Records not acknowledged stay on disk for the next start.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    this.#spool.stopWaiting();
    await Promise.race([this.#loop, new Promise((r) => setTimeout(r, graceMs).unref())]);
    await this.#spool.close();
  }
}
