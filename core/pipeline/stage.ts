import type { AuditEvent } from '../event.js';
import type { DeadLetter } from '../store/writer.js';

/**
 * A consumer of normalized events: the store sink, the JSON-lines output, the
 * detector. The same stage objects run under `glasswatch replay` (called directly, in
 * event-time order) and under the live pipeline (called from a bus subscription), so
 * replay and live cannot drift apart.
 */
export interface EventStage {
  readonly name: string;
  handle(events: readonly AuditEvent[]): Promise<void>;
  /** Everything handed over so far is durable (stored, written, sent) when this resolves. */
  flush(): Promise<void>;
  close?(): Promise<void>;
}

export interface DeadLetterStage {
  handleDeadLetters(letters: readonly DeadLetter[]): Promise<void>;
}

/** The bus key of an event: per-identity order is what sessions and verdicts need. */
export function identityKey(e: AuditEvent): string {
  return `${e.source}:${e.actor.name ?? e.actor.id ?? 'unknown'}`;
}
