/** What a started collector hands back to the CLI (`glasswatch collect`, `glasswatch start`). */
export interface RunningCollector {
  readonly name: string;
  /** Resolves when the collector ended (after `stop()`, or on a fatal error: then it rejects). */
  readonly done: Promise<void>;
  /** Stops reading, waits for the unit in flight to be acknowledged and checkpointed, releases ports/timers. */
  stop(): Promise<void>;
}

/** A sleep that `signal` cuts short (resolves early, never rejects), so a stop is never held up by a back-off. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
