/**
 * Migration 17 on a store that already holds events: CloudTrail's eventType column and `id_hash`
 * are computed from the stored rows when their old parts are read, so a hunt over an upgraded
 * store returns exactly what the evaluator matches, old versions and new alike.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { SigmaEngine } from '../../rules/engine/index.js';
import { huntAndEvaluator, insertRaw, migrateBefore, rulesFromText } from './helpers/stores.js';

const RULE = `
title: root not service event
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { userIdentity.type: Root }
  service: { eventType: AwsServiceEvent }
  condition: sel and not service
---
title: root by a person, no error
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { userIdentity.type: Root }
  invoked: { userIdentity.invokedBy|exists: true }
  failed: { errorCode|exists: true }
  condition: sel and not invoked and not failed
`;

const ct = (id: string, raw: Record<string, unknown>) => ({ id, raw: { eventVersion: '1.08', ...raw } });
const BEFORE = [
  ct('api', { userIdentity: { type: 'Root' }, eventType: 'AwsApiCall' }),
  ct('service', { userIdentity: { type: 'Root' }, eventType: 'AwsServiceEvent' }),
  ct('no-type', { userIdentity: { type: 'Root' } }),
  ct('user', { userIdentity: { type: 'IAMUser' }, eventType: 'AwsApiCall' }),
  ct('became-service', { userIdentity: { type: 'Root' }, eventType: 'AwsApiCall' }),
  ct('invoked', { userIdentity: { type: 'Root', invokedBy: 'ec2.amazonaws.com' }, eventType: 'AwsApiCall' }),
  ct('failed', { userIdentity: { type: 'Root' }, eventType: 'AwsApiCall', errorCode: 'AccessDenied' }),
];
// Stored after the migration: a later version of one old key.
const AFTER = [
  ct('became-service', { userIdentity: { type: 'Root' }, eventType: 'AwsServiceEvent' }),
  ct('new', { userIdentity: { type: 'Root' }, eventType: 'AwsConsoleSignIn' }),
];

let dir: string;
let store: Store;
const rule = rulesFromText(RULE);

const insert = (evs: { id: string; raw: Record<string, unknown> }[]) =>
  insertRaw(
    store,
    evs.map((e) => ({ source: 'cloudtrail', ...e })),
  );

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-m17-'));
  store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrateBefore(store, 17);
}, 60_000);

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('a hunt over parts stored before migration 17 returns what the evaluator matches', async () => {
  await insert(BEFORE);
  expect((await migrate(store, { retentionDays: 20_000 })).applied[0]).toBe(17);
  await new Promise((r) => setTimeout(r, 20));
  await insert(AFTER);
  const engine = new SigmaEngine(rule);
  const latest = [...new Map([...BEFORE, ...AFTER].map((e) => [e.id, e.raw]))].map(([id, raw]) => ({ id, raw }));
  const hunt = async (title: string) => {
    const { got, expected } = await huntAndEvaluator(store, engine, rule.rules.find((x) => x.title === title)!, latest);
    expect(got, title).toEqual(expected);
    return got;
  };
  expect(await hunt('root not service event')).toEqual(['api', 'failed', 'invoked', 'new', 'no-type']);
  // Old parts hold '' for an absent errorCode or invokedBy (unknown: raw is read); new parts mark it.
  expect(await hunt('root by a person, no error')).toEqual(['api', 'became-service', 'new', 'no-type', 'service']);
  // The old part's hash is the one a new part stores.
  const hashes = await (
    await store.client.query({ query: 'SELECT DISTINCT id_hash = cityHash64(id) AS same FROM events', format: 'JSONEachRow' })
  ).json<{ same: number }>();
  expect(hashes).toEqual([{ same: 1 }]);
});
