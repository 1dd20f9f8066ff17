import type { WriteStream } from 'node:fs';
import type { AuditEvent } from '../event.js';
import { terminalSafe } from '../log.js';
import { privateWriteStream } from '../paths.js';
import type { Store } from '../store/client.js';
import { type DeadLetter, StoreWriter } from '../store/writer.js';
import type { DeadLetterStage, EventStage } from './stage.js';

/** Persists events and dead letters in the audit store (chDB or ClickHouse). */
export class StoreSink implements EventStage, DeadLetterStage {
  readonly name = 'store';
  readonly #writer: StoreWriter;
  readonly #horizonMs: number;
  /** Events older than the store's retention: the TTL expires them at the next merge. */
  expired = 0;

  constructor(store: Store, options: { batchSize?: number; retentionDays?: number } = {}) {
    this.#writer = new StoreWriter(store, { batchSize: options.batchSize ?? 5000 });
    this.#horizonMs = Date.now() - (options.retentionDays ?? 400) * 86_400_000;
  }

  get rowsWritten(): number {
    return this.#writer.rowsWritten;
  }

  async handle(events: readonly AuditEvent[]): Promise<void> {
    for (const e of events) {
      if (Date.parse(e.time) < this.#horizonMs) this.expired++;
      await this.#writer.addEvent(e);
    }
  }

  async handleDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    for (const d of letters) await this.#writer.addDeadLetter(d);
  }

  flush(): Promise<void> {
    return this.#writer.flush();
  }
}

/** Writes each normalized event as one JSON line (`--out FILE`, or stdout). */
export class JsonLinesSink implements EventStage {
  readonly name = 'jsonl';
  readonly #out: NodeJS.WritableStream;
  readonly #file: WriteStream | null;
  #buffer: string[] = [];

  constructor(path: string | null) {
    // Normalized events keep the raw record: the file is 0600 like the store.
    this.#file = path ? privateWriteStream(path) : null;
    this.#out = this.#file ?? process.stdout;
  }

  async handle(events: readonly AuditEvent[]): Promise<void> {
    for (const e of events) this.#buffer.push(JSON.stringify(e));
    if (this.#buffer.length >= 1000) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#buffer.length === 0) return;
    const lines = `${this.#buffer.join('\n')}\n`;
    // stdout is often a terminal: raw C1/bidi characters of events escaped, same JSON values.
    const chunk = this.#file ? lines : terminalSafe(lines);
    this.#buffer = [];
    if (!this.#out.write(chunk)) await new Promise<void>((resolve) => this.#out.once('drain', () => resolve()));
  }

  async close(): Promise<void> {
    await this.flush();
    const file = this.#file;
    if (file) await new Promise<void>((resolve, reject) => file.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}
