/**
 * A bounded hand-off between an HTTP receiver and its publisher. The receiver answers as soon as a
 * body is queued; when the queue is full `offer` returns false and the receiver answers 429/503
 * with `Retry-After` so the sender (kube-apiserver, Okta, EventBridge) retries — nothing is ever
 * dropped silently.
 *
 * The queue is bounded in bytes as well as in items and records: a count bound alone let 150
 * posts of 8 MiB each (few events, huge fields) grow the process to 1.5 GB while Kafka was down.
 */
import { errorMessage } from '../../core/errors.js';
import type { Source } from '../../core/event.js';
import type { NormalizeResult, Origin } from '../types.js';

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
