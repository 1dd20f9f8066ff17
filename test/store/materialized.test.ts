/**
 * The materialized field columns (migration 4) and the retro-hunt pre-filter on them: a column
 * holds a field's value only when reading it is unambiguous, and a rule compiled to SQL still
 * returns exactly what the evaluator matches on the events where a column could mislead
 * (literal dotted keys, arrays, numbers, non-ASCII case folding, other sources, re-ingested versions).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { FIELD_COLUMNS } from '../../core/store/migrations.js';
import { SigmaEngine, type SourceName } from '../../rules/engine/index.js';
import { fieldColumns } from '../../rules/sql/columns.js';
import { compileRuleSql, latestEventsSql, Params, QUERY_SETTINGS } from '../../rules/sql/index.js';
import { insertRaw, rulesFromText } from './helpers/stores.js';

const RULES = `
title: stop logging
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { eventSource: cloudtrail.amazonaws.com, eventName: [StopLogging, DeleteTrail] }
  condition: sel
---
title: root
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { userIdentity.type: Root }
  condition: sel
---
title: kelvin
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { eventName: KILL }
  condition: sel
---
title: error code
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { errorCode: '403' }
  condition: sel
---
title: okta reset
logsource: { product: okta, service: okta }
detection:
  sel: { eventType: user.account.reset_password }
  condition: sel
---
title: not and or
logsource: { product: aws, service: cloudtrail }
detection:
  a: { eventName: StopLogging }
  b: { errorCode: AccessDenied }
  condition: a or not b
---
title: root not service event
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { userIdentity.type: Root }
  service: { eventType: AwsServiceEvent }
  condition: sel and not service
---
title: root by a person
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { userIdentity.type: Root }
  invoked: { userIdentity.invokedBy|exists: true }
  console: { userIdentity.invokedBy: signin.amazonaws.com }
  condition: sel and not (invoked and not console)
---
title: no error code
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { eventName: StopLogging }
  failed: { errorCode|exists: true }
  condition: sel and not failed
---
title: error code null or denied
logsource: { product: aws, service: cloudtrail }
detection:
  none: { errorCode: null }
  denied: { errorCode: AccessDenied }
  condition: none or denied
---
title: k8s exec
logsource: { category: application, product: kubernetes, service: audit }
detection:
  sel: { verb: create, objectRef.resource: pods, objectRef.subresource: exec }
  condition: sel
`;

type Ev = { source: SourceName; id: string; raw: Record<string, unknown> };
const ct = (id: string, raw: Record<string, unknown>): Ev => ({ source: 'cloudtrail', id, raw: { eventVersion: '1.08', ...raw } });
const EVENTS: Ev[] = [
  ct('plain', { eventSource: 'cloudtrail.amazonaws.com', eventName: 'StopLogging', userIdentity: { type: 'IAMUser' } }),
  ct('cased', { eventSource: 'CloudTrail.amazonaws.com', eventName: 'deletetrail' }),
  ct('array', { eventSource: 'cloudtrail.amazonaws.com', eventName: ['Other', 'StopLogging'] }),
  ct('other', { eventSource: 'cloudtrail.amazonaws.com', eventName: 'GetObject', errorCode: 'AccessDenied' }),
  // A literal dotted key beside the nested one: the evaluator reads both.
  ct('dotted', { 'userIdentity.type': 'Root', userIdentity: { type: 'IAMUser' } }),
  ct('nested-root', { userIdentity: { type: 'Root' } }),
  ct('root-array', { userIdentity: [{ type: 'Root' }] }),
  // U+212A KELVIN SIGN lower-cases to ASCII "k" in JS.
  ct('kelvin', { eventName: '\u212Aill' }),
  ct('number', { errorCode: 403 }),
  ct('escaped', { eventName: 'Stop"Logging', eventSource: 'cloudtrail.amazonaws.com' }),
  { source: 'okta', id: 'okta-1', raw: { eventType: 'user.account.reset_password', actor: { alternateId: 'a@example.com' } } },
  { source: 'okta', id: 'okta-2', raw: { eventType: 'user.session.start' } },
  // CloudTrail has an eventType too: the okta column must not take it.
  ct('ct-event-type', { eventType: 'user.account.reset_password' }),
  ct('root-api', { userIdentity: { type: 'Root' }, eventType: 'AwsApiCall' }),
  ct('root-service', { userIdentity: { type: 'Root' }, eventType: 'AwsServiceEvent' }),
  ct('root-service-cased', { userIdentity: { type: 'root' }, eventType: 'awsserviceevent' }),
  ct('root-type-number', { userIdentity: { type: 'Root' }, eventType: 7 }),
  // userIdentity.invokedBy present, absent, null, a number, an array on the way, a literal dotted key, NUL.
  ct('invoked-service', { userIdentity: { type: 'Root', invokedBy: 'ec2.amazonaws.com' }, eventName: 'StopLogging' }),
  ct('invoked-console', { userIdentity: { type: 'Root', invokedBy: 'signin.amazonaws.com' } }),
  ct('invoked-null', { userIdentity: { type: 'Root', invokedBy: null }, errorCode: null, eventName: 'StopLogging' }),
  ct('invoked-number', { userIdentity: { type: 'Root', invokedBy: 5 } }),
  ct('identity-array', { userIdentity: [{ type: 'Root', invokedBy: 'ec2.amazonaws.com' }], eventName: 'StopLogging', errorCode: '' }),
  ct('identity-string', { userIdentity: 'Root', errorCode: 'AccessDenied' }),
  ct('invoked-dotted', { userIdentity: { type: 'Root' }, 'userIdentity.invokedBy': 'ec2.amazonaws.com' }),
  // An integer beyond 64 bits: the insert's JSON parser (simdjson) rejects the whole document, so
  // its columns must say "unknown", never "absent".
  ct('big-integer', {
    big: 9.876543210987654e19,
    userIdentity: { type: 'Root', invokedBy: 'ec2.amazonaws.com' },
    errorCode: 'AccessDenied',
    eventName: 'StopLogging',
  }),
  ct('invoked-nul', { userIdentity: { type: 'Root', invokedBy: '\u0000' }, errorCode: '\u0000', eventName: 'StopLogging' }),
  { source: 'k8s', id: 'k8s-1', raw: { verb: 'create', objectRef: { resource: 'pods', subresource: 'exec' } } },
  {
    source: 'k8s',
    id: 'k8s-2',
    raw: { verb: 'CREATE', 'objectRef.resource': 'pods', objectRef: { resource: 'secrets', subresource: 'exec' } },
  },
  { source: 'k8s', id: 'k8s-3', raw: { verb: 'get', objectRef: { resource: 'pods', subresource: 'exec' } } },
  // Two versions of one event: the latest decides.
  ct('became-match', { eventSource: 'cloudtrail.amazonaws.com', eventName: 'GetObject' }),
  ct('became-other', { eventSource: 'cloudtrail.amazonaws.com', eventName: 'StopLogging' }),
  // Versions on both sides of the column/JSON split: decided on the columns, then needing the JSON, and back.
  ct('split-a', { eventSource: 'cloudtrail.amazonaws.com', eventName: 'StopLogging' }),
  ct('split-b', { eventSource: 'cloudtrail.amazonaws.com', eventName: ['GetObject'] }),
];
const LATER: Ev[] = [
  ct('became-match', { eventSource: 'cloudtrail.amazonaws.com', eventName: 'StopLogging' }),
  ct('became-other', { eventSource: 'cloudtrail.amazonaws.com', eventName: 'GetObject' }),
  ct('split-a', { eventSource: 'cloudtrail.amazonaws.com', eventName: ['GetObject'] }),
  ct('split-b', { eventSource: 'cloudtrail.amazonaws.com', eventName: 'StopLogging' }),
];

let dir: string;
let store: Store;
const loaded = rulesFromText(RULES);
const engine = new SigmaEngine(loaded);

const rows = <T>(query: string, params: Record<string, unknown> = {}) =>
  store.client.query({ query, query_params: params, format: 'JSONEachRow' }).then((r) => r.json<T>());

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-mat-'));
  store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrate(store, { retentionDays: 20_000 });
  await insertRaw(store, EVENTS);
  await new Promise((r) => setTimeout(r, 20));
  await insertRaw(store, LATER);
});

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('materialized field columns', () => {
  it('migration 4 adds one column and one set index per field, and a min-max index on time', async () => {
    const cols = await rows<{ name: string; default_kind: string }>(
      "SELECT name, default_kind FROM system.columns WHERE database = currentDatabase() AND table = 'events'",
    );
    for (const c of FIELD_COLUMNS) expect(cols).toContainEqual({ name: c.column, default_kind: 'MATERIALIZED' });
    const idx = (
      await rows<{ name: string }>("SELECT name FROM system.data_skipping_indices WHERE database = currentDatabase() AND table = 'events'")
    ).map((r) => r.name);
    expect(idx).toEqual(expect.arrayContaining(['time_minmax', ...FIELD_COLUMNS.filter((c) => !c.noIndex).map((c) => `${c.column}_set`)]));
    for (const c of FIELD_COLUMNS.filter((x) => x.noIndex)) expect(idx).not.toContain(`${c.column}_set`);
  });

  it('holds a value only when reading it is unambiguous', async () => {
    const got = await rows<Record<string, string>>(
      `SELECT id, ct_event_name, ct_identity_type, ct_error_code, okta_event_type, ct_event_type, ct_invoked_by, k8s_resource FROM events
       ORDER BY id, ingested_at LIMIT 1 BY id`,
    );
    const by = Object.fromEntries(got.map((r) => [r.id, r]));
    expect(by.plain).toMatchObject({ ct_event_name: 'StopLogging', ct_identity_type: 'IAMUser', okta_event_type: '' });
    expect(by.cased?.ct_event_name).toBe('deletetrail');
    expect(by.array?.ct_event_name).toBe(''); // an array: any element may match
    expect(by.dotted?.ct_identity_type).toBe(''); // "userIdentity.type" literal key beside the nested one
    expect(by['nested-root']?.ct_identity_type).toBe('Root');
    expect(by.kelvin?.ct_event_name).toBe(''); // non-ASCII
    expect(by.number?.ct_error_code).toBe(''); // a number, not a string
    expect(by['okta-1']?.okta_event_type).toBe('user.account.reset_password');
    expect(by['ct-event-type']?.okta_event_type).toBe('');
    expect(by['ct-event-type']?.ct_event_type).toBe('user.account.reset_password');
    expect(by['okta-1']?.ct_event_type).toBe('');
    expect(by['root-type-number']?.ct_event_type).toBe('');
    // NUL marks a certainly absent field on the columns that mark absence; '' stays "unknown".
    expect(by['nested-root']?.ct_invoked_by).toBe('\u0000');
    expect(by['identity-string']?.ct_invoked_by).toBe('\u0000');
    expect(by.plain?.ct_error_code).toBe('\u0000');
    expect(by['invoked-service']?.ct_invoked_by).toBe('ec2.amazonaws.com');
    for (const id of ['invoked-null', 'invoked-number', 'identity-array', 'invoked-dotted', 'invoked-nul'])
      expect(by[id]?.ct_invoked_by).toBe('');
    for (const id of ['invoked-null', 'identity-array', 'invoked-nul', 'number']) expect(by[id]?.ct_error_code).toBe('');
    expect(by['big-integer']?.ct_error_code).not.toBe('\u0000');
    expect(by['big-integer']?.ct_invoked_by).not.toBe('\u0000');
    expect(by['okta-1']?.ct_invoked_by).toBe('');
    expect(by['k8s-2']?.k8s_resource).toBe('');
  });

  it('a rule on a materialized field is pre-filtered on the column before raw is read', () => {
    const rule = loaded.rules.find((r) => r.title === 'stop logging')!;
    const { sql } = compileRuleSql(rule);
    expect(sql).toMatch(/PREWHERE .*ct_event_name/);
    expect(sql).toMatch(/PREWHERE .*ct_event_source/);
    // Every item is an equality on a column: rows holding both values are decided without raw.
    expect(sql).toContain('UNION ALL');
    expect(sql).toMatch(/ORDER BY source, id, ingested_at DESC, raw_hash DESC/);
  });

  it('a root-usage rule (`not eventType: AwsServiceEvent`) is decided on the columns too', () => {
    const rule = loaded.rules.find((r) => r.title === 'root not service event')!;
    const { sql } = compileRuleSql(rule);
    expect(sql).toContain('UNION ALL');
    expect(sql).toContain("if((ct_identity_type != '' AND ct_event_type != ''), (lower(ct_identity_type) IN");
  });

  it('presence tests (`exists`, `null`) are decided on a column that marks absence', () => {
    for (const title of ['root by a person', 'no error code', 'error code null or denied']) {
      const { sql } = compileRuleSql(loaded.rules.find((r) => r.title === title)!);
      expect(sql, title).toContain('UNION ALL');
      expect(sql, title).toContain("'\\0'");
    }
  });

  it('a field two sources have is read from both columns for both sources (each is empty on the other)', () => {
    expect(fieldColumns(['okta', 'cloudtrail']).get('eventType')).toBe('concat(okta_event_type, ct_event_type)');
    expect(fieldColumns(['cloudtrail']).get('eventType')).toBe('ct_event_type');
    expect(fieldColumns(['okta']).get('eventType')).toBe('okta_event_type');
  });

  it.each(loaded.rules.map((r) => [r.title, r] as const))('%s: SQL returns exactly what the evaluator matches', async (_t, rule) => {
    const params = new Params();
    const stored = await rows<{ source: SourceName; id: string; raw: string }>(
      `SELECT source, id, raw FROM (${latestEventsSql(params, {}, ['cloudtrail', 'okta', 'k8s'], 'raw')}) ${QUERY_SETTINGS}`,
      params.values,
    );
    const expected = stored
      .filter((e) => engine.match(e.source, JSON.parse(e.raw)).some((m) => m.rule === rule.key))
      .map((e) => `${e.source}/${e.id}`)
      .sort();
    const { sql, params: p } = compileRuleSql(rule);
    const got = (await rows<{ source: string; id: string }>(sql, p)).map((r) => `${r.source}/${r.id}`).sort();
    expect(got).toEqual(expected);
    expect(expected.length).toBeGreaterThan(0);
  });
});
