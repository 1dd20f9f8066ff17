import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { lines, runCli } from '../support/cli.js';

/**
 * Issue 10, item 5: every mistake that would weaken detection or fake a clean result is an
 * error — exit 2, one clear message, the next step — instead of a quiet success.
 */
const demo = new URL('../../demo', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gw-fail-closed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** One message line, a `next:` line, no stack trace. */
function expectOneClearError(stderr: string, pattern: RegExp) {
  const out = lines(stderr);
  expect(out[0]).toMatch(pattern);
  expect(out.some((l) => l.includes('next:'))).toBe(true);
  expect(out.length).toBeLessThanOrEqual(3);
  expect(stderr).not.toMatch(/^\s+at /m);
}

function config(name: string, doc: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, stringify(doc));
  return file;
}

describe('fail closed', () => {
  it('a detector run with zero identities is an error, not an all-clear', async () => {
    const file = config('no-identities.yml', { bus: { kind: 'memory' } });
    const r = await runCli([
      'replay',
      join(demo, 'data'),
      '--config',
      file,
      '--tickets',
      join(demo, 'tickets.jsonl'),
      '--alerts-out',
      join(dir, 'a.jsonl'),
      '--out',
      'none',
      '--quiet',
    ]);
    expect(r.code).toBe(2);
    expectOneClearError(r.stderr, /no break-glass identities/);
  });

  it('an identities list that is empty is the same error', async () => {
    const file = config('empty-identities.yml', { identities: [] });
    const r = await runCli(['replay', join(demo, 'data'), '--config', file, '--out', 'none', '--quiet']);
    expect(r.code).toBe(2);
    expectOneClearError(r.stderr, /no break-glass identities/);
  });

  it('glasswatch start with nothing to run says so (it exited 13 without a word)', async () => {
    const file = config('nothing.yml', {
      store: { path: join(dir, 'start-store') },
      bus: { kind: 'memory' },
      identities: [{ id: 'root', source: 'cloudtrail', match: { 'userIdentity.type': 'Root' } }],
    });
    const r = await runCli(['start', '--config', file]);
    expect(r.code).toBe(2);
    expectOneClearError(r.stderr, /nothing to run/);
  });

  it('glasswatch start with collectors but no identities is an error before anything starts', async () => {
    const port = await closedPort();
    const file = config('start-no-identities.yml', {
      store: { path: join(dir, 'start-store-2') },
      bus: { kind: 'memory' },
      collectors: {
        checkpointDir: join(dir, 'cp'),
        k8s: { receiver: { host: '127.0.0.1', port, path: '/audit', token: 't', insecureHttp: true } },
      },
    });
    const r = await runCli(['start', '--config', file]);
    expect(r.code).toBe(2);
    expectOneClearError(r.stderr, /no break-glass identities/);
  });

  for (const [name, args] of [
    ['report run', ['report', 'run', 'breakglass-activity', '--from', '2026-11-20', '--to', '2026-11-21']],
    ['hunt', ['hunt', 'rules/breakglass', '--from', '2026-11-20T00:00:00Z', '--to', '2026-11-21T00:00:00Z']],
    ['store status', ['store', 'status']],
  ] as const) {
    it(`${name} on a store that does not exist errors and does not create it`, async () => {
      const missing = join(dir, `missing-${name.replace(' ', '-')}`);
      const r = await runCli([...args, '--store', missing]);
      expect(r.code).toBe(2);
      expectOneClearError(r.stderr, /no glasswatch store at/);
      expect(r.stdout).toBe('');
      expect(existsSync(missing)).toBe(false);
    });
  }

  it('a read command on an existing folder that holds no store is the same error', async () => {
    const empty = join(dir, 'empty-folder');
    mkdirSync(empty);
    const r = await runCli(['report', 'run', 'breakglass-activity', '--from', '2026-11-20', '--to', '2026-11-21', '--store', empty]);
    expect(r.code).toBe(2);
    expectOneClearError(r.stderr, /no glasswatch store at/);
  });

  it('an unreachable ClickHouse server is one line and the next step, not a client dump', async () => {
    const port = await closedPort();
    const file = config('unreachable.yml', { store: { url: `http://127.0.0.1:${port}` } });
    for (const args of [
      ['report', 'run', 'breakglass-activity', '--from', '2026-11-20', '--to', '2026-11-21', '--config', file],
      ['store', 'migrate', '--config', file],
    ]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expectOneClearError(r.stderr, /cannot reach the ClickHouse server at http:\/\/127\.0\.0\.1:\d+.*ECONNREFUSED/);
      expect(r.stderr).not.toContain('@clickhouse/client');
    }
  });
});
