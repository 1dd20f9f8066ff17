import {
  chmodSync,
  closeSync,
  createWriteStream,
  existsSync,
  fchmodSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  type WriteStream,
} from 'node:fs';
import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | null = null;

/** The installed glasswatch package folder, found from this file whether run from dist/ or from source. */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'glasswatch') {
      cached = dir;
      return dir;
    }
    dir = dirname(dir);
  }
  throw new Error('glasswatch package.json not found above the installed files');
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/*
 * Private files. The store, collector checkpoints, alert and dead-letter files hold audit data
 * (principal names, source IPs, raw events, incident verdicts): they are created 0600 in 0700
 * folders whatever the umask, and a file or folder of ours found more open is tightened.
 */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/**
 * `dir` and its missing parents created 0700. `own`: a folder that is glasswatch's alone (the
 * store, a checkpoint folder), tightened to 0700 if it exists. Parents that existed before (a
 * home folder, /var/lib) are never touched.
 */
export function ensurePrivateDirSync(dir: string, own = false): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (own) tightenSync(dir, PRIVATE_DIR_MODE);
}

export async function ensurePrivateDir(dir: string, own = false): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (own) tightenSync(dir, PRIVATE_DIR_MODE);
}

function tightenSync(path: string, mode: number): void {
  try {
    if ((statSync(path).mode & 0o777) !== mode) chmodSync(path, mode);
  } catch (err) {
    // Not ours to change (EPERM: another owner): it keeps its mode, the files inside are still 0600.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
  }
}

/** Opens `path` for writing (`w` truncates, `a` appends) as a 0600 file; an existing file is tightened to 0600. */
export async function openPrivateFile(path: string, flags: 'w' | 'a'): Promise<FileHandle> {
  await ensurePrivateDir(dirname(path));
  const handle = await open(path, flags, PRIVATE_FILE_MODE);
  try {
    await handle.chmod(PRIVATE_FILE_MODE);
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle;
}

/** A write stream over a 0600 file (see openPrivateFile), opened synchronously so errors surface at once. */
export function privateWriteStream(path: string, flags: 'w' | 'a' = 'w'): WriteStream {
  ensurePrivateDirSync(dirname(path));
  const fd = openSync(path, flags, PRIVATE_FILE_MODE);
  try {
    fchmodSync(fd, PRIVATE_FILE_MODE);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return createWriteStream(path, { fd });
}

/** Writes a whole 0600 file. */
export async function writePrivateFile(path: string, text: string): Promise<void> {
  const handle = await openPrivateFile(path, 'w');
  try {
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
}

/** Every folder 0700 and file 0600 under `dir` (symlinks not followed): a store created by an older version, or under a looser umask. */
export function tightenTreeSync(dir: string): void {
  tightenSync(dir, PRIVATE_DIR_MODE);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) tightenTreeSync(path);
    else if (entry.isFile()) tightenSync(path, PRIVATE_FILE_MODE);
  }
}

/**
 * chDB creates its files in-process with the process umask, lazily (tables, parts, merges):
 * while an embedded store is open the umask also masks group and other bits, so everything it
 * writes is owner-only; released when the last embedded store closes. Worker threads cannot
 * change the umask: there the 0700 store folder alone keeps other users out.
 */
let umaskHolds = 0;
let umaskBefore: number | null = null;

export function holdPrivateUmask(): void {
  if (umaskHolds++ > 0) return;
  try {
    const before = process.umask(0o077);
    process.umask(before | 0o077);
    umaskBefore = before;
  } catch {
    umaskBefore = null;
  }
}

export function releasePrivateUmask(): void {
  if (umaskHolds === 0 || --umaskHolds > 0) return;
  if (umaskBefore !== null) process.umask(umaskBefore);
  umaskBefore = null;
}

/** The embedded store's data folder, before chDB opens it: created 0700, and tightened throughout if an older version left it open. */
export function ensurePrivateStoreDirSync(path: string): void {
  const loose = existsSync(path) && (statSync(path).mode & 0o077) !== 0;
  ensurePrivateDirSync(path, true);
  if (loose) tightenTreeSync(path);
}
