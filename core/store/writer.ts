import { createHash } from 'node:crypto';
import { GlasswatchError, withRetry } from '../errors.js';
import type { AuditEvent } from '../event.js';
import type { Store } from './client.js';

/** A record that could not be processed, with where it came from and why. */
export interface DeadLetter {
  source: string | null;
  stage: 'receiving' | 'processing' | 'sending' | 'storing';
  reason: string;
  file: string;
  line: number | null;
  index: number | null;
  /** The offending text, truncated to 64 KiB so a hostile input cannot bloat the table. */
  text: string;
  at?: string;
}

const MAX_TEXT = 64 * 1024;

/**
 * One `events` row. `targets` and `raw` go as the values themselves, not as JSON strings: the insert
 * asks ClickHouse to store a JSON object or array given for a String column as its text, verbatim
 * (`input_format_json_read_objects_as_strings`), so the row is serialized once instead of raw being
 * stringified and then escaped again as a string. The stored text is exactly `JSON.stringify(raw)`.
 */
export function eventRow(e: AuditEvent): Record<string, unknown> {
  return {
    source: e.source,
    id: e.id,
    time: e.time,
    actor_id: e.actor.id ?? '',
    actor_name: e.actor.name ?? '',
    actor_type: e.actor.type ?? '',
    session_key: e.actor.sessionKey ?? '',
    action: e.action,
    targets: e.targets,
    outcome: e.outcome,
    outcome_reason: e.outcomeReason ?? '',
    source_ip: e.sourceIp ?? '',
    user_agent: e.userAgent ?? '',
    account: e.account ?? '',
    org: e.org ?? '',
    cluster: e.cluster ?? '',
    raw: e.raw,
  };
}

export function deadLetterRow(d: DeadLetter): Record<string, unknown> {
  const text = d.text.length > MAX_TEXT ? d.text.slice(0, MAX_TEXT) : d.text;
  // The id makes re-processing the same bad input idempotent.
  const id = createHash('sha256')
    .update(`${d.file}\u0000${d.line}\u0000${d.index}\u0000${d.reason}\u0000${text}`)
    .digest('hex')
    .slice(0, 32);
  return {
    id,
    at: d.at ?? new Date().toISOString(),
    source: d.source ?? '',
    stage: d.stage,
    reason: d.reason,
    file: d.file,
    line: d.line,
    idx: d.index,
    text,
  };
}

export interface WriterOptions {
  /** Rows per INSERT. @default 5000 */
  batchSize?: number;
  retries?: number;
}

/**
 * Batches rows per table and inserts them with retry. `flush()` resolves when every
 * row handed over so far is stored; callers checkpoint only after that.
 */
export class StoreWriter {
  readonly #store: Store;
  readonly #batchSize: number;
  readonly #retries: number;
  readonly #pending = new Map<string, Record<string, unknown>[]>();
  #rowsWritten = 0;

  constructor(store: Store, options: WriterOptions = {}) {
    this.#store = store;
    this.#batchSize = options.batchSize ?? 5000;
    this.#retries = options.retries ?? 4;
  }

  get rowsWritten(): number {
    return this.#rowsWritten;
  }

  /** Resolves at once unless this row fills a batch (then after its insert): callers need not await every row. */
  addEvent(e: AuditEvent): Promise<void> | undefined {
    return this.add('events', eventRow(e));
  }

  async addDeadLetter(d: DeadLetter): Promise<void> {
    await this.add('dead_letters', deadLetterRow(d));
  }

  add(table: string, row: Record<string, unknown>): Promise<void> | undefined {
    let rows = this.#pending.get(table);
    if (!rows) {
      rows = [];
      this.#pending.set(table, rows);
    }
    rows.push(row);
    return rows.length >= this.#batchSize ? this.#flushTable(table) : undefined;
  }

  async flush(): Promise<void> {
    const evidence = this.#store.evidence;
    if (!evidence) {
      // Issued together, as with a chain below: the engine takes them one after another, without a round trip in between.
      const results = await Promise.allSettled([...this.#pending.keys()].map((table) => this.#flushTable(table)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      return;
    }
    // The evidence rows of every table in one chain append (one audit_log insert per flush, not one per table).
    const batches = [...this.#pending].filter(([, rows]) => rows.length > 0).map(([table, rows]) => ({ table, rows }));
    for (const b of batches) this.#pending.set(b.table, []);
    // The chain append and the rows' inserts run at once (the engine works off the JS thread), so a
    // flush waits for the longest insert, not their sum: the chain's cost on the detector (issue 11).
    // prepareTables fixes the rows' content (it fills their DEFAULT now() columns) before either
    // insert starts, so both carry the same content. A crash between the two
    // leaves either side without the other only until the flush's batch, never committed, is
    // handled again: the replay chains and stores the same rows (verify accepts the repeat).
    if (!evidence.prepareTables) {
      await evidence.beforeInsertTables(batches);
      for (const b of batches) {
        await insertRows(this.#store, b.table, b.rows, this.#retries, false);
        this.#rowsWritten += b.rows.length;
      }
      return;
    }
    const chained = (await evidence.prepareTables(batches)).appended;
    const stored = batches.map(async (b) => {
      await insertRows(this.#store, b.table, b.rows, this.#retries, false);
      this.#rowsWritten += b.rows.length;
    });
    const results = await Promise.allSettled([chained, ...stored]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async #flushTable(table: string): Promise<void> {
    const rows = this.#pending.get(table);
    if (!rows || rows.length === 0) return;
    this.#pending.set(table, []);
    await insertRows(this.#store, table, rows, this.#retries);
    this.#rowsWritten += rows.length;
  }
}

/** `chain: false`: the rows were chained already (StoreWriter.flush chains a whole flush at once). */
export async function insertRows(store: Store, table: string, rows: Record<string, unknown>[], retries = 4, chain = true): Promise<void> {
  // Chained before stored: a crash in between leaves a chained row missing, which `audit verify` reports, never an unchained one.
  if (chain && store.evidence) await store.evidence.beforeInsert(table, rows);
  await withRetry(
    async () => {
      try {
        await store.client.insert({
          table,
          values: rows,
          format: 'JSONEachRow',
          clickhouse_settings: {
            date_time_input_format: 'best_effort',
            // See eventRow: an object or array given for a String column is stored as its JSON text.
            input_format_json_read_objects_as_strings: 1,
            input_format_json_read_arrays_as_strings: 1,
          },
        });
      } catch (cause) {
        throw new GlasswatchError(
          'BG_STORE_INSERT',
          `insert of ${rows.length} rows into ${table} failed on ${store.describe}: ${(cause as Error).message}`,
          {
            stage: 'storing',
            cause,
            // A server may be restarting or overloaded; an embedded engine error is not going to heal.
            retriable: store.config.kind === 'clickhouse',
          },
        );
      }
    },
    { retries },
  );
}
