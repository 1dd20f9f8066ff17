/**
 * Follows a kube-apiserver audit log (`--audit-log-path`, JSON lines) like `tail -F`, with a
 * checkpoint: the file's inode and the byte offset after the last acknowledged complete line.
 *
 * - Only complete lines are published; a partial last line waits for its newline.
 * - Rotation (the path now names another inode): the old file is read to its end through the
 *   still-open handle, then the new file from byte 0.
 * - Truncation (copytruncate: same inode, size below the offset): restart at 0.
 * - Restart: the checkpointed inode is looked for at the path, then among its rotated siblings
 *   in the same directory (`audit-2025-…log`), so lines written while we were down are not lost.
 */
import { type FileHandle, open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { CheckpointStore } from '../collector/checkpoint.js';
import type { CollectorMetrics } from '../collector/metrics.js';
import type { EventPublisher } from '../collector/publisher.js';
import { sleep } from '../collector/run.js';
import type { NormalizeResult } from '../types.js';
import type { K8sTailConfig } from './options.js';

export interface TailCheckpoint {
  /** Inode of the file being read (a string: inodes can exceed 2^53 on some file systems). */
  inode: string;
  /** Byte offset after the last acknowledged line. */
  offset: number;
}

export interface TailerDeps {
  publisher: EventPublisher;
  checkpoint: CheckpointStore<TailCheckpoint>;
  logger: Logger;
  metrics: CollectorMetrics;
  /** After each acknowledged chunk (tests, progress). */
  onChunk?: (info: { inode: string; offset: number; events: number }) => void;
}

interface Open {
  handle: FileHandle;
  inode: string;
  offset: number;
  path: string;
}

async function inodeOf(path: string): Promise<{ inode: string; size: number } | null> {
  try {
    const s = await stat(path, { bigint: true });
    return { inode: s.ino.toString(), size: Number(s.size) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** A rotated sibling that still has `inode` (`audit.log` → `audit-2025-01-01T00-00-00.000.log`, `audit.log.1`). */
async function findRotated(path: string, inode: string): Promise<string | null> {
  const dir = dirname(path);
  const stem = basename(path, extname(path));
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(stem) || join(dir, name) === path) continue;
    const found = await inodeOf(join(dir, name)).catch(() => null);
    if (found?.inode === inode) return join(dir, name);
  }
  return null;
}

/**
 * Dead letters of a chunk name the file and the byte offset of their own line (`audit.log@81234`),
 * so a poison line can be found with `tail -c +81235` and its `pipeline.poison` alert is the same
 * whatever chunk the line was read in after a restart.
 */
function locateLines(results: NormalizeResult[], chunk: Buffer, path: string, start: number): NormalizeResult[] {
  let lineStarts: number[] | null = null;
  for (const r of results) {
    if (r.kind !== 'dead' || r.origin.line === null) continue;
    if (lineStarts === null) {
      lineStarts = [0];
      for (let i = chunk.indexOf(10); i !== -1 && i + 1 < chunk.length; i = chunk.indexOf(10, i + 1)) lineStarts.push(i + 1);
    }
    const at = lineStarts[r.origin.line - 1];
    if (at !== undefined) r.origin = { ...r.origin, file: `${path}@${start + at}`, line: null };
  }
  return results;
}

export class AuditLogTailer {
  readonly #c: K8sTailConfig;
  readonly #d: TailerDeps;
  #buffer: Buffer;
  /** Consecutive failed chunks, for the back-off. */
  #failures = 0;

  constructor(config: K8sTailConfig, deps: TailerDeps) {
    this.#c = config;
    this.#d = deps;
    this.#buffer = Buffer.allocUnsafe(config.chunkBytes);
  }

  /** Runs until `signal` aborts; the chunk in flight is acknowledged and checkpointed first. */
  async run(signal: AbortSignal): Promise<void> {
    const log = this.#d.logger;
    let current = await this.#resume(signal);
    try {
      while (!signal.aborted) {
        if (current === null) {
          current = await this.#openAt(this.#c.file, 0);
          if (current === null) {
            await sleep(this.#c.pollIntervalMs, signal);
            continue;
          }
          await this.#d.checkpoint.save({ inode: current.inode, offset: 0 });
        }
        await this.#drain(current, false, signal);
        if (signal.aborted) break;
        const now = await inodeOf(this.#c.file).catch(() => null);
        if (now === null || now.inode !== current.inode) {
          if (now === null) {
            // Between rename and create: keep the old handle until the new file appears.
            await sleep(this.#c.pollIntervalMs, signal);
            continue;
          }
          await this.#drain(current, true, signal); // lines appended between the read and the rename
          log.info('k8s audit log rotated', { from: current.inode, to: now.inode, lastOffset: current.offset });
          await current.handle.close();
          current = null;
          continue;
        }
        if (now.size < current.offset) {
          log.warn('k8s audit log truncated; reading from the start', { inode: current.inode, offset: current.offset, size: now.size });
          current.offset = 0;
          await this.#d.checkpoint.save({ inode: current.inode, offset: 0 });
          continue;
        }
        if (now.size === current.offset) await sleep(this.#c.pollIntervalMs, signal);
      }
    } finally {
      await current?.handle.close().catch(() => {});
    }
  }

  async #openAt(path: string, offset: number): Promise<Open | null> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    // The inode of the handle, not of the path: the path may have been rotated since open().
    const s = await handle.stat({ bigint: true });
    return { handle, inode: s.ino.toString(), offset: Math.min(offset, Number(s.size)), path };
  }

  async #resume(signal: AbortSignal): Promise<Open | null> {
    const saved = await this.#d.checkpoint.load();
    const log = this.#d.logger;
    if (saved === null) {
      const opened = await this.#openAt(this.#c.file, 0);
      if (opened && this.#c.startAt === 'end') opened.offset = Number((await opened.handle.stat()).size);
      if (opened) await this.#d.checkpoint.save({ inode: opened.inode, offset: opened.offset });
      log.info('k8s audit log tailer starting', { from: this.#c.startAt, offset: opened?.offset ?? 0 });
      return opened;
    }
    const here = await inodeOf(this.#c.file);
    if (here?.inode === saved.inode) {
      const opened = await this.#openAt(this.#c.file, saved.offset);
      if (opened && opened.offset < saved.offset)
        log.warn('k8s audit log shorter than the checkpoint (truncated while stopped); reading from the start');
      if (opened && opened.offset < saved.offset) opened.offset = 0;
      log.info('k8s audit log tailer resuming', { inode: saved.inode, offset: opened?.offset });
      return opened;
    }
    const rotated = await findRotated(this.#c.file, saved.inode);
    if (rotated) {
      log.info('k8s audit log rotated while stopped; finishing the old file first', { file: rotated, offset: saved.offset });
      const old = await this.#openAt(rotated, saved.offset);
      if (old) {
        await this.#drain(old, true, signal);
        await old.handle.close();
      }
    } else {
      this.#d.metrics.recordError(this.#d.publisher.collector, 'receiving');
      log.error('k8s audit log rotated while stopped and the old file is gone; its unread tail is lost', {
        inode: saved.inode,
        offset: saved.offset,
      });
    }
    return null;
  }

  /**
   * Reads and publishes complete lines from `f.offset` to the end of the file. `final`: the file
   * will not grow (rotated away), so a last line without a newline is published as is.
   */
  async #drain(f: Open, final: boolean, signal: AbortSignal): Promise<void> {
    while (!signal.aborted || final) {
      let want = this.#buffer.length;
      let got: number;
      let end: number;
      for (;;) {
        if (this.#buffer.length < want) this.#buffer = Buffer.allocUnsafe(want);
        ({ bytesRead: got } = await f.handle.read(this.#buffer, 0, want, f.offset));
        end = this.#buffer.lastIndexOf(10, got - 1);
        // A line longer than the buffer: grow (bounded) until it is whole.
        if (end !== -1 || got < want || want >= this.#c.maxLineBytes) break;
        want = Math.min(want * 2, this.#c.maxLineBytes);
      }
      if (got === 0) return;
      let take = end === -1 ? 0 : end + 1;
      if (take === 0 && (final || got >= this.#c.maxLineBytes)) take = got; // dead-lettered if not valid JSON
      if (take === 0) return; // a partial last line: wait for its newline
      const start = f.offset;
      const chunk = Buffer.from(this.#buffer.subarray(0, take));
      try {
        const results = locateLines(this.#d.publisher.normalizeBuffer(chunk, `${f.path}@${start}`), chunk, f.path, start);
        const summary = await this.#d.publisher.publishUnit(results, () =>
          this.#d.checkpoint.save({ inode: f.inode, offset: start + take }),
        );
        f.offset = start + take;
        this.#failures = 0;
        this.#d.onChunk?.({ inode: f.inode, offset: f.offset, events: summary.events });
      } catch (err) {
        // Only transient failures get here (broker or disk down): poison input is dead-lettered by the
        // publisher. The chunk is read again with back-off, never skipped.
        const retryInMs = Math.min(this.#c.pollIntervalMs * 4 * 2 ** this.#failures++, 60_000);
        this.#d.metrics.recordError(this.#d.publisher.collector, 'sending');
        this.#d.logger.error('k8s audit log chunk not delivered; will read it again', {
          error: errorMessage(err),
          offset: start,
          retryInMs,
        });
        await sleep(retryInMs, signal);
        if (final && signal.aborted) return;
      }
      if (got < want && take === got) return;
    }
  }
}
