/**
 * The field columns against the evaluator on generated CloudTrail records: every shape a present,
 * absent, null, non-string, non-ASCII, NUL, nested-in-an-array or literal-dotted field can take,
 * and documents the insert's JSON parser rejects (an integer beyond 64 bits). A hunt decided on
 * the columns (presence tests included) must return exactly what the evaluator matches.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Store } from '../../core/store/index.js';
import { SigmaEngine } from '../../rules/engine/index.js';
import { huntAndEvaluator, rulesFromText, sampled, storeHolding } from './helpers/stores.js';

const RULES = `
title: root by a person
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { userIdentity.type: Root }
  service: { eventType: AwsServiceEvent }
  invoked: { userIdentity.invokedBy|exists: true }
  console: { userIdentity.invokedBy: signin.amazonaws.com }
  condition: sel and not service and not (invoked and not console)
---
title: succeeded
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { eventName: StopLogging }
  failed: { errorCode|exists: true }
  condition: sel and not failed
---
title: no error code or denied
logsource: { product: aws, service: cloudtrail }
detection:
  none: { errorCode: null }
  denied: { errorCode: AccessDenied }
  condition: none or denied
---
title: invoked by nobody
logsource: { product: aws, service: cloudtrail }
detection:
  sel: { userIdentity.invokedBy|exists: false }
  condition: sel
`;

const text = fc.constantFrom(
  'Root',
  'root',
  'IAMUser',
  'signin.amazonaws.com',
  'ec2.amazonaws.com',
  'AccessDenied',
  'accessdenied',
  '',
  '\u0000',
  '\u212Aill',
  'Stop"Logging',
);
const leaf = fc.oneof(text, fc.constant(null), fc.integer(), fc.boolean(), fc.array(text, { maxLength: 2 }), fc.record({ x: text }));
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });
const identity = fc.oneof(
  { weight: 6, arbitrary: fc.record({ type: maybe(fc.oneof(text, leaf)), invokedBy: maybe(fc.oneof(text, leaf)) }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.array(fc.record({ type: maybe(text), invokedBy: maybe(text) }, { requiredKeys: [] }), { maxLength: 2 }) },
  { weight: 1, arbitrary: text },
);
const record = fc.record(
  {
    eventName: maybe(fc.oneof(fc.constant('StopLogging'), leaf)),
    eventType: maybe(fc.oneof(fc.constantFrom('AwsApiCall', 'AwsServiceEvent', 'awsserviceevent'), leaf)),
    errorCode: maybe(fc.oneof(text, leaf)),
    userIdentity: maybe(identity),
    'userIdentity.invokedBy': maybe(text),
    'userIdentity.type': maybe(text),
    // 2^64 and beyond: simdjson refuses the whole document.
    big: maybe(fc.constantFrom(9.876543210987654e19, 1e20, 12)),
  },
  { requiredKeys: [] },
);

let store: Store;
let close: () => Promise<void>;
const loaded = rulesFromText(RULES);
const engine = new SigmaEngine(loaded);
const events = sampled(record, 600);

beforeAll(async () => {
  ({ store, close } = await storeHolding('gw-colprop-', events));
});

afterAll(() => close?.());

it('loads the rules, and the generated records cover absent, NUL-marked and unknown columns', async () => {
  expect(loaded.rejected).toEqual([]);
  const marks = await (
    await store.client.query({
      query: `SELECT ct_invoked_by = '\\0' AS absent, ct_invoked_by = '' AS unknown, count() AS n FROM events GROUP BY absent, unknown ORDER BY absent, unknown`,
      format: 'JSONEachRow',
    })
  ).json<{ absent: number; unknown: number; n: string }>();
  expect(marks.map((m) => [m.absent, m.unknown])).toEqual([
    [0, 0],
    [0, 1],
    [1, 0],
  ]);
});

it.each(loaded.rules.map((r) => [r.title, r] as const))('%s: the hunt returns exactly what the evaluator matches', async (_t, rule) => {
  const { sql, got, expected } = await huntAndEvaluator(store, engine, rule, events);
  expect(sql).toContain('UNION ALL'); // decided on the columns where they hold values
  expect(got).toEqual(expected);
  expect(expected.length).toBeGreaterThan(5);
});
