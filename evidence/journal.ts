import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { GlasswatchError } from '../core/errors.js';
import { ensurePrivateDirSync, PRIVATE_FILE_MODE } from '../core/paths.js';
import type { Store } from '../core/store/client.js';
import { GENESIS_HASH, recordHash } from './chain.js';

/**
 * The audit chain's write-ahead journal, for a chDB store. Each chain append is one write to a local
 * file beside the store, and the records move into `audit_log` in one insert per drain (about a
 * second's worth): a MergeTree part per detector flush was the whole of the chain's cost (~10 ms a
 * part on this class of disk, whatever its size; issue 11). The journal has the store's own
 * durability: chDB writes its parts without fsync, so both survive a kill -9 and neither a power cut.
 *
 * After a crash, whoever opens the store next (a chain, `audit verify`, a report) moves the records
 * left in the journal into `audit_log` first (`recoverJournals`). A chDB store is opened by one
 * process at a time, so nobody else is writing them. A ClickHouse server store has no journal: its
 * writers may run on several hosts, and a journal on one host's disk could be lost with the host
 * while the rows it covers are on the server.
 */
export type JournalRow = {
  writer: string;
  seq: number;
  at: string;
  kind: string;
  tbl: string;
  key: string;
  content: string;
  prev_hash: string;
  hash: string;
};

/** Where a chDB store's journal lives (`<store>.audit-journal/`, beside the store as its key is); null for a server store. */
export function journalDirOf(store: Store): string | null {
  if (store.config.kind !== 'chdb') return null;
  const path = resolve(store.config.path);
  return join(dirname(path), `${basename(path)}.audit-journal`);
}

/** Segment files written by chains open in this process: recovery leaves them to their writer. */
const liveSegments = new Set<string>();
let segmentCounter = 0;

interface Segment {
  path: string;
  fd: number | null;
  rows: JournalRow[];
}

/** One writer's journal: appends go to the current segment; a drain seals it and opens the next. */
export class ChainJournal {
  readonly #dir: string;
  readonly #writer: string;
  #current: Segment;
  readonly #sealed: Segment[] = [];

  constructor(dir: string, writer: string) {
    ensurePrivateDirSync(dir, true);
    this.#dir = dir;
    this.#writer = writer;
    this.#current = this.#open();
  }

  /** Records in the journal not yet moved into audit_log. */
  get pending(): number {
    return this.#current.rows.length + this.#sealed.reduce((n, s) => n + s.rows.length, 0);
  }

  /** Appends records durably (one write); a failed write leaves the segment as it was. */
  write(rows: JournalRow[]): void {
    const seg = this.#current;
    if (seg.fd === null)
      throw new GlasswatchError('BG_EVIDENCE_CLOSED', `audit journal of ${this.#writer} is closed`, { stage: 'storing' });
    let text = '';
    for (const r of rows) text += `${JSON.stringify(r)}\n`;
    const size = fstatSync(seg.fd).size;
    try {
      const bytes = Buffer.from(text, 'utf8');
      let off = 0;
      while (off < bytes.length) off += writeSync(seg.fd, bytes, off, bytes.length - off);
    } catch (cause) {
      // A torn line would stop recovery at it: the append fails whole, or not at all.
      try {
        ftruncateSync(seg.fd, size);
      } catch {}
      throw new GlasswatchError('BG_EVIDENCE_JOURNAL', `cannot write the audit journal ${seg.path}: ${(cause as Error).message}`, {
        stage: 'storing',
        cause,
        retriable: true,
        hint: 'check the free space and permissions of the folder beside the store',
      });
    }
    for (const r of rows) seg.rows.push(r);
  }

  /** Seals the current segment (when it holds records) and returns every sealed segment not yet drained, oldest first. */
  seal(): readonly Segment[] {
    if (this.#current.rows.length > 0) {
      this.#closeFd(this.#current);
      this.#sealed.push(this.#current);
      this.#current = this.#open();
    }
    return this.#sealed;
  }

  /** The oldest sealed segment is in audit_log: its file goes. */
  drained(seg: Segment): void {
    if (this.#sealed[0] !== seg) throw new Error('audit journal segments drain in order');
    this.#sealed.shift();
    liveSegments.delete(seg.path);
    rmSync(seg.path, { force: true });
  }

  /** Closes the journal; an empty current segment is removed, anything undrained stays for recovery. */
  close(): void {
    const seg = this.#current;
    this.#closeFd(seg);
    if (seg.rows.length === 0) rmSync(seg.path, { force: true });
    for (const s of [seg, ...this.#sealed]) liveSegments.delete(s.path);
  }

  #open(): Segment {
    const name = `${encodeURIComponent(this.#writer)}.${process.pid}.${Date.now()}.${++segmentCounter}.jsonl`;
    const path = join(this.#dir, name);
    const fd = openSync(path, 'wx', PRIVATE_FILE_MODE);
    liveSegments.add(path);
    return { path, fd, rows: [] };
  }

  #closeFd(seg: Segment): void {
    if (seg.fd === null) return;
    closeSync(seg.fd);
    seg.fd = null;
  }
}

function journalError(message: string, file: string, hint?: string): GlasswatchError {
  return new GlasswatchError('BG_EVIDENCE_JOURNAL', message, {
    stage: 'storing',
    context: { file },
    hint:
      hint ??
      'the journal no longer continues the chain stored in audit_log (edited, or copied from another store): keep the file aside for the investigation, move it out of the journal folder, then start again; `glasswatch audit verify` reports what the chain lacks',
  });
}

/** The records of one segment file; a torn last line (a write cut short by a crash, whose rows were never stored) is dropped. */
function readSegment(file: string): JournalRow[] {
  const text = readFileSync(file, 'utf8');
  // Every record ends with a newline: what follows the last one is empty, or a torn write.
  const complete = text.split('\n').slice(0, -1);
  const rows: JournalRow[] = [];
  complete.forEach((line, i) => {
    let r: JournalRow;
    try {
      r = JSON.parse(line) as JournalRow;
    } catch {
      throw journalError(`audit journal ${file} line ${i + 1} is not a chain record (not JSON)`, file);
    }
    if (
      typeof r?.writer !== 'string' ||
      !Number.isSafeInteger(r.seq) ||
      r.seq < 1 ||
      typeof r.at !== 'string' ||
      ![r.kind, r.tbl, r.key, r.content, r.prev_hash, r.hash].every((v) => typeof v === 'string')
    )
      throw journalError(`audit journal ${file} line ${i + 1} is not a chain record (fields missing or of the wrong type)`, file);
    if (
      recordHash({ writer: r.writer, seq: r.seq, prev_hash: r.prev_hash, kind: r.kind, table: r.tbl, key: r.key, content: r.content }) !==
      r.hash
    )
      throw journalError(`audit journal ${file} line ${i + 1}: record hash does not match its content`, file);
    rows.push(r);
  });
  return rows;
}

async function storedHead(store: Store, writer: string): Promise<{ seq: number; hash: string } | null> {
  const rows = await (
    await store.client.query({
      query: 'SELECT seq, hash FROM audit_log WHERE writer = {writer:String} ORDER BY seq DESC LIMIT 1',
      query_params: { writer },
      format: 'JSONEachRow',
    })
  ).json<{ seq: string | number; hash: string }>();
  return rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash } : null;
}

/**
 * Moves the records a stopped writer left in the journal into audit_log, after checking that they
 * continue each writer's stored chain (hash, sequence, link); returns how many were moved. Segments
 * of chains open in this process are theirs to drain.
 */
export async function recoverJournals(
  store: Store,
  options: { dir?: string | null; insert?: (rows: JournalRow[]) => Promise<void> } = {},
): Promise<number> {
  const dir = options.dir === undefined ? journalDirOf(store) : options.dir;
  const insert =
    options.insert ??
    (async (rows: JournalRow[]) => {
      await store.client.insert({ table: 'audit_log', values: rows, format: 'JSONEachRow' });
    });
  if (dir === null || !existsSync(dir)) return 0;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => join(dir, f))
    .filter((f) => !liveSegments.has(f));
  if (files.length === 0) return 0;
  const byWriter = new Map<string, Array<{ row: JournalRow; file: string }>>();
  for (const file of files)
    for (const row of readSegment(file)) {
      const list = byWriter.get(row.writer) ?? [];
      if (list.length === 0) byWriter.set(row.writer, list);
      list.push({ row, file });
    }
  let moved = 0;
  for (const [writer, list] of byWriter) {
    list.sort((a, b) => a.row.seq - b.row.seq);
    const head = (await storedHead(store, writer)) ?? { seq: 0, hash: GENESIS_HASH };
    const rows: JournalRow[] = [];
    let expect = head;
    for (const { row, file } of list) {
      // Already drained before the crash (its file was not removed yet): nothing to move.
      if (row.seq <= head.seq) continue;
      if (row.seq === expect.seq && row.hash === expect.hash) continue; // the same record in two segments
      if (row.seq !== expect.seq + 1 || row.prev_hash !== expect.hash)
        throw journalError(
          `audit journal ${file}: record ${row.seq} of ${writer} does not continue the chain at ${expect.seq + 1} (stored head ${head.seq})`,
          file,
        );
      rows.push(row);
      expect = { seq: row.seq, hash: row.hash };
    }
    for (let i = 0; i < rows.length; i += 10_000) await insert(rows.slice(i, i + 10_000));
    moved += rows.length;
  }
  for (const file of files) rmSync(file, { force: true });
  return moved;
}

/**
 * Brings audit_log up to every chain record written so far: this process's chain drained, and what a
 * stopped writer left in the journal moved in. Readers of the chain (verify, report heads) call it first.
 */
export async function settleChain(store: Store): Promise<number> {
  await store.evidence?.drain?.();
  return recoverJournals(store);
}
