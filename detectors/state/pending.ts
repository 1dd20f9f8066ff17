import type { AuditEvent } from '../../core/event.js';

/**
 * An unauthorized verdict waiting for a late approval (`graceSeconds`, live only). The event
 * that drew it is kept whole, so whichever member owns the partition when the grace ends can
 * raise the alert and the revocation as the first owner would have.
 */
export interface PendingVerdict {
  sessionId: string;
  identity: string;
  /** Events partition the session's events come from (state is co-partitioned with it). */
  partition: number;
  /** The event was the session's first: its verdict is the session's verdict. */
  created: boolean;
  /** Wall clock when the grace ends: event time + grace. */
  dueMs: number;
  event: AuditEvent;
}

/** The pending verdicts of the partitions this member owns, by session. */
export class PendingVerdicts {
  readonly #bySession = new Map<string, PendingVerdict>();

  get size(): number {
    return this.#bySession.size;
  }

  has(sessionId: string): boolean {
    return this.#bySession.has(sessionId);
  }

  add(p: PendingVerdict): void {
    this.#bySession.set(p.sessionId, p);
  }

  delete(sessionId: string): void {
    this.#bySession.delete(sessionId);
  }

  all(): PendingVerdict[] {
    return [...this.#bySession.values()];
  }

  /** Forgets the verdicts of partitions moved to another member (it restores them from the changelog). */
  dropPartitions(partitions: ReadonlySet<number>): void {
    for (const [id, p] of this.#bySession) if (partitions.has(p.partition)) this.#bySession.delete(id);
  }
}
