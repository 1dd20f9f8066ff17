import type { Bus, OutgoingMessage } from '../../core/bus/types.js';
import { errorMessage, GlasswatchError, withRetry } from '../../core/errors.js';

/**
 * What the detector appends to a stage topic, sent in one produce request per turn of the event
 * loop instead of one awaited round trip per alert. `settle()` resolves once everything added so
 * far is acknowledged (the detector's offset is committed only after it), and rejects (retriable)
 * while the broker refuses, so the event is handled again rather than committed without its alerts.
 */
export class AppendBuffer<T> {
  readonly #items: { id: string; item: T; message: OutgoingMessage }[] = [];
  readonly #ids = new Set<string>();
  #flushing: Promise<void> | null = null;
  #error: unknown = null;

  constructor(
    readonly bus: Bus,
    readonly topic: string,
    /** After the broker acknowledged: ledger records, counters. */
    readonly acknowledged: (items: T[]) => Promise<void>,
    /**
     * The ids of a batch already appended before (an event handled again after a restart): looked up
     * once per produce request instead of once per item, and not appended again.
     */
    readonly alreadyAppended?: (ids: string[]) => Promise<Set<string>>,
    /** The items `alreadyAppended` dropped. */
    readonly dropped?: (items: T[]) => void,
  ) {}

  /** False when an item with this id is already waiting (an event handled again). */
  add(id: string, item: T, message: OutgoingMessage): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    this.#items.push({ id, item, message });
    this.#schedule();
    return true;
  }

  get pending(): number {
    return this.#items.length;
  }

  #schedule(): void {
    this.#flushing ??= new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#flush())
      .finally(() => {
        this.#flushing = null;
      });
  }

  async #flush(): Promise<void> {
    while (this.#items.length > 0) {
      const batch = this.#items.slice();
      try {
        const seen = this.alreadyAppended ? await this.alreadyAppended(batch.map((b) => b.id)) : null;
        const fresh = seen && seen.size > 0 ? batch.filter((b) => !seen.has(b.id)) : batch;
        if (fresh.length > 0) {
          await withRetry(
            () =>
              this.bus.publish(
                this.topic,
                fresh.map((b) => b.message),
              ),
            { retries: 6, initialDelayMs: 200, maxDelayMs: 5000, shouldRetry: () => true },
          );
        }
        this.#items.splice(0, batch.length);
        for (const b of batch) this.#ids.delete(b.id);
        if (fresh !== batch) this.dropped?.(batch.filter((b) => seen?.has(b.id)).map((b) => b.item));
        await this.acknowledged(fresh.map((b) => b.item));
      } catch (err) {
        this.#error = err;
        // Nobody may call settle() for a while (a timer raised the alert): try again by itself.
        setTimeout(() => this.#schedule(), 1000).unref();
        return;
      }
    }
  }

  async settle(): Promise<void> {
    for (;;) {
      if (this.#flushing) {
        await this.#flushing;
        continue;
      }
      if (this.#error !== null) {
        const cause = this.#error;
        this.#error = null;
        throw new GlasswatchError('BG_STAGE_APPEND', `appending to ${this.topic} failed: ${errorMessage(cause)}`, {
          stage: 'sending',
          retriable: true,
          cause,
        });
      }
      if (this.#items.length === 0) return;
      this.#schedule();
    }
  }
}
