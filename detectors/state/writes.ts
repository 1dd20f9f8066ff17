import { GroupFlush } from '../../core/store/group-flush.js';
import type { DetectorStateSink, StateChange } from './changelog.js';

/**
 * The detector's changelog writes, in the order their changes were taken, one produce at a time.
 * A flush's writes run outside the detector's lock (events are judged meanwhile), while a fired
 * verdict writes from inside it: both go through here, so a later change of a session can never
 * land before an earlier one (the compacted topic keeps the last). A write that fails keeps its
 * changes first in line for the next one; its callers fail, so no offset is committed past them.
 */
export class StateWrites {
  #queue: StateChange[] = [];
  readonly #group = new GroupFlush(() => this.#writeQueued());

  constructor(
    private readonly sink: () => DetectorStateSink | undefined,
    /** Before each write: the alerts and orders behind the changes are on their topics first. */
    private readonly before: () => Promise<void>,
  ) {}

  /** Resolves once these changes, and every change taken before them, are in the changelog. */
  write(changes: readonly StateChange[]): Promise<void> {
    for (const c of changes) this.#queue.push(c);
    return this.#group.flush();
  }

  /** A lost partition's changes not yet written: the changelog has its state, its events come again. */
  dropPartitions(lost: ReadonlySet<number>): void {
    this.#queue = this.#queue.filter((c) => !lost.has(c.partition));
  }

  async #writeQueued(): Promise<void> {
    const state = this.sink();
    const batch = this.#queue;
    this.#queue = [];
    if (!state || batch.length === 0) return;
    try {
      // A crash between the two raises those alerts again (same ids, deduplicated downstream), never loses them.
      await this.before();
      await state.write(batch);
    } catch (err) {
      this.#queue = [...batch, ...this.#queue];
      throw err;
    }
  }
}
