/**
 * A bounded "already delivered" set. Two paths read the same Okta events (Event Hook push and
 * System Log poll), and a restarted collector re-reads its last unacknowledged unit; both must not
 * count an event twice. Kept by recency (LRU): an id seen again is refreshed, the oldest falls out
 * once `maxEntries` is reached — a re-delivery older than the window is published again, which
 * downstream idempotency (deterministic alert ids, store dedupe on id) absorbs.
 */
export class DedupeWindow {
  readonly #seen = new Map<string, true>();
  readonly maxEntries: number;

  /** @param maxEntries ids remembered. @default 100000 (about 10 MiB) */
  constructor(maxEntries = 100_000) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.#seen.size;
  }

  has(key: string): boolean {
    return this.#seen.has(key);
  }

  /** Marks keys delivered; call only after the bus acknowledged them (a failed unit must stay re-sendable). */
  addAll(keys: Iterable<string>): void {
    for (const key of keys) {
      this.#seen.delete(key);
      this.#seen.set(key, true);
    }
    if (this.#seen.size > this.maxEntries) {
      let excess = this.#seen.size - this.maxEntries;
      for (const key of this.#seen.keys()) {
        if (excess-- <= 0) break;
        this.#seen.delete(key);
      }
    }
  }
}
