/**
 * Correlations compiled to SQL against the evaluator on chDB: the evaluator is fed the
 * stored events in the order the SQL documents (time, source, id) with the stored time,
 * and both must produce the same fires (group, time, figure, window, count).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { type CorrelationMatch, loadRules, SigmaEngine } from '../../rules/engine/index.js';
import { type CorrelationRow, compileCorrelationSql } from '../../rules/sql/index.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'sql');
const events = JSON.parse(readFileSync(join(fixtures, 'correlation-events.json'), 'utf8')) as {
  id: string;
  time: string;
  raw: Record<string, unknown>;
}[];
const loaded = loadRules([join(fixtures, 'correlations.yml')]);
const rulesById = new Map(loaded.rules.map((r) => [r.key, r]));

let dir: string;
let store: Store;

/** What the evaluator fires, keyed like the SQL rows. */
function evaluatorFires(): Map<string, string[]> {
  const engine = new SigmaEngine(loaded);
  const ordered = [...events].sort((a, b) => Date.parse(a.time) - Date.parse(b.time) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const out = new Map<string, string[]>(loaded.correlations.map((c) => [c.key, []]));
  for (const e of ordered) {
    for (const m of engine.evaluate('cloudtrail', e.raw, Date.parse(e.time)).correlations) out.get(m.correlation)?.push(describeMatch(m));
  }
  return out;
}

function describeMatch(m: CorrelationMatch): string {
  const corr = loaded.correlations.find((c) => c.key === m.correlation);
  const group = (corr?.groupBy ?? []).map((g) => JSON.stringify(m.group[g] ?? null));
  return JSON.stringify([group, m.time, m.windowStart, m.value, m.events]);
}

function describeRow(r: CorrelationRow): string {
  const group = r.group_values.map((t) => JSON.stringify(JSON.parse(t)));
  return JSON.stringify([group, Number(r.time_ms), Number(r.window_start_ms), r.value, Number(r.events)]);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-sqlc-'));
  store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrate(store, { retentionDays: 20_000 });
  await store.client.insert({
    table: 'events',
    values: events.map((e) => ({ source: 'cloudtrail', id: e.id, time: e.time, raw: JSON.stringify(e.raw) })),
    format: 'JSONEachRow',
    clickhouse_settings: { date_time_input_format: 'best_effort' },
  });
});

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('correlations compiled to SQL agree with the evaluator', () => {
  const expected = evaluatorFires();

  it('loads the fixture', () => {
    expect(loaded.rejected).toEqual([]);
    expect(loaded.correlations.length).toBe(8);
  });

  it.each(loaded.correlations.map((c) => [c.title, c] as const))('%s', async (_title, corr) => {
    const { sql, params } = compileCorrelationSql(corr, rulesById);
    const rows = await (await store.client.query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<CorrelationRow>();
    const want = expected.get(corr.key) ?? [];
    expect(rows.map(describeRow).sort()).toEqual([...want].sort());
    expect(want.length).toBeGreaterThan(0);
  });

  it('restricts the time range', async () => {
    const corr = loaded.correlations.find((c) => c.type === 'event_count' && c.groupBy.length === 1);
    if (!corr) throw new Error('fixture missing');
    const { sql, params } = compileCorrelationSql(corr, rulesById, { from: '2024-05-01T00:15:00Z' });
    const rows = await (await store.client.query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<CorrelationRow>();
    expect(rows).toEqual([]);
  });

  it('refuses a correlation over a correlation', () => {
    const corr = { ...(loaded.correlations[0] as (typeof loaded.correlations)[number]), rules: ['not-a-rule'] };
    expect(() => compileCorrelationSql(corr, rulesById)).toThrow(/chains are not compiled/);
  });
});
