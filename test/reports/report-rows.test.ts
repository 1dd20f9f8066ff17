/**
 * Report speed work must not change a row: the four reports built on the benchmark's synthetic
 * store (test/perf/reports-fixture.ts at 30,000 events, 150 sessions) equal, digest included, the
 * reports the queries gave before they were tuned (fixtures/report-rows-30k.json, written by the
 * code of commit 618a410 on the same store). Re-written once where the content changed on purpose
 * (the auditor-grade content of issue 11): a self-approval is a finding per use (session, start and
 * end, no use count), a credential with no rotation in a history shorter than maxAgeDays is
 * `no_history` (with historySince and the date it would fall due) instead of `overdue`, and rows
 * gained fields (actions, ticket timeline, attempts, earlyMs). Every field the old rows had is
 * otherwise equal. Re-written again for issue 15: unauthorized-use revocation records gained the
 * verification fields (all null in this store) and its totals `verified` and `ineffective` (0).
 * Re-written once more, by the untuned code, when the fixture's sessions gained keys (issue 16): the
 * activity report's actions had been empty, so the query that finds them was neither timed nor pinned.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { buildReport } from '../../reports/registry.js';
import { REPORT_NAMES } from '../../reports/types.js';
import { BASE, loadAuditStore } from '../perf/reports-fixture.js';

const expected = JSON.parse(
  readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'report-rows-30k.json'), 'utf8'),
) as Record<string, unknown>;

let dir: string;
let store: Store;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-report-rows-'));
  store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrate(store);
  await loadAuditStore(store, 30_000);
}, 120_000);

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('report rows are unchanged by query tuning', () => {
  it('the fixture covers every report with rows', () => {
    expect(Object.keys(expected).sort()).toEqual([...REPORT_NAMES].sort());
  });

  it.each([...REPORT_NAMES])('%s', async (name) => {
    const period = { fromMs: BASE + 30 * 86_400_000, toMs: BASE + 60 * 86_400_000 };
    const report = JSON.parse(JSON.stringify(await buildReport(name, { store, period })));
    expect(report).toEqual(expected[name]);
  });
});
