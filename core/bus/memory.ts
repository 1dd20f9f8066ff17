import { errorMessage, isRetriable } from '../errors.js';
import { type Bus, type BusMessage, DEAD_LETTER_HEADERS, type OutgoingMessage, type SubscribeOptions, type Subscription } from './types.js';

/** One topic's retained messages: `log[i]` has offset `base + i`. */
interface TopicLog {
  base: number;
  log: BusMessage[];
}

export interface MemoryBusOptions {
  /**
   * Keep every message, consumed or not (tests and callers that read `messages()` afterwards).
   * Off for the pipeline (`createBus`): a long-running `start` on this bus held every event it
   * ever took (about 1.5 KiB each: gigabytes a day), like a Kafka topic without retention.
   * @default true
   */
  keepConsumed?: boolean;
  /**
   * Without `keepConsumed`: the least time a consumed message stays, for a group that subscribes
   * a little later (in `start` the sink and the detector subscribe moments apart, and the sink
   * must not take an event away from the detector), as a Kafka topic's retention would keep it.
   * @default 30000
   */
  consumedRetentionMs?: number;
}

/**
 * In-process bus for the embedded mode (`npm start`, `glasswatch replay`): one
 * partition per topic, consumer groups with their own committed offset, the same
 * commit-after-handler and dead-letter contract as the Kafka bus. Without `keepConsumed`,
 * a topic keeps what one of its subscribed groups has not committed yet, and what was consumed
 * less than `consumedRetentionMs` ago (a compacted topic, and a topic nobody subscribed to yet,
 * keep everything: a late reader needs them).
 */
export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  readonly #topics = new Map<string, TopicLog>();
  readonly #committed = new Map<string, number>();
  /** Per topic, the subscribed groups and how many of their subscriptions run. */
  readonly #readers = new Map<string, Map<string, number>>();
  readonly #compacted = new Set<string>();
  readonly #waiters = new Set<() => void>();
  readonly #keepConsumed: boolean;
  readonly #retentionMs: number;
  #closed = false;

  constructor(options: MemoryBusOptions = {}) {
    this.#keepConsumed = options.keepConsumed !== false;
    this.#retentionMs = options.consumedRetentionMs ?? 30_000;
  }

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    if (this.#closed) throw new Error('MemoryBus is closed');
    const t = this.#topic(topic);
    const now = Date.now();
    for (const m of messages) {
      t.log.push({
        topic,
        partition: 0,
        offset: String(t.base + t.log.length),
        key: m.key,
        value: m.tombstone ? Buffer.alloc(0) : typeof m.value === 'string' ? Buffer.from(m.value) : m.value,
        headers: { ...(m.headers ?? {}) },
        timestamp: now,
      });
    }
    for (const wake of this.#waiters) wake();
  }

  async ensureTopic(topic: string, options: { compacted?: boolean } = {}): Promise<void> {
    if (options.compacted) this.#compacted.add(topic);
  }

  async endOffsets(topic: string): Promise<Map<number, string>> {
    const t = this.#topic(topic);
    return new Map([[0, String(t.base + t.log.length)]]);
  }

  /** The messages of a topic still held (every one published so far with `keepConsumed`). */
  messages(topic: string): readonly BusMessage[] {
    return this.#topic(topic).log;
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    let running = true;
    let wake: (() => void) | null = null;
    const maxAttempts = options.maxAttempts ?? 3;
    const keyOf = (topic: string) => `${options.groupId}\u0000${topic}`;
    // Where a group with no commit starts: fixed at subscribe (Kafka's "latest" is the end at join, not
    // the end at each fetch), so the messages that wake a fresh fromBeginning: false group are handled.
    // Before the oldest message held, like Kafka's earliest after retention.
    for (const topic of options.topics) {
      const t = this.#topic(topic);
      const key = keyOf(topic);
      const committed = this.#committed.get(key);
      if (committed === undefined || committed < t.base)
        this.#committed.set(key, committed === undefined && options.fromBeginning === false ? t.base + t.log.length : t.base);
      const readers = this.#readers.get(topic) ?? new Map<string, number>();
      readers.set(options.groupId, (readers.get(options.groupId) ?? 0) + 1);
      this.#readers.set(topic, readers);
    }
    const loop = async () => {
      // One partition per topic, never moved: the whole assignment is known once, before the first message.
      while (options.onAssignment && running && !this.#closed) {
        try {
          await options.onAssignment(options.topics.map((topic) => ({ topic, partition: 0 })));
          break;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      const commit = (topic: string, offset: number) => {
        this.#committed.set(keyOf(topic), offset);
        this.#trim(topic);
      };
      while (running && !this.#closed) {
        let progressed = false;
        for (const topic of options.topics) {
          const key = keyOf(topic);
          const t = this.#topic(topic);
          let next = this.#committed.get(key)!;
          let askedUpTo = next;
          while (running && next < t.base + t.log.length) {
            if (options.beforeBatch && next >= askedUpTo) {
              // As Kafka's fetched batch: what is there now, at most 500 (only an optimization: a failure is ignored).
              askedUpTo = Math.min(t.base + t.log.length, next + 500);
              const batch = t.log.slice(next - t.base, askedUpTo - t.base);
              await Promise.resolve()
                .then(() => options.beforeBatch?.(batch))
                .catch(() => {});
            }
            await this.#handle(t.log[next - t.base]!, options, maxAttempts);
            next++;
            progressed = true;
            // Same contract as Kafka: a buffering sink's messages count as handled once afterBatch resolved.
            if (!options.afterBatch) commit(topic, next);
            else if (next === t.base + t.log.length || next % (options.afterBatchEvery ?? 1000) === 0) {
              try {
                await options.afterBatch();
                commit(topic, next);
              } catch {
                // Not durable: deliver again from the last committed position, after a pause.
                next = this.#committed.get(key)!;
                await new Promise((resolve) => setTimeout(resolve, 50));
              }
            }
          }
        }
        if (!progressed && running) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            this.#waiters.add(resolve);
          });
          if (wake) this.#waiters.delete(wake);
        }
      }
    };
    const done = loop();
    return {
      stop: async () => {
        running = false;
        wake?.();
        await done;
        // A stopped group no longer holds its topics' messages back.
        for (const topic of options.topics) {
          const readers = this.#readers.get(topic);
          const n = (readers?.get(options.groupId) ?? 1) - 1;
          if (n > 0) readers!.set(options.groupId, n);
          else readers?.delete(options.groupId);
          this.#trim(topic);
        }
      },
    };
  }

  /** Drops what every subscribed group has committed (in steps of 1,024: a splice moves what stays). */
  #trim(topic: string): void {
    if (this.#keepConsumed || this.#compacted.has(topic)) return;
    const readers = this.#readers.get(topic);
    if (!readers || readers.size === 0) return;
    const t = this.#topic(topic);
    let oldest = Number.POSITIVE_INFINITY;
    for (const group of readers.keys()) oldest = Math.min(oldest, this.#committed.get(`${group}\u0000${topic}`) ?? t.base);
    let done = oldest - t.base;
    // Publish times never go back: the consumed messages older than the retention are a prefix.
    const cutoff = Date.now() - this.#retentionMs;
    if (done > 0 && t.log[done - 1]!.timestamp > cutoff) {
      let lo = 0;
      let hi = done;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (t.log[mid]!.timestamp <= cutoff) lo = mid + 1;
        else hi = mid;
      }
      done = lo;
    }
    if (done <= 0 || (done < 1024 && done < t.log.length)) return;
    t.log.splice(0, done);
    t.base += done;
  }

  async #handle(message: BusMessage, options: SubscribeOptions, maxAttempts: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await options.handler(message);
        return;
      } catch (err) {
        if (attempt < maxAttempts && isRetriable(err)) continue;
        if (!options.deadLetterTopic) {
          // Like the Kafka bus: with nowhere to dead-letter, the message blocks its topic
          // and is retried, never dropped.
          if (this.#closed) throw err;
          await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 50 * 2 ** Math.min(attempt, 7))));
          continue;
        }
        await this.publish(options.deadLetterTopic, [
          {
            key: message.key,
            value: message.value,
            headers: {
              ...message.headers,
              [DEAD_LETTER_HEADERS.reason]: errorMessage(err),
              [DEAD_LETTER_HEADERS.topic]: message.topic,
              [DEAD_LETTER_HEADERS.partition]: String(message.partition),
              [DEAD_LETTER_HEADERS.offset]: message.offset,
            },
          },
        ]);
        return;
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const wake of this.#waiters) wake();
  }

  #topic(topic: string): TopicLog {
    let t = this.#topics.get(topic);
    if (!t) {
      t = { base: 0, log: [] };
      this.#topics.set(topic, t);
    }
    return t;
  }
}
