/**
 * A bounded hand-off between an HTTP receiver and its publisher. The receiver answers as soon as a
 * body is queued; when the queue is full `offer` returns false and the receiver answers 429/503 so
 * the sender (kube-apiserver, Okta) retries — nothing is ever dropped silently.
 */
export interface QueueOptions<T> {
  /** Items (request bodies) waiting at most. */
  maxItems: number;
  /** Records waiting at most, summed over `weight(item)`; bounds memory whatever the body sizes. */
  maxWeight: number;
  weight: (item: T) => number;
  /** Handles one item; resolves when it is durable (published and acknowledged). */
  handle: (item: T) => Promise<void>;
  /** Called when `handle` rejects; the item is not retried by the queue. */
  onError: (err: unknown, item: T) => void;
}

export class BoundedQueue<T> {
  readonly #items: T[] = [];
  #weight = 0;
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

  get length(): number {
    return this.#items.length;
  }

  /** Queues an item, or returns false (queue full): the caller must refuse the request. */
  offer(item: T): boolean {
    const w = this.#o.weight(item);
    // An empty queue takes any one item, so a body above maxWeight is not refused forever.
    if (this.#items.length > 0 && (this.#items.length >= this.#o.maxItems || this.#weight + w > this.#o.maxWeight)) return false;
    this.#items.push(item);
    this.#weight += w;
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
      this.#weight -= this.#o.weight(item);
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
