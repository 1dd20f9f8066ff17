import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayCommand } from '../../cli/replay.js';
import { deadLetterRow, insertRows, migrate, openStore } from '../../core/store/index.js';
import { type Alert, alertId } from '../../detectors/alerts/alert.js';
import { JsonLinesAlertOutput } from '../../detectors/alerts/outputs.js';
import { FileCheckpointStore } from '../../ingest/collector/checkpoint.js';

const fixtures = new URL('../fixtures/ingest/', import.meta.url).pathname;
const repo = new URL('../../', import.meta.url).pathname;
const cli = join(repo, 'test/support/run-cli.ts');
const root = mkdtempSync(join(tmpdir(), 'gw-modes-'));
const mode = (path: string) => statSync(path).mode & 0o777;
let umaskBefore = 0;

/** Every file and folder under `dir` (symlinks not followed: chDB links tables into data/). */
function tree(dir: string): { path: string; mode: number }[] {
  const out: { path: string; mode: number }[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    out.push({ path, mode: lstatSync(path).mode & 0o777 });
    if (entry.isDirectory()) out.push(...tree(path));
  }
  return out;
}

const alert: Alert = {
  id: alertId('breakglass.unauthorized', 'bgs-modes'),
  type: 'breakglass.unauthorized',
  severity: 'critical',
  identity: 'aws-root',
  source: 'cloudtrail',
  eventIds: ['evt-1'],
  ticketId: null,
  reason: 'no_ticket',
  category: null,
  ruleId: null,
  ruleTitle: null,
  ruleAuthor: null,
  sessionId: 'bgs-modes',
  principal: 'Root',
  sourceIp: '203.0.113.77',
  time: '2026-11-20T22:41:52.000Z',
  detectedAt: '2026-11-20T22:41:52.120Z',
  summary: 'UNAUTHORIZED use of break-glass identity aws-root',
};

beforeAll(() => {
  // The usual default: without the fixes, everything below would be created 0644 / 0755.
  umaskBefore = process.umask(0o022);
});
afterAll(() => {
  process.umask(umaskBefore);
});

describe('files holding audit data are private: 0600 files in 0700 folders', () => {
  it('the embedded store: its folder (and the parents it creates) 0700, nothing inside readable by others', async () => {
    const path = join(root, 'new', 'deep', 'store');
    const store = openStore({ kind: 'chdb', path });
    try {
      await migrate(store);
      await insertRows(store, 'dead_letters', [
        deadLetterRow({ source: 'okta', stage: 'processing', reason: 'test', file: 'f', line: 1, index: 0, text: '{}' }),
      ]);
      expect(mode(path)).toBe(0o700);
      expect(mode(join(root, 'new'))).toBe(0o700);
      expect(mode(join(root, 'new', 'deep'))).toBe(0o700);
      const entries = tree(path);
      expect(entries.length).toBeGreaterThan(5);
      for (const e of entries) expect(e.mode & 0o077, `${e.path} ${e.mode.toString(8)}`).toBe(0);
    } finally {
      await store.close();
    }
    // The process umask is the caller's again once the store is closed.
    const probe = join(root, 'after-close.txt');
    writeFileSync(probe, '');
    expect(mode(probe)).toBe(0o644);
  });

  it('a store made world-readable by an older version is tightened when opened (glasswatch replay --store)', () => {
    // chDB opens one data folder per process: this one is opened by the CLI in a child process.
    const path = join(root, 'old-store');
    mkdirSync(join(path, 'user_files'), { recursive: true, mode: 0o755 });
    chmodSync(path, 0o755);
    writeFileSync(join(path, 'user_files', 'legacy.csv'), 'a,b\n', { mode: 0o644 });
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', cli, 'replay', join(fixtures, 'okta', 'systemlog-page.json'), '--store', path, '--out', 'none', '--quiet'],
      { cwd: repo, encoding: 'utf8', timeout: 120_000 },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(mode(path)).toBe(0o700);
    expect(mode(join(path, 'user_files'))).toBe(0o700);
    expect(mode(join(path, 'user_files', 'legacy.csv'))).toBe(0o600);
    for (const e of tree(path)) expect(e.mode & 0o077, `${e.path} ${e.mode.toString(8)}`).toBe(0);
  }, 180_000);

  it('checkpoints (collector state): 0600 in a 0700 folder, an existing open state folder tightened', async () => {
    const fresh = join(root, 'state', 'collectors');
    const cp = new FileCheckpointStore<{ next: string }>(fresh, 'okta');
    await cp.save({ next: 'https://acme.okta.com/api/v1/logs?after=x' });
    expect(mode(cp.file)).toBe(0o600);
    expect(mode(fresh)).toBe(0o700);
    expect(mode(join(root, 'state'))).toBe(0o700);
    const open = join(root, 'open-state');
    mkdirSync(open, { mode: 0o755 });
    chmodSync(open, 0o755);
    await new FileCheckpointStore<number>(open, 'tailer').save(1);
    expect(mode(open)).toBe(0o700);
  });

  it('alert JSON lines: a new file 0600 in a new 0700 folder, an existing world-readable file tightened', async () => {
    const file = join(root, 'alerts', 'out', 'alerts.jsonl');
    await new JsonLinesAlertOutput(file).send(alert);
    expect(mode(file)).toBe(0o600);
    expect(mode(join(root, 'alerts'))).toBe(0o700);
    const old = join(root, 'old-alerts.jsonl');
    writeFileSync(old, '', { mode: 0o644 });
    await new JsonLinesAlertOutput(old).send(alert);
    expect(mode(old)).toBe(0o600);
  });

  it('glasswatch replay: --alerts-out, --dead-letters and --out files are 0600', async () => {
    const dir = join(root, 'replay');
    mkdirSync(dir);
    const alerts = join(dir, 'alerts.jsonl');
    const dead = join(dir, 'dead.jsonl');
    const out = join(dir, 'events.jsonl');
    writeFileSync(dead, '', { mode: 0o644 });
    const config = join(dir, 'glasswatch.yml');
    writeFileSync(
      config,
      'identities:\n  - id: okta-emergency-admin\n    source: okta\n    match: { actor.alternateId: emergency-admin@example.com }\n    revocation: { mode: "off" }\n',
    );
    const code = await replayCommand([
      '--config',
      config,
      join(fixtures, 'okta', 'systemlog-page.json'),
      join(fixtures, 'mixed', 'truncated-document.json'),
      '--alerts-out',
      alerts,
      '--dead-letters',
      dead,
      '--out',
      out,
      '--quiet',
    ]);
    expect(code).toBe(3);
    expect(statSync(dead).size).toBeGreaterThan(0);
    expect(statSync(out).size).toBeGreaterThan(0);
    expect(mode(alerts)).toBe(0o600);
    expect(mode(dead)).toBe(0o600);
    expect(mode(out)).toBe(0o600);
  });
});
