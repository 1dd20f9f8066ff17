/**
 * A bounded on-disk spool (a disk buffer, as Vector and Fluent Bit keep): what an HTTP receiver
 * has accepted but Kafka has not yet acknowledged. The receiver answers 2xx only after `append`
 * resolved, i.e. after the bytes were written *and fsynced*, so a `kill -9` (or a power cut) right
 * after the answer loses nothing; the drainer reads records in append order, and `ack` moves past
 * them once Kafka acknowledged them.
 *
 * Format, in `dir` (0700; files 0600):
 * - `<16-digit id>.seg` segment files, each a run of records `[u32 BE length][u32 BE crc32][payload]`.
 *   A new segment starts when the current one would pass `segmentBytes`.
 * - `ack` — `<segment id> <offset>`: the first record not yet acknowledged (write + rename).
 * - `lock` — the pid of the process that has the spool open: two processes on one spool would
 *   interleave records and each replay the other's; a lock whose process is gone (kill -9) is taken over.
 *
 * On open every segment from the ack position on is scanned. A record whose header is cut, whose
 * length runs past the end of the file or whose checksum is wrong ends the valid part of its
 * segment: the file is truncated there. Because no 2xx was sent before the fsync, such a torn tail
 * was never acknowledged to anyone. The ack file is not fsynced: after a crash it can lag, which
 * re-sends records already in Kafka (at least once), never skips one.
 *
 * Budget: `maxBytes` bounds the bytes appended and not yet acknowledged; beyond it `append` throws
 * `BG_INGEST_SPOOL_FULL` and the receiver answers 503 with Retry-After. Disk use is at most
 * `maxBytes` plus one segment (the acknowledged head of the segment being read).
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { type FileHandle, open, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/log.js';

export const RECORD_HEADER_BYTES = 8;
/** 1 GiB: 7 minutes of a 2,500 events/s cluster of ~1 KiB events, on a disk any node has. */
export const DEFAULT_SPOOL_MAX_BYTES = 1024 * 1024 * 1024;
/** 32 MiB: a fully acknowledged segment is deleted whole, so disk is given back in these steps. */
export const DEFAULT_SPOOL_SEGMENT_BYTES = 32 * 1024 * 1024;

export interface SpoolOptions {
  dir: string;
  /** Unacknowledged bytes at most (record headers included). @default DEFAULT_SPOOL_MAX_BYTES */
  maxBytes?: number;
  /** @default DEFAULT_SPOOL_SEGMENT_BYTES */
  segmentBytes?: number;
  logger?: Logger;
}

/** One record read back: where it is (for `ack`) and its bytes. */
export interface SpoolEntry {
  segment: number;
  offset: number;
  /** Offset just past the record. */
  end: number;
  payload: Buffer;
}

interface Segment {
  id: number;
  path: string;
  /** Bytes durable in the file (written and fsynced). */
  size: number;
}

interface PendingAppend {
  frames: Buffer[];
  bytes: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Spools open in this process (a pid check cannot tell two of our own apart). */
const openDirs = new Set<string>();

async function takeLock(dir: string): Promise<void> {
  const path = join(dir, 'lock');
  if (openDirs.has(dir)) throw locked(dir, process.pid);
  try {
    const holder = Number((await readFile(path, 'utf8')).trim());
    if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid) {
      let alive = true;
      try {
        process.kill(holder, 0);
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === 'EPERM';
      }
      if (alive) throw locked(dir, holder);
    }
  } catch (err) {
    if (err instanceof GlasswatchError) throw err;
  }
  await writeFile(path, `${process.pid}\n`, { mode: 0o600 });
  openDirs.add(dir);
}

function locked(dir: string, pid: number): GlasswatchError {
  return new GlasswatchError('BG_INGEST_SPOOL_LOCKED', `spool ${dir} is in use by process ${pid}`, {
    stage: 'receiving',
    hint: 'give each collector process its own spool.dir (or checkpointDir)',
  });
}

const segName = (id: number) => `${String(id).padStart(16, '0')}.seg`;

export function spoolFull(message: string): GlasswatchError {
  return new GlasswatchError('BG_INGEST_SPOOL_FULL', message, {
    stage: 'receiving',
    retriable: true,
    hint: 'Kafka has been unavailable long enough to fill spool.maxBytes; the receiver answers 503 until the drain frees space',
  });
}

function frame(payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  head.writeUInt32BE(payload.length, 0);
  head.writeUInt32BE(crc32(payload) >>> 0, 4);
  return head;
}

export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly #log: Logger;
  readonly #segments: Segment[] = [];
  #active: FileHandle | null = null;
  #cursor = { segment: 0, offset: 0 };
  #reader: { id: number; fh: FileHandle } | null = null;
  /** Appended, not acknowledged: bytes and records. */
  #pendingBytes = 0;
  #pendingRecords = 0;
  /** Reserved by appends in flight (counted against the budget before they are written). */
  #reserved = 0;
  #queue: PendingAppend[] = [];
  #writing: Promise<void> | null = null;
  #waiters: (() => void)[] = [];
  #ackWrite: Promise<void> | null = null;
  #ackDirty = false;
  #closed = false;
  /** Id of the next segment: past every segment and past the ack position (an id at or below it would be taken for acknowledged). */
  #nextId = 1;
  #appends = 0;
  /** Records dropped at open as torn or corrupt (never acknowledged to a sender). */
  tornRecords = 0;
  /** fsync calls made (bench, tests). */
  syncs = 0;

  private constructor(o: SpoolOptions) {
    this.dir = o.dir;
    this.maxBytes = o.maxBytes ?? DEFAULT_SPOOL_MAX_BYTES;
    this.segmentBytes = o.segmentBytes ?? DEFAULT_SPOOL_SEGMENT_BYTES;
    this.#log = o.logger ?? silentLogger;
  }

  /** Opens (or creates) the spool in `dir` and recovers it after a crash. */
  static async open(o: SpoolOptions): Promise<Spool> {
    const s = new Spool(o);
    if (s.segmentBytes < 1024 || s.maxBytes < s.segmentBytes) {
      throw new GlasswatchError(
        'BG_INGEST_SPOOL_CONFIG',
        `spool: maxBytes (${s.maxBytes}) must be at least segmentBytes (${s.segmentBytes}) ≥ 1024`,
        {
          stage: 'receiving',
        },
      );
    }
    await s.#recover();
    return s;
  }

  /** Unacknowledged bytes (headers included): the figure the budget bounds. */
  get bytes(): number {
    return this.#pendingBytes;
  }
  get records(): number {
    return this.#pendingRecords;
  }
  get segments(): number {
    return this.#segments.length;
  }

  /** Whether `payloadBytes` more would fit now (receivers ask before reading a body). */
  wouldAccept(payloadBytes: number): boolean {
    return this.#pendingBytes + this.#reserved + payloadBytes + RECORD_HEADER_BYTES <= this.maxBytes;
  }

  async #recover(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    await takeLock(this.dir);
    const ids = (await readdir(this.dir))
      .filter((f) => /^\d{16}\.seg$/.test(f))
      .map((f) => Number(f.slice(0, 16)))
      .sort((a, b) => a - b);
    let ack = { segment: 0, offset: 0 };
    try {
      const [seg, off] = (await readFile(join(this.dir, 'ack'), 'utf8')).trim().split(' ').map(Number);
      if (Number.isSafeInteger(seg) && Number.isSafeInteger(off)) ack = { segment: seg as number, offset: off as number };
    } catch {
      // No ack file: nothing acknowledged yet.
    }
    for (const id of ids) {
      const path = join(this.dir, segName(id));
      // Segments before the ack position were fully acknowledged; a crash came before their removal.
      if (id < ack.segment) {
        await rm(path, { force: true });
        continue;
      }
      const from = id === ack.segment ? ack.offset : 0;
      const { valid, records } = await this.#scan(path, from);
      const size = (await stat(path)).size;
      if (valid < size) {
        this.#log.warn('spool: torn or corrupt tail dropped (never acknowledged: no fsync, no 2xx)', {
          segment: segName(id),
          validBytes: valid,
          droppedBytes: size - valid,
        });
        await truncate(path, valid);
      }
      this.#segments.push({ id, path, size: valid });
      this.#pendingBytes += valid - from;
      this.#pendingRecords += records;
    }
    const first = this.#segments[0];
    this.#nextId = Math.max(ack.segment + 1, (this.#segments.at(-1)?.id ?? 0) + 1);
    this.#cursor = first ? { segment: first.id, offset: first.id === ack.segment ? ack.offset : 0 } : { segment: this.#nextId, offset: 0 };
    if (this.#pendingRecords > 0)
      this.#log.info('spool: replaying records not acknowledged by Kafka', { records: this.#pendingRecords, bytes: this.#pendingBytes });
  }

  /** Valid prefix of a segment from `from`: offset past the last good record, and the records counted. */
  async #scan(path: string, from: number): Promise<{ valid: number; records: number }> {
    const data = await readFile(path);
    let at = from;
    let records = 0;
    while (at + RECORD_HEADER_BYTES <= data.length) {
      const len = data.readUInt32BE(at);
      const sum = data.readUInt32BE(at + 4);
      const end = at + RECORD_HEADER_BYTES + len;
      if (end > data.length) break;
      if (crc32(data.subarray(at + RECORD_HEADER_BYTES, end)) >>> 0 !== sum) break;
      at = end;
      records++;
    }
    if (at < data.length) this.tornRecords++;
    return { valid: at, records };
  }

  /**
   * Appends `payloads` as one write and resolves once they are fsynced; appends that arrive while a
   * write is in flight share the next write and fsync (group commit). Throws `BG_INGEST_SPOOL_FULL`
   * (before writing anything) when they do not fit in the budget.
   */
  append(payloads: readonly Buffer[]): Promise<void> {
    if (this.#closed) return Promise.reject(new GlasswatchError('BG_INGEST_SPOOL_CLOSED', 'spool is closed', { stage: 'receiving' }));
    const frames: Buffer[] = [];
    let bytes = 0;
    for (const p of payloads) {
      frames.push(frame(p), p);
      bytes += RECORD_HEADER_BYTES + p.length;
    }
    if (this.#pendingBytes + this.#reserved + bytes > this.maxBytes) {
      return Promise.reject(spoolFull(`spool full: ${this.#pendingBytes + this.#reserved} of ${this.maxBytes} bytes unacknowledged`));
    }
    this.#reserved += bytes;
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ frames, bytes, resolve, reject });
      if (!this.#writing) this.#writing = this.#writeLoop();
    });
  }

  async #writeLoop(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0);
      const bytes = batch.reduce((n, b) => n + b.bytes, 0);
      const records = batch.reduce((n, b) => n + b.frames.length / 2, 0);
      try {
        const seg = await this.#segmentFor(bytes);
        const frames = batch.flatMap((b) => b.frames);
        let written = 0;
        while (written < bytes) {
          const r = await (this.#active as FileHandle).writev(
            written === 0 ? frames : [Buffer.concat(frames).subarray(written)],
            seg.size + written,
          );
          written += r.bytesWritten;
        }
        await (this.#active as FileHandle).sync();
        this.syncs++;
        seg.size += bytes;
        this.#pendingBytes += bytes;
        this.#pendingRecords += records;
        this.#reserved -= bytes;
        this.#appends++;
        for (const b of batch) b.resolve();
        for (const w of this.#waiters.splice(0)) w();
      } catch (err) {
        this.#reserved -= bytes;
        // A failed write may have left part of the batch in the file: start a new segment so the
        // next records never sit behind a torn one; the partial bytes are dropped at the next open.
        await this.#active?.close().catch(() => {});
        this.#active = null;
        const e = new GlasswatchError('BG_INGEST_SPOOL_WRITE', `spool write failed: ${errorMessage(err)}`, {
          stage: 'receiving',
          retriable: true,
          cause: err,
        });
        for (const b of batch) b.reject(e);
      }
    }
    this.#writing = null;
  }

  async #segmentFor(bytes: number): Promise<Segment> {
    let last = this.#segments.at(-1);
    if (last && this.#active && (last.size === 0 || last.size + bytes <= this.segmentBytes)) return last;
    await this.#active?.close();
    this.#active = null;
    const id = this.#nextId++;
    const path = join(this.dir, segName(id));
    this.#active = await open(path, 'wx', 0o600);
    // The directory entry must be durable too, or a power cut could lose a whole segment.
    const dir = await open(this.dir, 'r');
    await dir.sync().finally(() => dir.close());
    last = { id, path, size: 0 };
    this.#segments.push(last);
    if (this.#segments.length === 1) this.#cursor = { segment: id, offset: 0 };
    return last;
  }

  /** The next record after the read cursor, or null when the drainer has caught up. */
  async next(after?: SpoolEntry): Promise<SpoolEntry | null> {
    let pos = after ? { segment: after.segment, offset: after.end } : { ...this.#cursor };
    for (;;) {
      const idx = this.#segments.findIndex((s) => s.id >= pos.segment);
      const seg = this.#segments[idx];
      if (!seg) return null;
      if (seg.id > pos.segment) pos = { segment: seg.id, offset: 0 };
      if (pos.offset + RECORD_HEADER_BYTES <= seg.size) {
        if (this.#reader?.id !== seg.id) {
          await this.#reader?.fh.close();
          this.#reader = { id: seg.id, fh: await open(seg.path, 'r') };
        }
        const head = Buffer.alloc(RECORD_HEADER_BYTES);
        await this.#reader.fh.read(head, 0, RECORD_HEADER_BYTES, pos.offset);
        const len = head.readUInt32BE(0);
        const payload = Buffer.alloc(len);
        if (len > 0) await this.#reader.fh.read(payload, 0, len, pos.offset + RECORD_HEADER_BYTES);
        return { segment: seg.id, offset: pos.offset, end: pos.offset + RECORD_HEADER_BYTES + len, payload };
      }
      // End of this segment: move on only if a later one exists (the last one may still grow).
      if (idx === this.#segments.length - 1) return null;
      pos = { segment: (this.#segments[idx + 1] as Segment).id, offset: 0 };
    }
  }

  /** Count of durable appends so far: pass it to `waitForData` so no append between a read and the wait is missed. */
  get appends(): number {
    return this.#appends;
  }

  /** Resolves once an append after `since` (an `appends` value) is durable, or the spool closes. */
  waitForData(since: number): Promise<void> {
    if (this.#closed || this.#appends !== since) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Marks every record up to and including `entry` acknowledged (Kafka has them, or they were
   * dead-lettered); `records` is how many that is since the last ack. Deletes the segments wholly before the new position.
   */
  async ack(entry: SpoolEntry, records = 1): Promise<void> {
    const before = this.#cursor;
    const seg = this.#segments.find((s) => s.id === entry.segment);
    if (!seg) return;
    let freed = 0;
    for (const s of this.#segments) {
      if (s.id >= before.segment && s.id < entry.segment) freed += s.size - (s.id === before.segment ? before.offset : 0);
    }
    freed += entry.end - (before.segment === entry.segment ? before.offset : 0);
    this.#pendingBytes -= freed;
    this.#pendingRecords = Math.max(0, this.#pendingRecords - records);
    this.#cursor = { segment: entry.segment, offset: entry.end };
    // A segment read to its end, with a later one already started, is done.
    const idx = this.#segments.indexOf(seg);
    if (entry.end >= seg.size && idx < this.#segments.length - 1) {
      const nextId = (this.#segments[idx + 1] as Segment).id;
      this.#cursor = { segment: nextId, offset: 0 };
    }
    await this.#persistAck();
    while (this.#segments.length > 1 && (this.#segments[0] as Segment).id < this.#cursor.segment) {
      const gone = this.#segments.shift() as Segment;
      if (this.#reader?.id === gone.id) {
        await this.#reader.fh.close();
        this.#reader = null;
      }
      await rm(gone.path, { force: true });
    }
  }

  /** Writes the ack position (coalesced: one write in flight, the latest position wins). */
  async #persistAck(): Promise<void> {
    this.#ackDirty = true;
    while (this.#ackWrite) await this.#ackWrite;
    if (!this.#ackDirty) return;
    this.#ackDirty = false;
    const tmp = join(this.dir, 'ack.tmp');
    this.#ackWrite = writeFile(tmp, `${this.#cursor.segment} ${this.#cursor.offset}\n`, { mode: 0o600 })
      .then(() => rename(tmp, join(this.dir, 'ack')))
      .finally(() => {
        this.#ackWrite = null;
      });
    await this.#ackWrite;
  }

  /** Releases a drainer waiting for data (it is stopping). */
  stopWaiting(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Finishes the writes in flight and closes the files; what is not acknowledged stays for the next open. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#writing) await this.#writing;
    for (const w of this.#waiters.splice(0)) w();
    while (this.#ackWrite) await this.#ackWrite;
    await this.#active?.close();
    await this.#reader?.fh.close();
    this.#active = null;
    this.#reader = null;
    if (openDirs.delete(this.dir)) await rm(join(this.dir, 'lock'), { force: true });
  }
}
