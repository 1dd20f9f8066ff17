/**
 * Report speed work (issue 16) must not change a row, at a size where the tuned queries' paths
 * matter: the benchmark's synthetic store (test/perf/reports-fixture.ts) at 200,000 events, 1,000
 * sessions and 10,000 alerts, each report over a month and over the whole quarter. The digests below
 * cover every row and total; they were computed by the code of commit 88f80b5, before the queries
 * were tuned (ticket coverage in two passes, rotation's own uses query and in-order history start,
 * the verdict filtered before the session joins), on this same generated store. The two activity
 * digests were computed again by the code of commit 07d5950, before the second tuning, when the
 * fixture's sessions gained their events' handle (4,200 and 12,613 actions). report-rows.test.ts
 * pins the full rows at 30,000 events.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { verifyDigest } from '../../reports/digest.js';
import { buildReport, rowsOf } from '../../reports/registry.js';
import { BASE, loadAuditStore } from '../perf/reports-fixture.js';

const DAY = 86_400_000;
const PERIODS = {
  month: { fromMs: BASE + 30 * DAY, toMs: BASE + 60 * DAY },
  quarter: { fromMs: BASE, toMs: BASE + 90 * DAY },
};
// A fixed "now": the periods stay inside retention, so no retention notice enters the content.
const NOW = Date.parse('2026-04-01T00:00:00Z');

const BEFORE_TUNING: Record<string, string> = {
  'month breakglass-activity': '7f0c6d847603af9c222d7dc8c9813234b04d13c725330213fe2be8b0c2b0b9f9',
  'month unauthorized-use': 'b67b718cac8f514a43f75a5e4af485c3441c618ec91f96749c955e70753499d3',
  'month ticket-coverage': '6bc4d9cde9ea7ac7d7406e0e1f7a9578689a19f4e385ecfa85cee8f766194579',
  'month rotation-compliance': '55a2eba3fb3abfa063d5f87981a805042f9c28e1a56fe7355a5d7ce0bbeaa1d4',
  'quarter breakglass-activity': '39b05a4a3b85d567f9faeab19f03563ed8a32c27573ffad85303cedbd7b56c6e',
  'quarter unauthorized-use': 'c86ba50d8600b74b5d96b4e61159efb6829b396768ea318fbc524b243f804c5d',
  'quarter ticket-coverage': '17574e5e67010e5c69bd3dd78802ea23a4040d429255cbe512e92eeb01be71f8',
  'quarter rotation-compliance': 'ec3211e7bae355cff65a68216edfd0c56e1bd5782d189b7a7677ad1eab7c57b0',
};

let dir: string;
let store: Store;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-report-tuning-'));
  store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrate(store);
  await loadAuditStore(store, 200_000);
}, 180_000);

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('tuned report queries give the rows the untuned ones gave', () => {
  it.each(Object.keys(BEFORE_TUNING))('%s', async (key) => {
    const [label, name] = key.split(' ') as [keyof typeof PERIODS, string];
    const report = await buildReport(name, { store, period: PERIODS[label], nowMs: NOW });
    expect(verifyDigest(report)).toBe(true);
    // Rows, so a changed digest is never an empty report that happens to be consistent.
    expect(rowsOf(report).length).toBeGreaterThan(0);
    expect(report.digest).toBe(BEFORE_TUNING[key]);
  });
});
