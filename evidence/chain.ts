import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { GlasswatchError, withRetry } from '../core/errors.js';
import type { EvidenceHook, Store } from '../core/store/client.js';
import { canonicalJson, canonicalRowJson } from './canonical.js';
import { ChainJournal, type JournalRow, recoverJournals, settleChain } from './journal.js';
import type { EvidenceKeys } from './keys.js';
import { keyOf, rowContent, tableColumns } from './normalize.js';
import { evidenceTable } from './tables.js';

/**
 * The audit chain: one hash chain per writer (a process, named by its instance id), in `audit_log`.
 * Record n holds `prev_hash` = hash of record n-1 and `hash` = SHA-256 over the canonical JSON of
 * (writer, seq, prev_hash, kind, table, key, content). Every `checkpointEvery` records, and when the
 * store closes, the head is signed (Ed25519) into `audit_checkpoints`.
 *
 * Evidence rows are chained before they are inserted (insertRows calls `beforeInsert`): a crash in
 * between leaves a chained row that is not stored, which `audit verify` reports as missing until the
 * replay that follows every crash stores it. A replay re-inserting an identical row chains it again
 * (a new record with the same content), which verify accepts: ReplacingMergeTree keeps one row.
 *
 * With a journal (chDB stores, evidence/journal.ts) an append is a local file write and the records
 * reach audit_log in one insert per drain (`drainMs`, or sooner past `drainRecords`); checkpoints
 * sign what a drain stored. A failed drain fails the next append (fail closed: the flush, and so
 * the offset commit, waits until the chain reaches the store again).
 */
export const GENESIS_HASH = '0'.repeat(64);
const CHECKPOINT_DOMAIN = 'glasswatch-audit-checkpoint-v1\n';

export interface ChainRecord {
  writer: string;
  seq: number;
  prev_hash: string;
  kind: string;
  table: string;
  key: string;
  /** Canonical JSON text of the record's content. */
  content: string;
}

/**
 * SHA-256 over canonicalJson({ writer, seq, prev_hash, kind, table, key, content }), written out in
 * the canonical (sorted) key order by hand: it runs once per evidence row, and the generic
 * canonicalJson would sort and quote the same seven keys every time (a test holds the two equal).
 */
export function recordHash(r: ChainRecord): string {
  if (!Number.isSafeInteger(r.seq)) throw new TypeError(`audit chain seq ${r.seq} is not a safe integer`);
  const text =
    `{"content":${JSON.stringify(r.content)},"key":${JSON.stringify(r.key)},"kind":${JSON.stringify(r.kind)},` +
    `"prev_hash":${JSON.stringify(r.prev_hash)},"seq":${r.seq},"table":${JSON.stringify(r.table)},"writer":${JSON.stringify(r.writer)}}`;
  return sha256Hex(text);
}

/** crypto.hash (Node ≥ 20.12) skips the Hash object, which costs more than hashing a short row. */
const sha256Hex: (text: string) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (text) => (crypto as unknown as { hash: (a: string, d: string, e: 'hex') => string }).hash('sha256', text, 'hex')
    : (text) => createHash('sha256').update(text).digest('hex');

/** The bytes a checkpoint signature covers. */
export function checkpointPayload(c: { writer: string; seq: number; hash: string; keyId: string }): string {
  return CHECKPOINT_DOMAIN + canonicalJson({ writer: c.writer, seq: c.seq, hash: c.hash, keyId: c.keyId });
}

export interface ChainOptions {
  writer: string;
  keys: EvidenceKeys;
  /** @default 1000 */
  checkpointEvery?: number;
  retries?: number;
  /** A write-ahead journal folder (evidence/journal.ts); absent: every append is its own audit_log insert. */
  journal?: { dir: string; drainMs?: number; drainRecords?: number } | null;
}

interface Entry {
  kind: string;
  table: string;
  key: string;
  content: string;
}

export class AuditChain implements EvidenceHook {
  readonly writer: string;
  readonly #store: Store;
  readonly #keys: EvidenceKeys;
  readonly #every: number;
  readonly #retries: number;
  #seq = 0;
  #hash = GENESIS_HASH;
  #checkpointed = 0;
  /** An audit_log insert failed: it may still have landed, so the head is read again before the next append. */
  #uncertain = true;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** The head audit_log holds (what a checkpoint may sign). */
  #stored = { seq: 0, hash: GENESIS_HASH };
  #journal: ChainJournal | null = null;
  readonly #journalOptions: ChainOptions['journal'];
  #drainTail: Promise<unknown> = Promise.resolve();
  #drainTimer: NodeJS.Timeout | null = null;
  #drainFailed: unknown = null;

  private constructor(store: Store, options: ChainOptions) {
    this.#store = store;
    this.writer = options.writer;
    this.#keys = options.keys;
    this.#every = options.checkpointEvery ?? 1000;
    this.#retries = options.retries ?? 4;
    this.#journalOptions = options.journal ?? null;
  }

  /** The writer's chain, continued from its stored head. */
  static async open(store: Store, options: ChainOptions): Promise<AuditChain> {
    const chain = new AuditChain(store, options);
    const journal = options.journal;
    // A crash's leftovers first, so this chain continues from them rather than reusing their numbers.
    if (journal) await recoverJournals(store, { dir: journal.dir, insert: (rows) => chain.#insert('audit_log', rows) });
    await chain.#serial(() => chain.#readHead());
    if (journal) chain.#journal = new ChainJournal(journal.dir, chain.writer);
    return chain;
  }

  get head(): { seq: number; hash: string } {
    return { seq: this.#seq, hash: this.#hash };
  }

  /** Chains the rows of an evidence table (other tables pass through untouched). */
  beforeInsert(table: string, rows: Record<string, unknown>[]): Promise<void> {
    return this.beforeInsertTables([{ table, rows }]);
  }

  async beforeInsertTables(batches: Array<{ table: string; rows: Record<string, unknown>[] }>): Promise<void> {
    await (await this.prepareTables(batches)).appended;
  }

  async prepareTables(batches: Array<{ table: string; rows: Record<string, unknown>[] }>): Promise<{ appended: Promise<void> }> {
    const entries = await this.#entries(batches);
    if (entries.length === 0) return { appended: Promise.resolve() };
    const appended = this.append(entries);
    // Awaited by the caller; this only keeps a rejection from counting as unhandled in between.
    appended.catch(() => {});
    return { appended };
  }

  async #entries(batches: Array<{ table: string; rows: Record<string, unknown>[] }>): Promise<Entry[]> {
    const entries: Entry[] = [];
    const now = new Date().toISOString();
    for (const { table, rows } of batches) {
      const spec = evidenceTable(table);
      if (!spec || rows.length === 0) continue;
      const columns = await tableColumns(this.#store, table);
      for (const row of rows) {
        const content = rowContent(columns, row, now);
        entries.push({ kind: 'row', table, key: keyOf(spec.key, content), content: canonicalRowJson(content) });
      }
    }
    return entries;
  }

  /** Appends records (in one audit_log insert, or one journal write) and signs a checkpoint when one is due. */
  append(entries: Entry[]): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) throw new GlasswatchError('BG_EVIDENCE_CLOSED', `audit chain ${this.writer} is closed`, { stage: 'storing' });
      if (this.#drainFailed) await this.#drain();
      if (this.#uncertain) await this.#readHead();
      const rows = this.#records(entries);
      const last = rows[rows.length - 1]!;
      const journal = this.#journal;
      if (journal) {
        journal.write(rows);
        this.#seq = last.seq;
        this.#hash = last.hash;
        if (journal.pending >= (this.#journalOptions?.drainRecords ?? 5000)) this.#drainInBackground();
        else if (!this.#drainTimer) {
          this.#drainTimer = setTimeout(() => this.#drainInBackground(), this.#journalOptions?.drainMs ?? 1000);
          this.#drainTimer.unref();
        }
        return;
      }
      this.#uncertain = true;
      await this.#insert('audit_log', rows);
      this.#seq = last.seq;
      this.#hash = last.hash;
      this.#stored = { seq: last.seq, hash: last.hash };
      this.#uncertain = false;
      if (this.#seq - this.#checkpointed >= this.#every) await this.#checkpoint();
    });
  }

  #records(entries: Entry[]): JournalRow[] {
    const at = new Date().toISOString();
    let seq = this.#seq;
    let prev = this.#hash;
    return entries.map((e) => {
      seq++;
      const record: ChainRecord = { writer: this.writer, seq, prev_hash: prev, ...e };
      prev = recordHash(record);
      return {
        writer: this.writer,
        seq,
        at,
        kind: e.kind,
        tbl: e.table,
        key: e.key,
        content: e.content,
        prev_hash: record.prev_hash,
        hash: prev,
      };
    });
  }

  /**
   * Moves what the journal holds into audit_log (one insert per sealed segment) and signs a
   * checkpoint when one is due. Without a journal there is nothing to move.
   */
  drain(): Promise<void> {
    return this.#drain();
  }

  #drainInBackground(): void {
    // A failure is kept in #drainFailed: the next append retries the drain and fails with it.
    this.#drain().catch(() => {});
  }

  #drain(): Promise<void> {
    const run = this.#drainTail.then(async () => {
      if (this.#drainTimer) clearTimeout(this.#drainTimer);
      this.#drainTimer = null;
      const journal = this.#journal;
      if (!journal) return;
      try {
        for (const seg of [...journal.seal()]) {
          await this.#insert('audit_log', seg.rows);
          const last = seg.rows[seg.rows.length - 1]!;
          this.#stored = { seq: last.seq, hash: last.hash };
          journal.drained(seg);
        }
        this.#drainFailed = null;
      } catch (err) {
        this.#drainFailed = err;
        throw err;
      }
      if (this.#stored.seq - this.#checkpointed >= this.#every) await this.#checkpoint();
    });
    this.#drainTail = run.catch(() => undefined);
    return run;
  }

  /** Signs the stored head now (nothing to sign when no record came since the last checkpoint). */
  checkpoint(): Promise<void> {
    return this.#serial(async () => {
      await this.#drain();
      await this.#checkpoint();
    });
  }

  async close(): Promise<void> {
    await this.#serial(async () => {
      if (this.#closed) return;
      this.#closed = true;
      try {
        // Whatever cannot be drained now stays in the journal: the next open moves it.
        await this.#drain();
        if (!this.#uncertain) await this.#checkpoint();
      } finally {
        if (this.#drainTimer) clearTimeout(this.#drainTimer);
        this.#journal?.close();
      }
    });
  }

  async #checkpoint(): Promise<void> {
    const { seq, hash } = this.#stored;
    if (seq === 0 || seq === this.#checkpointed) return;
    const c = { writer: this.writer, seq, hash, keyId: this.#keys.keyId };
    const signature = this.#keys.sign(checkpointPayload(c));
    await this.#insert('audit_checkpoints', [
      { writer: c.writer, seq: c.seq, hash: c.hash, key_id: c.keyId, signature, at: new Date().toISOString() },
    ]);
    this.#checkpointed = seq;
  }

  async #readHead(): Promise<void> {
    const q = (query: string) =>
      this.#store.client
        .query({ query, query_params: { writer: this.writer }, format: 'JSONEachRow' })
        .then((r) => r.json<{ seq: string | number; hash: string }>());
    const [head] = await q('SELECT seq, hash FROM audit_log WHERE writer = {writer:String} ORDER BY seq DESC LIMIT 1');
    const [signed] = await q('SELECT seq, hash FROM audit_checkpoints WHERE writer = {writer:String} ORDER BY seq DESC LIMIT 1');
    this.#seq = head ? Number(head.seq) : 0;
    this.#hash = head ? head.hash : GENESIS_HASH;
    this.#stored = { seq: this.#seq, hash: this.#hash };
    this.#checkpointed = signed ? Number(signed.seq) : 0;
    this.#uncertain = false;
  }

  async #insert(table: string, values: Record<string, unknown>[]): Promise<void> {
    await withRetry(
      async () => {
        try {
          await this.#store.client.insert({
            table,
            values,
            format: 'JSONEachRow',
            clickhouse_settings: { date_time_input_format: 'best_effort' },
          });
        } catch (cause) {
          throw new GlasswatchError(
            'BG_EVIDENCE_APPEND',
            `audit chain ${this.writer}: insert into ${table} failed: ${(cause as Error).message}`,
            {
              stage: 'storing',
              cause,
              // A retried insert of the same (writer, seq) rows collapses to them (ReplacingMergeTree).
              retriable: this.#store.config.kind === 'clickhouse',
            },
          );
        }
      },
      { retries: this.#retries },
    );
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}

/** The head of every writer's chain (reports are stamped with these). */
export async function chainHeads(store: Store): Promise<Array<{ writer: string; seq: number; hash: string }>> {
  await settleChain(store);
  const rows = await (
    await store.client.query({
      query: 'SELECT writer, max(seq) AS head_seq, argMax(hash, seq) AS head_hash FROM audit_log GROUP BY writer ORDER BY writer',
      format: 'JSONEachRow',
    })
  ).json<{ writer: string; head_seq: string | number; head_hash: string }>();
  return rows.map((r) => ({ writer: r.writer, seq: Number(r.head_seq), hash: r.head_hash }));
}
