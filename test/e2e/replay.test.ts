import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
import { migrate, openStore } from '../../core/store/index.js';

const demo = new URL('../../demo/data', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gw-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('glasswatch replay over the bundled demo incident', () => {
  it('normalizes every shape, dead-letters bad records with file and line, and exits 3', async () => {
    const out = join(dir, 'events.jsonl');
    const dead = join(dir, 'dead.jsonl');
    const summaryFile = join(dir, 'summary.json');
    const code = await main(['replay', demo, '--out', out, '--dead-letters', dead, '--summary-json', summaryFile, '--quiet']);
    expect(code).toBe(3);
    const events = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events).toHaveLength(471);
    // event-time order
    const times = events.map((e) => e.time);
    expect([...times].sort()).toEqual(times);
    const summary = JSON.parse(readFileSync(summaryFile, 'utf8'));
    expect(summary.events).toEqual({ cloudtrail: 248, okta: 85, k8s: 138 });
    expect(summary.skipped).toEqual({ 'cloudtrail-digest': 1 });
    const letters = readFileSync(dead, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(letters).toHaveLength(2);
    expect(letters.find((d) => d.file.endsWith('kube-apiserver-audit.log'))).toMatchObject({
      line: 58,
      reason: expect.stringMatching(/malformed JSON/),
    });
    expect(letters.find((d) => d.file.endsWith('system-log-2026-11-20.json'))).toMatchObject({
      index: 40,
      reason: expect.stringMatching(/published is missing/),
    });
    // The root ConsoleLogin from the gzipped S3 object keeps its original record.
    const login = events.find((e) => e.action === 'signin.amazonaws.com:ConsoleLogin' && e.outcome === 'success');
    expect(login).toMatchObject({ source: 'cloudtrail', actor: { type: 'Root' }, sourceIp: '203.0.113.77', account: '111122223333' });
    expect(login.raw.responseElements).toEqual({ ConsoleLogin: 'Success' });
    const k8s = events.find((e) => e.source === 'k8s');
    expect(k8s.cluster).toBeNull();
  });

  it('--store persists events and dead letters; a second replay adds no duplicates', async () => {
    const storePath = join(dir, 'store');
    expect(await main(['replay', demo, '--store', storePath, '--out', 'none', '--quiet'])).toBe(3);
    expect(await main(['replay', demo, '--store', storePath, '--out', 'none', '--quiet'])).toBe(3);
    const store = openStore({ kind: 'chdb', path: storePath });
    try {
      await migrate(store);
      const q = async (sql: string) =>
        (await (await store.client.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, unknown>>())[0]!;
      expect(Number((await q('SELECT count() AS n FROM (SELECT id FROM events LIMIT 1 BY source, id)')).n)).toBe(471);
      expect(Number((await q('SELECT count() AS n FROM (SELECT id FROM dead_letters LIMIT 1 BY id)')).n)).toBe(2);
    } finally {
      await store.close();
    }
  });

  it('names a missing input and exits 1', async () => {
    expect(await main(['replay', join(dir, 'nope'), '--quiet'])).toBe(1);
  });
});
