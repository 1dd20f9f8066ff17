/**
 * A real S3/SQS-compatible server for the collector tests and bench: moto in server mode.
 *
 * moto lives in a project-local virtualenv (`test/.venv/`, git-ignored), created with
 * `pip install 'moto[server]'` on first use, so nothing is installed system-wide and the version
 * is whatever PyPI serves at that moment (set MOTO_PIP_SPEC=moto[server]==5.x to pin it).
 * Each `startMoto()` runs its own `moto_server` on a free loopback port; `stop()` ends it and
 * an `exit` hook makes sure an aborted run never leaves one behind on the shared cores.
 *
 * Environment: PYTHON (default python3), MOTO_VENV (default test/.venv), MOTO_PIP_SPEC.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TEST_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface MotoServer {
  /** `http://127.0.0.1:<port>`: the `endpoint` of every AWS SDK client talking to it. */
  readonly endpoint: string;
  readonly port: number;
  /** Ends the server (SIGTERM, then SIGKILL after 3 s). Idempotent. */
  stop(): Promise<void>;
}

export interface StartMotoOptions {
  /** Readiness deadline. @default 60_000 (a cold moto import takes several seconds on 2 shared cores) */
  timeoutMs?: number;
  /** Progress lines (install, start). @default stderr */
  say?: (line: string) => void;
}

function venvDir(): string {
  return process.env.MOTO_VENV ?? join(TEST_DIR, '.venv');
}

/** Where `moto_server` is, installing it first when missing. Throws an actionable error. */
export function ensureMoto(say: (line: string) => void = defaultSay): string {
  const venv = venvDir();
  const bin = join(venv, 'bin', 'moto_server');
  if (existsSync(bin)) return bin;

  const python = process.env.PYTHON ?? 'python3';
  const version = spawnSync(python, ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new Error(
      `moto (the S3/SQS test server) needs Python 3, but "${python} --version" failed: ${version.error?.message ?? version.stderr}. ` +
        'Install python3 and python3-venv (Debian/Ubuntu: apt-get install python3 python3-venv), or set PYTHON=/path/to/python3.',
    );
  }
  // Two test processes may start at once: a lock directory makes the second wait for the first install.
  const lock = `${venv}.lock`;
  mkdirSync(dirname(venv), { recursive: true });
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (existsSync(bin)) return bin;
      // A lock older than the deadline was left by a killed install.
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 10 * 60_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for another moto install (lock ${lock})`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
  try {
    if (!existsSync(join(venv, 'bin', 'pip'))) {
      say(`creating ${venv} (${version.stdout.trim() || version.stderr.trim()}) ...`);
      const made = spawnSync(python, ['-m', 'venv', venv], { encoding: 'utf8' });
      if (made.status !== 0) {
        rmSync(venv, { recursive: true, force: true });
        throw new Error(
          `"${python} -m venv ${venv}" failed: ${made.stderr.trim() || made.error?.message}. ` +
            'On Debian/Ubuntu install python3-venv (apt-get install python3-venv).',
        );
      }
    }
    const spec = process.env.MOTO_PIP_SPEC ?? 'moto[server]';
    say(`pip install '${spec}' into ${venv} (first run only) ...`);
    const pip = spawnSync(join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', spec], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (pip.status !== 0 || !existsSync(bin)) {
      throw new Error(
        `pip install '${spec}' failed (exit ${pip.status}): ${pip.stderr.trim().slice(-2000)}. Is PyPI reachable (proxy, PIP_INDEX_URL)?`,
      );
    }
    return bin;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function defaultSay(line: string): void {
  process.stderr.write(`[moto] ${line}\n`);
}

/** A free loopback port. The server binds it moments later; a collision shows as a start failure. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Starts `moto_server` on a free port and resolves once it answers HTTP. */
export async function startMoto(options: StartMotoOptions = {}): Promise<MotoServer> {
  const say = options.say ?? defaultSay;
  const bin = ensureMoto(say);
  const port = await freePort();
  const child = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  let output = '';
  child.stderr?.on('data', (d: Buffer) => {
    // Only the tail matters for a start failure; werkzeug logs every request here.
    output = (output + d.toString()).slice(-4000);
  });
  let exited: number | null | undefined;
  const exitedPromise = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = code;
      running.delete(child);
      resolve();
    }),
  );

  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (exited !== undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exitedPromise;
    clearTimeout(timer);
  };

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (exited !== undefined) throw new Error(`moto_server exited (code ${exited}) before it was ready:\n${output.trim()}`);
    try {
      // The moto dashboard API answers as soon as the server is up, whatever services exist.
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST', signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`moto_server did not answer on ${endpoint} within ${options.timeoutMs ?? 60_000} ms:\n${output.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { endpoint, port, stop };
}
