/**
 * Checkpoints: where a collector resumes after a restart (Okta `next` URL, tailer inode + offset,
 * CloudTrail S3 key). A collector saves one only after the bus acknowledged every record read
 * before it (see `EventPublisher.publishUnit`), so a crash re-reads at most one unacknowledged unit
 * and never skips one.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GlasswatchError } from '../../core/errors.js';
import { ensurePrivateDir, PRIVATE_FILE_MODE } from '../../core/paths.js';

/** Pluggable persistence of one collector's position. `T` must survive JSON round-tripping. */
export interface CheckpointStore<T> {
  /** The last saved value, or null before the first save. */
  load(): Promise<T | null>;
  save(value: T): Promise<void>;
}

/**
 * One JSON file per collector. A save writes a temp file in the same directory, fsyncs it and
 * renames it over the old one: rename is atomic on POSIX, so a crash leaves the old or the new
 * checkpoint, never a torn one.
 */
export class FileCheckpointStore<T> implements CheckpointStore<T> {
  readonly file: string;
  #dirReady = false;

  /** `name` becomes the file name (`<dir>/<name>.json`); keep it stable across versions. */
  constructor(dir: string, name: string) {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) {
      throw new GlasswatchError('BG_INGEST_CHECKPOINT_NAME', `checkpoint name "${name}" may only use letters, digits, '.', '_' and '-'`, {
        stage: 'config',
      });
    }
    this.file = join(dir, `${name}.json`);
  }

  async load(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new GlasswatchError('BG_INGEST_CHECKPOINT_READ', `cannot read checkpoint ${this.file}: ${(err as Error).message}`, {
        stage: 'receiving',
        cause: err,
      });
    }
    try {
      return (JSON.parse(text) as { value: T }).value;
    } catch (err) {
      // A corrupt checkpoint must stop the collector: silently starting over would re-send or skip data.
      throw new GlasswatchError('BG_INGEST_CHECKPOINT_CORRUPT', `checkpoint ${this.file} is not valid JSON: ${(err as Error).message}`, {
        stage: 'receiving',
        cause: err,
        hint: 'inspect the file; delete it to restart the collector from its configured start position',
      });
    }
  }

  async save(value: T): Promise<void> {
    // Checkpoints name S3 keys, log files and Okta query URLs: 0600 files in a 0700 state folder.
    if (!this.#dirReady) {
      await ensurePrivateDir(dirname(this.file), true);
      this.#dirReady = true;
    }
    const tmp = `${this.file}.${randomBytes(4).toString('hex')}.tmp`;
    const handle = await open(tmp, 'wx', PRIVATE_FILE_MODE);
    try {
      await handle.writeFile(`${JSON.stringify({ savedAt: new Date().toISOString(), value })}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(tmp, this.file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}

/** In-memory store: tests, and embedded runs that accept re-reading from the start position. */
export class MemoryCheckpointStore<T> implements CheckpointStore<T> {
  value: T | null = null;
  saves = 0;

  constructor(initial: T | null = null) {
    this.value = initial;
  }

  async load(): Promise<T | null> {
    return this.value === null ? null : (structuredClone(this.value) as T);
  }

  async save(value: T): Promise<void> {
    this.value = structuredClone(value);
    this.saves++;
  }
}
