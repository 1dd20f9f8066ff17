/**
 * Our break-glass rule pack retro-hunted in SQL over every fixture event of the pack (positives and
 * negatives of all rules, all three sources): each rule returns exactly what the evaluator matches,
 * including the rules decided on the field columns alone (presence tests on the columns that mark
 * an absent field).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { isSource } from '../../core/event.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { recordSource } from '../../ingest/index.js';
import { loadRules, SigmaEngine } from '../../rules/engine/index.js';
import { compileRuleSql } from '../../rules/sql/index.js';

const packDir = new URL('../../rules/breakglass', import.meta.url).pathname;
const fixtureDir = new URL('../fixtures/breakglass', import.meta.url).pathname;
const loaded = loadRules([packDir]);
const engine = new SigmaEngine(loaded);

const events = readdirSync(fixtureDir)
  .filter((f) => f.endsWith('.yml'))
  .flatMap((file) => {
    const fixture = parse(readFileSync(join(fixtureDir, file), 'utf8')) as { positive: unknown[]; negative: unknown[] };
    return [
      ...fixture.positive.map((raw, i) => ({ id: `${file}#p${i}`, raw })),
      ...fixture.negative.map((raw, i) => ({ id: `${file}#n${i}`, raw })),
    ];
  })
  .map((e) => {
    const source = recordSource(e.raw as Record<string, unknown>);
    if (!isSource(source)) throw new Error(`fixture event ${e.id} of no known source`);
    return { ...e, source, raw: e.raw as Record<string, unknown> };
  });

let dir: string;
let store: Store;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-pack-hunt-'));
  store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrate(store, { retentionDays: 20_000 });
  await store.client.insert({
    table: 'events',
    values: events.map((e) => ({ source: e.source, id: e.id, time: '2026-03-01T10:00:00.000Z', raw: JSON.stringify(e.raw) })),
    format: 'JSONEachRow',
    clickhouse_settings: { date_time_input_format: 'best_effort' },
  });
});

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the break-glass pack hunted in SQL', () => {
  it('has fixture events of every source', () => {
    expect(new Set(events.map((e) => e.source))).toEqual(new Set(['cloudtrail', 'okta', 'k8s']));
  });

  it.each(loaded.rules.map((r) => [r.title, r] as const))('%s: the hunt returns exactly what the evaluator matches', async (_t, rule) => {
    const expected = events
      .filter((e) => engine.match(e.source, e.raw).some((m) => m.rule === rule.key))
      .map((e) => e.id)
      .sort();
    const { sql, params } = compileRuleSql(rule);
    const result = await store.client.query({ query: sql, query_params: params, format: 'JSONEachRow' });
    const got = (await result.json<{ id: string }>()).map((r) => r.id).sort();
    expect(got).toEqual(expected);
    expect(expected.length).toBeGreaterThan(0);
  });
});
