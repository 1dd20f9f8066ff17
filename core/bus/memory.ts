import { errorMessage, isRetriable } from '../errors.js';
import { type Bus, type BusMessage, DEAD_LETTER_HEADERS, type OutgoingMessage, type SubscribeOptions, type Subscription } from './types.js';

/**
 * In-process bus for the embedded mode (`npm start`, `glasswatch replay`): one
 * partition per topic, consumer groups with their own committed offset, the same
 * commit-after-handler and dead-letter contract as the Kafka bus.
 */
export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  readonly #topics = new Map<string, BusMessage[]>();
  readonly #committed = new Map<string, number>();
  readonly #waiters = new Set<() => void>();
  #closed = false;

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    if (this.#closed) throw new Error('MemoryBus is closed');
    const log = this.#log(topic);
    const now = Date.now();
    for (const m of messages) {
      log.push({
        topic,
        partition: 0,
        offset: String(log.length),
        key: m.key,
        value: m.tombstone ? Buffer.alloc(0) : typeof m.value === 'string' ? Buffer.from(m.value) : m.value,
        headers: { ...(m.headers ?? {}) },
        timestamp: now,
      });
    }
    for (const wake of this.#waiters) wake();
  }

  async ensureTopic(): Promise<void> {}

  async endOffsets(topic: string): Promise<Map<number, string>> {
    return new Map([[0, String(this.#log(topic).length)]]);
  }

  /** Everything published to a topic so far (tests and the replay summary read this). */
  messages(topic: string): readonly BusMessage[] {
    return this.#log(topic);
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    let running = true;
    let wake: (() => void) | null = null;
    const maxAttempts = options.maxAttempts ?? 3;
    // Where a group with no commit starts: fixed at subscribe (Kafka's "latest" is the end at join, not
    // the end at each fetch), so the messages that wake a fresh fromBeginning: false group are handled.
    const startAt = new Map(options.topics.map((t) => [t, options.fromBeginning === false ? this.#log(t).length : 0]));
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
      while (running && !this.#closed) {
        let progressed = false;
        for (const topic of options.topics) {
          const key = `${options.groupId}\u0000${topic}`;
          const log = this.#log(topic);
          let next = this.#committed.get(key) ?? startAt.get(topic) ?? 0;
          const start = next;
          while (running && next < log.length) {
            await this.#handle(log[next]!, options, maxAttempts);
            next++;
            progressed = true;
            // Same contract as Kafka: a buffering sink's messages count as handled once afterBatch resolved.
            if (!options.afterBatch) this.#committed.set(key, next);
            else if (next === log.length || next % (options.afterBatchEvery ?? 1000) === 0) {
              try {
                await options.afterBatch();
                this.#committed.set(key, next);
              } catch {
                // Not durable: deliver again from the last committed position, after a pause.
                next = this.#committed.get(key) ?? start;
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
      },
    };
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

  #log(topic: string): BusMessage[] {
    let log = this.#topics.get(topic);
    if (!log) {
      log = [];
      this.#topics.set(topic, log);
    }
    return log;
  }
}
