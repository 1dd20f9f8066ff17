/**
 * The SQL back end against the evaluator on the real chDB engine: for every rule of
 * test/fixtures/sql/rules.yml (one per modifier, value kind and condition form) the
 * compiled SELECT returns exactly the stored events the evaluator matches.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { loadRules, SigmaEngine, type SourceName } from '../../rules/engine/index.js';
import { compileRuleSql, latestEventsSql, Params, QUERY_SETTINGS, re2Pattern } from '../../rules/sql/index.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'sql');
interface FixtureEvent {
  id: string;
  source?: SourceName;
  time: string;
  raw: Record<string, unknown>;
}
const events = JSON.parse(readFileSync(join(fixtures, 'events.json'), 'utf8')) as FixtureEvent[];
const loaded = loadRules([join(fixtures, 'rules.yml')]);
const engine = new SigmaEngine(loaded);

const row = (e: FixtureEvent) => ({ source: e.source ?? 'cloudtrail', id: e.id, time: e.time, raw: JSON.stringify(e.raw) });

let dir: string;
let store: Store;
let stored: { source: SourceName; id: string; raw: string }[];

async function query<T>(sql: string, params: Record<string, unknown>): Promise<T[]> {
  return (await store.client.query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<T>();
}

async function sqlMatches(rule: (typeof loaded.rules)[number], options = {}): Promise<string[]> {
  const { sql, params } = compileRuleSql(rule, options);
  return (await query<{ source: string; id: string }>(sql, params)).map((r) => `${r.source}/${r.id}`).sort();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-sql-'));
  store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrate(store, { retentionDays: 20_000 });
  const insert = (values: Record<string, unknown>[]) =>
    store.client.insert({ table: 'events', values, format: 'JSONEachRow', clickhouse_settings: { date_time_input_format: 'best_effort' } });
  await insert(events.map(row));
  await new Promise((r) => setTimeout(r, 20)); // a later ingested_at: the newer version of "dup"
  await insert([row({ id: 'dup', time: '2024-03-14T00:00:00.000Z', raw: { version: 'new', s: 'fresh' } })]);
  const params = new Params();
  stored = await query(
    `SELECT source, id, raw FROM (${latestEventsSql(params, {}, ['cloudtrail', 'okta', 'k8s'], 'raw')}) ${QUERY_SETTINGS}`,
    params.values,
  );
});

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('rules compiled to SQL agree with the evaluator', () => {
  it('loads every fixture rule', () => {
    expect(loaded.rejected).toEqual([]);
    expect(loaded.rules.length).toBe(33);
    expect(stored.length).toBe(events.length);
  });

  it.each(loaded.rules.map((r) => [r.title, r] as const))('%s', async (_title, rule) => {
    const expected = stored
      .filter((e) => engine.match(e.source, JSON.parse(e.raw)).some((m) => m.rule === rule.key))
      .map((e) => `${e.source}/${e.id}`)
      .sort();
    const got = await sqlMatches(rule);
    expect(got).toEqual(expected);
    // Every fixture rule is meant to separate the events: it matches some, not all.
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(stored.length);
  });
});

describe('query shape', () => {
  const rule = (title: string) => loaded.rules.find((r) => r.title.startsWith(title)) as (typeof loaded.rules)[number];

  it('keeps every rule value and field path out of the SQL text', () => {
    const texts = (node: unknown, out: string[]): string[] => {
      if (Array.isArray(node)) for (const x of node) texts(x, out);
      else if (typeof node === 'string' && node.length >= 3) out.push(node);
      else if (node && typeof node === 'object') {
        const o = node as Record<string, unknown>;
        for (const k of ['parts', 'pattern', 'field', 'values', 'items', 'network']) if (k in o) texts(o[k], out);
      }
      return out;
    };
    for (const r of loaded.rules) {
      // Rule text could only reach the SQL as a string literal: the literals are the query's own.
      const literals = (compileRuleSql(r).sql.match(/'(?:[^'\\]|\\.)*'/g) ?? []).join(' ');
      for (const text of texts(Object.values(r.detections), [])) expect(literals.includes(text), `${r.title}: ${text}`).toBe(false);
    }
  });

  it('applies the time range [from, to) as parameters', async () => {
    const r = rule('cidr IPv4');
    expect(await sqlMatches(r, { from: '2024-03-12T00:00:30Z', to: '2024-03-12T00:04:00Z' })).toEqual(['cloudtrail/ip-2']);
    expect(compileRuleSql(r, { from: 0, to: 1 }).params).toMatchObject({ p0: expect.anything() });
    expect(() => compileRuleSql(r, { from: 'yesterday' })).toThrow(/not a timestamp/);
  });

  it('reads another table when asked, as an identifier parameter', async () => {
    const { sql, params } = compileRuleSql(rule('cidr IPv4'), { table: 'events' });
    expect(Object.values(params)).toContain('events');
    expect(sql).not.toMatch(/FROM events/);
  });

  it('states every regex flag, since ClickHouse compiles with dot-matches-newline on', () => {
    expect(re2Pattern('a.b', { i: false, m: false, s: false })).toBe('(?-ims:a.b)');
    expect(re2Pattern('^x$', { i: true, m: true, s: true })).toBe('(?ims:^x$)');
    expect(re2Pattern('\\u0130[\\b]\\0a{,2}\\ (?<n>x)', { i: false, m: false, s: false })).toBe(
      '(?-ims:\\x{130}[\\x{8}]\\x{0}a\\{,2\\}\\x{20}(?P<n>x))',
    );
  });

  it('refuses an event whose arrays nest deeper than the unrolled walk instead of missing it', async () => {
    let deep: unknown = { k: 'v3' };
    for (let i = 0; i < 12; i++) deep = [deep];
    await store.client.insert({
      table: 'events',
      values: [row({ id: 'too-deep', time: '2024-03-15T00:00:00.000Z', raw: { t: deep } })],
      format: 'JSONEachRow',
      clickhouse_settings: { date_time_input_format: 'best_effort' },
    });
    await expect(sqlMatches(rule('array any-match'))).rejects.toThrow(/nested arrays/);
  });
});
