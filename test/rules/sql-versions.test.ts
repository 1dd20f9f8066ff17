/**
 * A retro-hunt decides on the latest stored version of each event, also when the versions fall on
 * both sides of the column/JSON split (compile.ts decidedSplitSql): a version whose field columns
 * hold the values is decided on them, one whose columns are '' (an array, a non-ASCII value) by the
 * JSON evaluation, and the candidate ids are looked up once. Each case stores two versions of one
 * event with explicit ingest times and expects exactly what the evaluator says of the newer one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { loadRules, SigmaEngine } from '../../rules/engine/index.js';
import { compileRuleSql } from '../../rules/sql/index.js';

const RULE = `title: stop logging
logsource:
  product: aws
  service: cloudtrail
detection:
  sel:
    eventSource: cloudtrail.amazonaws.com
    eventName: [StopLogging, DeleteTrail]
  condition: sel
`;
const loaded = loadRules([{ file: 'stop-logging.yml', text: RULE }]);
const rule = loaded.rules[0]!;
const engine = new SigmaEngine(loaded);

const match = { eventSource: 'cloudtrail.amazonaws.com', eventName: 'StopLogging' };
const noMatch = { eventSource: 'cloudtrail.amazonaws.com', eventName: 'GetObject' };
// Undecided on the columns: an array (the evaluator searches it element-wise), or a non-ASCII value.
const matchUndecided = { eventSource: ['cloudtrail.amazonaws.com'], eventName: 'StopLogging' };
const noMatchUndecided = { eventSource: 'cloudtrail.amazonaws.com', eventName: 'StopLoggingé' };

/** [case, older version, newer version] */
const CASES: [string, object, object][] = [
  ['decided match, newer decided no match', match, noMatch],
  ['decided no match, newer decided match', noMatch, match],
  ['decided match, newer undecided no match', match, noMatchUndecided],
  ['undecided no match, newer decided match', noMatchUndecided, match],
  ['decided no match, newer undecided match', noMatch, matchUndecided],
  ['undecided match, newer decided no match', matchUndecided, noMatch],
  ['undecided match, newer undecided no match', matchUndecided, noMatchUndecided],
];

let dir: string;
let store: Store;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-sql-versions-'));
  store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrate(store, { retentionDays: 20_000 });
  const row = (id: string, raw: object, ingestedAt: string) => ({
    source: 'cloudtrail',
    id,
    time: '2026-03-01T10:00:00.000Z',
    raw: JSON.stringify({ eventID: id, ...raw }),
    ingested_at: ingestedAt,
  });
  // Two inserts: the versions sit in separate parts, as a re-ingest leaves them before a merge.
  const insert = (values: object[]) =>
    store.client.insert({ table: 'events', values, format: 'JSONEachRow', clickhouse_settings: { date_time_input_format: 'best_effort' } });
  await insert(CASES.map(([, older], i) => row(`e${i}`, older, '2026-03-01T11:00:00.000Z')));
  await insert(CASES.map(([, , newer], i) => row(`e${i}`, newer, '2026-03-02T11:00:00.000Z')));
}, 60_000);

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('latest version across the column/JSON split', () => {
  it('the rule is decided on the columns where it can be, and the cases cover both halves and outcomes', async () => {
    expect(compileRuleSql(rule).sql).toContain('UNION ALL');
    const outcomes = CASES.map(([, , newer], i) => engine.match('cloudtrail', { eventID: `e${i}`, ...newer }).length > 0);
    expect(outcomes.filter(Boolean).length).toBeGreaterThanOrEqual(2);
    expect(outcomes.filter((x) => !x).length).toBeGreaterThanOrEqual(2);
    const undecided = await (
      await store.client.query({
        query: "SELECT count() AS n FROM events WHERE ct_event_source = '' OR ct_event_name = ''",
        format: 'JSONEachRow',
      })
    ).json<{ n: string | number }>();
    expect(Number(undecided[0]?.n)).toBe(6);
  });

  it.each(CASES.map((c, i) => [c[0], i, c[2]] as const))('%s', async (_name, i, newer) => {
    const { sql, params } = compileRuleSql(rule);
    const got = (await (await store.client.query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<{ id: string }>()).map(
      (r) => r.id,
    );
    const expected = engine.match('cloudtrail', { eventID: `e${i}`, ...newer }).length > 0;
    expect(got.includes(`e${i}`)).toBe(expected);
  });
});
