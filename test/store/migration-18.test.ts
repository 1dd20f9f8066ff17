/**
 * Migration 18 on a store that already holds events: the identity columns (user name, the session
 * issuer's ARN and type) are computed from the stored rows when their old parts are read, so a
 * hunt over an upgraded store returns exactly what the evaluator matches, old versions and new alike.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { SigmaEngine } from '../../rules/engine/index.js';
import { huntAndEvaluator, insertRaw, migrateBefore, rulesFromText } from './helpers/stores.js';

const RULES = `
title: trail stopped by a break-glass principal
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { eventName: StopLogging }
  principal:
    - userIdentity.type: AssumedRole
      userIdentity.sessionContext.sessionIssuer.arn|contains: BreakGlass
    - userIdentity.type: IAMUser
      userIdentity.userName|contains: BreakGlass
  failed: { errorCode|exists: true }
  condition: sel and principal and not failed
---
title: assumed role issued by a role
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { userIdentity.type: AssumedRole, userIdentity.sessionContext.sessionIssuer.type: Role }
  condition: sel
`;

const role = (name: string, type = 'Role') => ({
  type: 'AssumedRole',
  sessionContext: { sessionIssuer: { type, arn: `arn:aws:iam::111122223333:role/${name}`, userName: name } },
});
const ct = (id: string, raw: Record<string, unknown>) => ({ id, raw: { eventVersion: '1.08', eventName: 'StopLogging', ...raw } });
const BEFORE = [
  ct('role-bg', { userIdentity: role('BreakGlassRole') }),
  ct('role-admin', { userIdentity: role('Admin') }),
  ct('user-bg', { userIdentity: { type: 'IAMUser', userName: 'breakglass-ops' } }),
  ct('user-alice', { userIdentity: { type: 'IAMUser', userName: 'alice' } }),
  ct('user-bg-failed', { userIdentity: { type: 'IAMUser', userName: 'BreakGlassAdmin' }, errorCode: 'AccessDenied' }),
  ct('issuer-user', { userIdentity: role('BreakGlassRole', 'IAMUser') }),
  ct('renamed', { userIdentity: { type: 'IAMUser', userName: 'BreakGlassAdmin' } }),
];
// Stored after the migration: a later version of one old key.
const AFTER = [
  ct('renamed', { userIdentity: { type: 'IAMUser', userName: 'bob' } }),
  ct('role-new', { userIdentity: role('ops-BREAKGLASS') }),
];

let dir: string;
let store: Store;
const rules = rulesFromText(RULES);

const insert = (evs: { id: string; raw: Record<string, unknown> }[]) =>
  insertRaw(
    store,
    evs.map((e) => ({ source: 'cloudtrail', ...e })),
  );

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-m18-'));
  store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrateBefore(store, 18);
}, 60_000);

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('a hunt over parts stored before migration 18 returns what the evaluator matches', async () => {
  await insert(BEFORE);
  expect((await migrate(store, { retentionDays: 20_000 })).applied[0]).toBe(18);
  await new Promise((r) => setTimeout(r, 20));
  await insert(AFTER);
  const engine = new SigmaEngine(rules);
  const latest = [...new Map([...BEFORE, ...AFTER].map((e) => [e.id, e.raw]))].map(([id, raw]) => ({ id, raw }));
  const hunt = async (title: string) => {
    const { sql, got, expected } = await huntAndEvaluator(store, engine, rules.rules.find((x) => x.title === title)!, latest);
    expect(sql, title).toContain('UNION ALL');
    expect(got, title).toEqual(expected);
    return got;
  };
  expect(await hunt('trail stopped by a break-glass principal')).toEqual(['issuer-user', 'role-bg', 'role-new', 'user-bg']);
  expect(await hunt('assumed role issued by a role')).toEqual(['role-admin', 'role-bg', 'role-new']);
  // The old parts' columns are computed on read, as a new part stores them.
  const cols = await (
    await store.client.query({
      query: `SELECT id, ct_user_name AS user, ct_issuer_arn AS arn FROM events WHERE id IN ('user-alice', 'role-admin') ORDER BY id`,
      format: 'JSONEachRow',
    })
  ).json<{ id: string; user: string; arn: string }>();
  expect(cols).toEqual([
    { id: 'role-admin', user: '', arn: 'arn:aws:iam::111122223333:role/Admin' }, // only sessionIssuer.userName: unknown
    { id: 'user-alice', user: 'alice', arn: '' },
  ]);
});
