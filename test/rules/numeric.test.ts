/**
 * Numeric Sigma values (issue 10 item 7, sigma-spec-notes §3.6): a numeric rule value
 * matches an equal event number, or an event string that parses to the same number
 * (Kubernetes `responseStatus.code: "403"` against `403`). The string is read as a
 * number the way the evaluator's `numericValue` reads it: surrounding whitespace is
 * ignored, `403.0`, `0403`, `+403` and `4.03e2` are 403; a blank string or trailing text
 * is not a number. The ClickHouse compiler must say exactly the same on stored events.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { loadRules, SigmaEngine } from '../../rules/engine/index.js';
import { compileRuleSql } from '../../rules/sql/index.js';

const rule = (id: number, selection: string) => `title: numeric ${id}
id: 7a1c0d2e-0000-4000-8000-00000000000${id}
logsource: {product: kubernetes, service: audit}
detection:
    sel:
        ${selection}
    condition: sel
`;
const RULES = [
  rule(1, 'responseStatus.code: 403'),
  rule(2, 'responseStatus.code: [401, 403]'),
  rule(3, 'responseStatus.code|gte: 400'),
  rule(4, 'responseStatus.code: 0.5'),
].join('---\n');

/** Event `responseStatus.code` values, and whether `code: 403` matches each. */
const CASES: [unknown, boolean][] = [
  [403, true],
  [403.0, true],
  ['403', true],
  [' 403 ', true],
  ['\t403\n', true],
  ['403.0', true],
  ['0403', true],
  ['+403', true],
  ['4.03e2', true],
  ['403.000001', false],
  ['403abc', false],
  ['4 03', false],
  ['', false],
  ['   ', false],
  ['four hundred three', false],
  [null, false],
  [true, false],
  [401, false],
  ['401', false],
  [[401, '403'], true],
  [['401', 'x'], false],
  [{ value: 403 }, false],
];

const loaded = loadRules([{ text: RULES, file: 'numeric.yml' }]);
const engine = new SigmaEngine(loaded);
const event = (i: number, code: unknown) => ({
  kind: 'Event',
  apiVersion: 'audit.k8s.io/v1',
  auditID: `n${i}`,
  verb: 'get',
  objectRef: { resource: 'secrets' },
  responseStatus: { code },
});
const events = CASES.map(([code], i) => event(i, code));

describe('numeric rule values in the evaluator', () => {
  it('load', () => expect(loaded.rejected).toEqual([]));
  it.each(CASES.map(([code, want], i) => [JSON.stringify(code), want, i] as const))('code %s → %s', (_shown, want, i) => {
    const hits = engine.match('k8s', events[i]).map((m) => m.id);
    expect(hits.includes(loaded.rules[0]?.id as string)).toBe(want);
  });
  it('a list of numbers and a comparison read numeric strings the same way', () => {
    const [, list, gte, half] = loaded.rules;
    const hit = (code: unknown, r: typeof list) => engine.match('k8s', event(0, code)).some((m) => m.id === r?.id);
    expect(hit('401', list)).toBe(true);
    expect(hit(' 403', list)).toBe(true);
    expect(hit('402', list)).toBe(false);
    expect(hit('404', gte)).toBe(true);
    expect(hit('399.5', gte)).toBe(false);
    expect(hit('.5', half)).toBe(true);
    expect(hit('0.50', half)).toBe(true);
  });
});

describe('the SQL compiler agrees on stored events', () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-numeric-'));
    store = openStore({ kind: 'chdb', path: join(dir, 'store') });
    await migrate(store, { retentionDays: 20_000 });
    await store.client.insert({
      table: 'events',
      values: events.map((raw) => ({ source: 'k8s', id: raw.auditID, time: '2026-11-20T09:00:00.000Z', raw: JSON.stringify(raw) })),
      format: 'JSONEachRow',
      clickhouse_settings: { date_time_input_format: 'best_effort' },
    });
  });
  afterAll(async () => {
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each(loaded.rules.map((r) => [r.title, r] as const))('%s', async (_title, r) => {
    const { sql, params } = compileRuleSql(r);
    const rows = await (await store.client.query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<{ id: string }>();
    const expected = events.filter((e) => engine.match('k8s', e).some((m) => m.id === r.id)).map((e) => e.auditID);
    expect(rows.map((x) => x.id).sort()).toEqual(expected.sort());
  });
});
