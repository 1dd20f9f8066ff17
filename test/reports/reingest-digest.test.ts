import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoCommand } from '../../cli/demo.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { parsePeriod } from '../../reports/period.js';
import { buildReport } from '../../reports/registry.js';
import { type AnyReport, REPORT_NAMES } from '../../reports/types.js';
import { type Fixture, PERIOD, replayFixture, writeFixture } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-reingest-'));
let fixture: Fixture;
const period = parsePeriod(PERIOD.from, PERIOD.to);

async function buildAll(optimize: boolean): Promise<Record<string, AnyReport>> {
  const store: Store = openStore({ kind: 'chdb', path: fixture.store });
  try {
    await migrate(store);
    if (optimize)
      for (const t of ['sessions', 'session_detections', 'alerts', 'revocations', 'tickets', 'events'])
        await store.client.command({ query: `OPTIMIZE TABLE ${t} FINAL` });
    const out: Record<string, AnyReport> = {};
    for (const name of REPORT_NAMES) out[name] = await buildReport(name, { store, period });
    return out;
  } finally {
    await store.close();
  }
}

/**
 * A live detector that ingests the same events again a day later stores the same session versions
 * with that day's detection time (replay's clock differs by milliseconds only, which a test cannot
 * rely on): the rows as they are, detected an hour later.
 */
async function writeSessionsAgainLater(): Promise<void> {
  const store: Store = openStore({ kind: 'chdb', path: fixture.store });
  try {
    await store.client.command({
      query: `INSERT INTO sessions SELECT * REPLACE (detected_at + INTERVAL 1 HOUR AS detected_at) FROM sessions WHERE detected_at IS NOT NULL`,
    });
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  fixture = writeFixture(dir);
  await replayFixture(fixture);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('re-ingest', () => {
  it('leaves every report digest unchanged, before and after the engine merges the duplicates', async () => {
    const first = await buildAll(false);
    await new Promise((r) => setTimeout(r, 20));
    await replayFixture(fixture);
    await writeSessionsAgainLater();
    const again = await buildAll(false);
    const merged = await buildAll(true);
    for (const name of REPORT_NAMES) {
      expect(again[name], name).toEqual(first[name]);
      expect(merged[name], name).toEqual(first[name]);
    }
  });
});

describe('re-ingest of the demo', () => {
  it('glasswatch demo run twice into one store (revocations against the stand-ins) gives every report the same digest', async () => {
    const store = join(dir, 'demo-store');
    const period = { fromMs: Date.parse('2026-11-20T00:00:00Z'), toMs: Date.parse('2026-11-21T00:00:00Z') };
    const digests = async () => {
      const s = openStore({ kind: 'chdb', path: store });
      try {
        await migrate(s);
        const out: Record<string, string> = {};
        for (const name of REPORT_NAMES) out[name] = (await buildReport(name, { store: s, period })).digest;
        return out;
      } finally {
        await s.close();
      }
    };
    expect(await demoCommand(['--store', store])).toBe(0);
    const first = await digests();
    expect(await demoCommand(['--store', store])).toBe(0);
    expect(await digests()).toEqual(first);
  }, 120_000);
});
