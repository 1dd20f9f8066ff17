/**
 * Group commit for a buffered writer shared by partitions consumed concurrently: `flush()`
 * resolves once everything buffered before the call is durable. One flush runs at a time; the
 * callers that arrive while it runs share the next one. Under load the flushes grow instead of
 * multiplying: chDB runs one parameterized query at a time, and a sink that inserted every
 * partition's fetched batch on its own (17 inserts of ~110 events a second at 2,000 events/s)
 * kept the engine busy 85% of the time, so the detector's writes queued behind it for seconds.
 */
export class GroupFlush {
  #running: Promise<void> | null = null;
  #next: Promise<void> | null = null;

  constructor(private readonly flushAll: () => Promise<void>) {}

  flush(): Promise<void> {
    // Joining the next flush: it takes its rows when it starts, after this call.
    if (this.#next) return this.#next;
    if (!this.#running) return this.#start();
    // What was buffered since the running flush took its rows is not in it: wait for the next one.
    const next = this.#running
      .catch(() => {})
      .then(() => {
        if (this.#next === next) this.#next = null;
        return this.#start();
      });
    this.#next = next;
    return next;
  }

  #start(): Promise<void> {
    const run = this.flushAll().finally(() => {
      if (this.#running === run) this.#running = null;
    });
    this.#running = run;
    return run;
  }
}
