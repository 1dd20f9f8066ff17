/**
 * The break-glass identity columns (migration 18: `userIdentity.userName`, `sessionContext.sessionIssuer.arn`)
 * and hunts decided on the columns in three-valued logic, against the evaluator on generated
 * CloudTrail records: `contains`, wildcards, case-sensitive and regex tests on a column, a rule
 * with an item no column holds (decided wherever the other items settle it), and every shape the
 * identity can take (absent, null, a number, non-ASCII, NUL, an array on the way, a literal dotted
 * key joining any run of the path's keys, a document the insert's JSON parser rejects).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Store } from '../../core/store/index.js';
import { SigmaEngine } from '../../rules/engine/index.js';
import { huntAndEvaluator, rulesFromText, sampled, storeHolding } from './helpers/stores.js';

const RULES = `
title: break-glass principal
logsource: { product: aws, service: cloudtrail }
detection:
  root: { userIdentity.type: Root }
  role: { userIdentity.type: AssumedRole, userIdentity.sessionContext.sessionIssuer.arn|contains: BreakGlass }
  user: { userIdentity.type: IAMUser, userIdentity.userName|contains: BreakGlass }
  condition: 1 of them
---
title: trail change by a break-glass principal
logsource: { product: aws, service: cloudtrail }
detection:
  selection_change: { eventName: [StopLogging, DeleteTrail] }
  # No column holds this field: rows are decided where the other items settle the rule.
  selection_insights: { eventName: PutInsightSelectors, requestParameters.insightSelectors.insightType: null }
  principal:
    - userIdentity.type: Root
    - userIdentity.type: AssumedRole
      userIdentity.sessionContext.sessionIssuer.arn|contains: BreakGlass
    - userIdentity.type: IAMUser
      userIdentity.userName|contains: BreakGlass
  failed: { errorCode|exists: true }
  condition: 1 of selection_* and principal and not failed
---
title: patterns
logsource: { product: aws, service: cloudtrail }
detection:
  prefix: { userIdentity.userName|startswith: 'Break_' }
  regex: { userIdentity.userName|re: '^[A-Z]+$' }
  cased: { userIdentity.sessionContext.sessionIssuer.arn|endswith|cased: 'Role' }
  one: { userIdentity.userName: 'Bre?kGlass' }
  condition: 1 of them
---
title: any user name but a role's
logsource: { product: aws, service: cloudtrail }
detection:
  any: { userIdentity.userName: '*' }
  role: { userIdentity.type: AssumedRole }
  condition: any and not role
---
title: no user name
logsource: { product: aws, service: cloudtrail }
detection:
  none: { userIdentity.userName|exists: false }
  condition: none
---
title: assumed role issued by a role
logsource: { product: aws, service: cloudtrail }
detection:
  selection:
    userIdentity.type: [AssumedRole, IAMUser]
    userIdentity.sessionContext.sessionIssuer.type: Role
  condition: selection
---
title: not a break-glass role
logsource: { product: aws, service: cloudtrail }
detection:
  role: { userIdentity.sessionContext.sessionIssuer.arn|contains: BreakGlass }
  user: { userIdentity.userName|contains: breakglass }
  condition: not role and not user
`;

const name = fc.constantFrom(
  'BreakGlassAdmin',
  'breakglass-ops',
  'BREAKGLASS',
  'BreakGlass',
  'BreakxGlass',
  'Break_Glass',
  'Bre%kGlass',
  'ADMIN',
  'alice',
  '',
  '\u0000',
  'BreakGla\u017Fs',
  '\u212AILL',
);
const arn = fc.constantFrom(
  'arn:aws:iam::111122223333:role/BreakGlassRole',
  'arn:aws:iam::111122223333:role/ops/breakglass',
  'arn:aws:iam::111122223333:role/AdminRole',
  'arn:aws:iam::111122223333:role/Admin',
  '',
  '\u0000',
  'arn:aws:iam::1:role/\u212Aelvin-BreakGlass',
);
const leaf = fc.oneof(fc.constant(null), fc.integer(), fc.boolean(), fc.array(name, { maxLength: 2 }), fc.record({ x: name }));
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });
// A literal dotted key joining the path's keys makes a column "unknown" for the whole record: rarer.
const rare = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
const issuer = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      arn: fc.oneof({ weight: 6, arbitrary: arn }, leaf),
      type: maybe(fc.oneof({ weight: 6, arbitrary: fc.constantFrom('Role', 'role', 'IAMUser', '') }, leaf)),
      userName: maybe(name),
    }),
  },
  { weight: 1, arbitrary: fc.array(fc.record({ arn: maybe(arn) }, { requiredKeys: [] }), { maxLength: 2 }) },
  { weight: 1, arbitrary: fc.record({ 'sessionIssuer.arn': arn }) },
);
const context = fc.oneof(
  { weight: 12, arbitrary: fc.record({ sessionIssuer: maybe(issuer) }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.array(fc.record({ sessionIssuer: issuer }), { maxLength: 2 }) },
  { weight: 1, arbitrary: fc.record({ 'sessionIssuer.arn': arn }) },
);
const identity = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record(
      {
        type: maybe(fc.constantFrom('Root', 'IAMUser', 'AssumedRole', 'iamuser', 'FederatedUser')),
        userName: maybe(fc.oneof(name, name, leaf)),
        sessionContext: fc.oneof(context, context, fc.constant(undefined)),
        'sessionContext.sessionIssuer': rare(fc.record({ arn })),
      },
      { requiredKeys: [] },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.array(fc.record({ type: maybe(fc.constant('IAMUser')), userName: maybe(name) }, { requiredKeys: [] }), { maxLength: 2 }),
  },
);
const record = fc.record(
  {
    eventName: fc.constantFrom('StopLogging', 'DeleteTrail', 'PutInsightSelectors', 'GetObject'),
    requestParameters: maybe(
      fc.record({ insightSelectors: fc.oneof(fc.constant([]), fc.constant([{ insightType: 'ApiCallRateInsight' }])) }),
    ),
    errorCode: maybe(fc.constant('AccessDenied')),
    userIdentity: maybe(identity),
    'userIdentity.userName': rare(name),
    'userIdentity.sessionContext.sessionIssuer.arn': rare(arn),
    // 2^64 and beyond: simdjson refuses the whole document.
    big: maybe(fc.constantFrom(9.876543210987654e19, 12)),
  },
  { requiredKeys: ['eventName'] },
);

let store: Store;
let close: () => Promise<void>;
const loaded = rulesFromText(RULES);
const engine = new SigmaEngine(loaded);
const events = sampled(record, 800);

beforeAll(async () => {
  ({ store, close } = await storeHolding('gw-identity-', events));
});

afterAll(() => close?.());

it('the identity columns hold a value where it is unambiguous, NUL for an absent user name, and "unknown" otherwise', async () => {
  expect(loaded.rejected).toEqual([]);
  const got = await (
    await store.client.query({
      query: `SELECT id, ct_user_name AS user, ct_issuer_arn AS issuer, ct_issuer_type AS issuer_type FROM events ORDER BY id`,
      format: 'JSONEachRow',
    })
  ).json<{ id: string; user: string; issuer: string; issuer_type: string }>();
  const by = new Map(got.map((r) => [r.id, r]));
  const counts = { user: 0, absent: 0, issuer: 0, issuerType: 0 };
  for (const e of events) {
    const row = by.get(e.id);
    const ui = e.raw.userIdentity as Record<string, unknown> | undefined;
    const text = JSON.stringify(e.raw);
    // Where a column holds a value, it is the one value the evaluator reads there.
    if (row?.user && row.user !== '\u0000') {
      counts.user++;
      expect(ui?.userName, e.id).toBe(row.user);
      expect(text.includes('userIdentity.userName'), e.id).toBe(false);
    }
    if (row?.user === '\u0000') {
      counts.absent++;
      expect(text.includes('userName"'), e.id).toBe(false);
    }
    const issuer = (ui?.sessionContext as { sessionIssuer?: Record<string, unknown> } | undefined)?.sessionIssuer;
    for (const [key, value] of [
      ['arn', row?.issuer],
      ['type', row?.issuer_type],
    ] as const) {
      if (!value) continue;
      counts[key === 'arn' ? 'issuer' : 'issuerType']++;
      expect(issuer?.[key], e.id).toBe(value);
      for (const joined of ['userIdentity.sessionContext', 'sessionContext.sessionIssuer', `sessionIssuer.${key}`])
        expect(text.includes(joined), e.id).toBe(false);
    }
  }
  // The sample covers all three states.
  expect(counts.user).toBeGreaterThan(50);
  expect(counts.absent).toBeGreaterThan(20);
  expect(counts.issuer).toBeGreaterThan(20);
  expect(counts.issuerType).toBeGreaterThan(20);
  expect(got.filter((r) => r.issuer === '').length).toBeGreaterThan(100);
});

it.each(loaded.rules.map((r) => [r.title, r] as const))('%s: the hunt returns exactly what the evaluator matches', async (_t, rule) => {
  const { sql, got, expected } = await huntAndEvaluator(store, engine, rule, events);
  expect(sql).toContain('UNION ALL'); // decided on the columns where they settle the rule
  expect(got).toEqual(expected);
  expect(expected.length).toBeGreaterThan(5);
  expect(expected.length).toBeLessThan(events.length - 5);
});
