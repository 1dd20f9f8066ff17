/**
 * Inputs for the fuzz targets: the shapes of the real sources (CloudTrail S3 objects and records,
 * EventBridge envelopes, Okta System Log pages and Event Hook bodies, Kubernetes Event and
 * EventList), then mutated the way an attacker who writes to the logs would mutate them: deep
 * nesting, huge strings, control characters, prototype keys, wrong types, truncation, gzip.
 * The seeds are written here, not taken from ../shared, so `npm test` runs without it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const cloudTrailRecord = (): Record<string, Json> => ({
  eventVersion: '1.09',
  eventID: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
  eventTime: '2026-11-20T22:44:12Z',
  eventSource: 'cloudtrail.amazonaws.com',
  eventName: 'StopLogging',
  awsRegion: 'us-east-1',
  sourceIPAddress: '203.0.113.7',
  userAgent: 'aws-cli/2.17',
  recipientAccountId: '111122223333',
  userIdentity: { type: 'Root', principalId: '111122223333', arn: 'arn:aws:iam::111122223333:root', accountId: '111122223333' },
  requestParameters: { name: 'org-audit-trail' },
  responseElements: null,
});

const oktaEvent = (): Record<string, Json> => ({
  uuid: '5b1a6f4e-0a1b-11ef-9c1d-0242ac120002',
  published: '2026-11-20T22:50:01.000Z',
  eventType: 'user.session.start',
  version: '0',
  severity: 'INFO',
  displayMessage: 'User login to Okta',
  actor: { id: '00u1emergency', type: 'User', alternateId: 'breakglass@example.com', displayName: 'Break Glass' },
  client: { ipAddress: '203.0.113.7', userAgent: { rawUserAgent: 'curl/8' } },
  outcome: { result: 'SUCCESS', reason: null },
  target: [{ id: '0oa1admin', type: 'AppInstance', alternateId: 'Okta Admin Console', displayName: 'Okta Admin Console' }],
  authenticationContext: { externalSessionId: '102abcDEF' },
});

const k8sEvent = (): Record<string, Json> => ({
  kind: 'Event',
  apiVersion: 'audit.k8s.io/v1',
  level: 'RequestResponse',
  auditID: '7d4c2b1a-0000-4000-8000-000000000001',
  stage: 'ResponseComplete',
  requestURI: '/api/v1/namespaces/prod/secrets/db',
  verb: 'get',
  user: { username: 'breakglass-admin', groups: ['system:masters', 'system:authenticated'] },
  sourceIPs: ['203.0.113.7'],
  userAgent: 'kubectl/v1.31',
  objectRef: { resource: 'secrets', namespace: 'prod', name: 'db', apiVersion: 'v1' },
  responseStatus: { metadata: {}, code: 200 },
  requestReceivedTimestamp: '2026-11-20T23:00:00.000000Z',
  stageTimestamp: '2026-11-20T23:00:00.010000Z',
});

/** Whole documents in every envelope the normalizers recognise. */
const envelopes: ((r: Record<string, Json>) => Json)[] = [
  (r) => r,
  (r) => ({ Records: [r, cloudTrailRecord()] }),
  (r) => ({ version: '0', id: 'eb-1', 'detail-type': 'AWS API Call via CloudTrail', source: 'aws.cloudtrail', detail: r }),
  (r) => [r, oktaEvent()],
  (r) => ({ eventType: 'com.okta.event_hook', data: { events: [r] } }),
  (r) => ({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: [r, k8sEvent()] }),
  (r) => ({ records: [{ category: 'kube-audit', properties: { log: toJsonText(r) } }] }),
];

/**
 * JSON text of a value, built without recursion: V8's JSON.stringify overflows the stack on the
 * deep values below, and the fuzz inputs must exist before they can be fed to anything.
 */
export function toJsonText(value: unknown): string {
  const out: string[] = [];
  const stack: unknown[] = [value];
  const CLOSE_OBJ = Symbol('}');
  const CLOSE_ARR = Symbol(']');
  const COMMA = Symbol(',');
  while (stack.length) {
    const v = stack.pop();
    if (v === CLOSE_OBJ) out.push('}');
    else if (v === CLOSE_ARR) out.push(']');
    else if (v === COMMA) out.push(',');
    else if (v instanceof Key) out.push(`${JSON.stringify(v.name)}:`);
    else if (Array.isArray(v)) {
      out.push('[');
      stack.push(CLOSE_ARR);
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push(v[i] === undefined ? null : v[i]);
        if (i > 0) stack.push(COMMA);
      }
    } else if (v !== null && typeof v === 'object') {
      out.push('{');
      stack.push(CLOSE_OBJ);
      const keys = Object.keys(v);
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push((v as Record<string, unknown>)[keys[i] as string] ?? null);
        stack.push(new Key(keys[i] as string));
        if (i > 0) stack.push(COMMA);
      }
    } else out.push(JSON.stringify(v) ?? 'null');
  }
  return out.join('');
}
class Key {
  constructor(readonly name: string) {}
}

/** Nested `depth` deep in one field, as objects or arrays: the shape that blew the stack. */
export function nested(depth: number, leaf: Json = 'x', arrays = false): Json {
  let v: Json = leaf;
  for (let i = 0; i < depth; i++) v = arrays ? [v] : { a: v };
  return v;
}

const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    '\u001b]8;;http://evil\u0007x\u001b]8;;\u0007',
    '\u202eexe.txt',
    '=cmd|calc',
    '<!channel>',
  ),
  fc.integer({ min: 1_000, max: 200_000 }).map((n) => 'A'.repeat(n)),
);

const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<Json> },
  { weight: 2, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 6_000 }).map((d) => nested(d)) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 6_000 }).map((d) => nested(d, 1, true)) },
  { weight: 1, arbitrary: fc.constantFrom<Json>(null, true, 0, -1, 1e308, [], {}, '', 'null', '2026-13-45T99:99:99Z') },
);

/** Dotted paths that exist in the seeds (so mutations hit fields the normalizers read). */
const paths = [
  'eventID',
  'eventTime',
  'eventName',
  'eventSource',
  'userIdentity',
  'userIdentity.type',
  'userIdentity.arn',
  'userIdentity.sessionContext',
  'requestParameters',
  'recipientAccountId',
  'sourceIPAddress',
  'uuid',
  'published',
  'eventType',
  'actor',
  'actor.alternateId',
  'client.ipAddress',
  'target',
  'authenticationContext',
  'auditID',
  'stage',
  'verb',
  'user',
  'user.username',
  'user.groups',
  'objectRef',
  'requestObject',
  'sourceIPs',
  'requestReceivedTimestamp',
  'responseStatus.code',
  'annotations',
  '__proto__',
  'constructor',
];

function setPath(obj: Record<string, Json>, path: string, value: Json): void {
  const parts = path.split('.');
  let cur: Record<string, Json> = obj;
  for (let i = 0; i < parts.length - 1; i++) {
    const next = Object.hasOwn(cur, parts[i] as string) ? cur[parts[i] as string] : undefined;
    if (next === null || typeof next !== 'object' || Array.isArray(next)) {
      const fresh: Record<string, Json> = {};
      Object.defineProperty(cur, parts[i] as string, { value: fresh, enumerable: true, writable: true, configurable: true });
      cur = fresh;
    } else cur = next as Record<string, Json>;
  }
  Object.defineProperty(cur, parts.at(-1) as string, { value, enumerable: true, writable: true, configurable: true });
}

/** One record of a source, with up to four fields replaced by hostile values. */
export const mutatedRecord: fc.Arbitrary<Record<string, Json>> = fc
  .tuple(
    fc.constantFrom(cloudTrailRecord, oktaEvent, k8sEvent),
    fc.array(fc.tuple(fc.constantFrom(...paths), hostileValue), { maxLength: 4 }),
  )
  .map(([seed, edits]) => {
    const r = seed();
    for (const [p, v] of edits) setPath(r, p, v);
    return r;
  });

/** A parsed body as a collector would hand it to `normalizeDocument`. */
export const mutatedDocument: fc.Arbitrary<Json> = fc
  .tuple(mutatedRecord, fc.nat({ max: envelopes.length - 1 }))
  .map(([r, i]) => (envelopes[i] as (r: Record<string, Json>) => Json)(r));

/** Bytes of a file, object or request body: JSON, JSON lines, truncated, gzip, garbage. */
export const hostileBytes: fc.Arbitrary<Buffer> = fc.oneof(
  mutatedDocument.map((d) => Buffer.from(toJsonText(d))),
  fc.array(mutatedDocument, { minLength: 1, maxLength: 5 }).map((ds) => Buffer.from(ds.map((d) => toJsonText(d)).join('\n'))),
  fc.tuple(mutatedDocument, fc.nat()).map(([d, cut]) => {
    const s = Buffer.from(toJsonText(d));
    return s.subarray(0, cut % (s.length + 1));
  }),
  mutatedDocument.map((d) => gzipSync(toJsonText(d))),
  fc.tuple(mutatedDocument, fc.nat()).map(([d, cut]) => {
    const z = gzipSync(toJsonText(d));
    return z.subarray(0, 2 + (cut % (z.length - 1)));
  }),
  fc.uint8Array({ maxLength: 2_000 }).map((u) => Buffer.from(u)),
  fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.from(u)])),
  fc.string({ unit: 'binary', maxLength: 500 }).map((s) => Buffer.from(`\ufeff${s}`)),
);

// ---- Sigma rules -------------------------------------------------------------------------------

const packDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'rules', 'breakglass');
/** Our own rule pack: the seeds the YAML mutations start from. */
export const ruleSeeds: string[] = readdirSync(packDir)
  .filter((f) => f.endsWith('.yml'))
  .sort()
  .map((f) => readFileSync(join(packDir, f), 'utf8'));

const aliasBomb = (levels: number) => {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < levels; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]`);
  return `${lines.join('\n')}\n`;
};

const ruleEdits: fc.Arbitrary<(text: string) => string> = fc.oneof(
  fc.tuple(fc.nat(), fc.nat({ max: 40 })).map(
    ([at, n]) =>
      (t: string) =>
        t.slice(0, at % (t.length + 1)) + t.slice((at % (t.length + 1)) + n),
  ),
  fc.tuple(fc.nat(), fc.string({ maxLength: 12 })).map(
    ([at, s]) =>
      (t: string) =>
        t.slice(0, at % (t.length + 1)) + s + t.slice(at % (t.length + 1)),
  ),
  fc.integer({ min: 2, max: 9 }).map((levels) => (t: string) => `${aliasBomb(levels)}${t}`),
  fc
    .integer({ min: 10, max: 5_000 })
    .map((d) => (t: string) => t.replace(/condition: .*/, `condition: ${'('.repeat(d)}selection${')'.repeat(d)}`)),
  fc.integer({ min: 10, max: 5_000 }).map((d) => (t: string) => t.replace(/condition: .*/, `condition: ${'not '.repeat(d)}selection`)),
  fc
    .constantFrom('%__proto__%', '%constructor%', '%toString%', '%hasOwnProperty%')
    .map((p) => (t: string) => t.replace(/(\n {8}- )/, `$1'${p}'\n        - `).replace(/\|contains/, '|expand|contains')),
  fc
    .constantFrom('(?:a{1000}){59}', '(a+)+$', '[ab]*a[ab]{20}c', '(?=x)', '\\1', '[', 'a{2,1}', '\\p{Han}+')
    .map(
      (re) => (t: string) => t.replace(/(\n {4}\w+(?:\.\w+)*)(\|[\w|]+)?:/, `$1|re: '${re.replace(/'/g, "''")}'\n    dummy_${re.length}:`),
    ),
  fc
    .constantFrom('|base64offset|contains', '|windash', '|cidr', '|re|i|m|s', '|gt', '|exists', '|fieldref', '|expand')
    .map((m) => (t: string) => t.replace(/(\n {8}[\w.]+)(\|[\w|]+)?:/, `$1${m}:`)),
  fc.constant((t: string) => `${t}\n---\n${t}`),
  fc.constant((t: string) => t.replace(/\n/g, '\r\n')),
  fc.constant((t: string) => t.replace(/ {4}/g, '\t')),
);

export const mutatedRuleText: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...ruleSeeds), fc.array(ruleEdits, { minLength: 1, maxLength: 3 }))
  .map(([seed, edits]) => edits.reduce((t, e) => e(t), seed));

// ---- regular expressions -----------------------------------------------------------------------

const reAtom = fc.oneof(
  fc.constantFrom(
    'a',
    'b',
    'c',
    '.',
    '\\d',
    '\\w',
    '\\s',
    '\\b',
    '^',
    '$',
    '[ab]',
    '[^a]',
    '[a-z0-9]',
    '\\x{4e2d}',
    '[\\x{4e00}-\\x{9fff}]',
    '\\.',
  ),
  fc.string({ maxLength: 3 }).map((s) => s.replace(/[\\[\](){}.*+?^$|]/g, '\\$&')),
);
const reQuant = fc.constantFrom('', '', '*', '+', '?', '*?', '{2}', '{0,3}', '{20}', '{1000}', '{1,1000}', '{5,}');

const generatedPattern: fc.Arbitrary<string> = fc.letrec<{ re: string }>((tie) => ({
  re: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.tuple(reAtom, reQuant).map(([a, q]) => a + q),
    fc.array(tie('re'), { minLength: 1, maxLength: 4 }).map((xs) => xs.join('')),
    fc.tuple(tie('re'), tie('re')).map(([a, b]) => `${a}|${b}`),
    fc.tuple(tie('re'), reQuant, fc.boolean()).map(([a, q, cap]) => `(${cap ? '' : '?:'}${a})${q}`),
  ),
})).re;

/** The findings' patterns (heap blow-up, leaking DFA cache) stay in every run beside the generated ones. */
export const regexPattern: fc.Arbitrary<string> = fc.oneof(
  { weight: 9, arbitrary: generatedPattern },
  {
    weight: 1,
    arbitrary: fc.constantFrom('(?:a{1000}){59}', '[ab]*a[ab]{20}c', '(a+)+$', '(?:(?:a{100}){100}){100}', '[\\x{4e00}-\\x{9fff}]+x'),
  },
);

export const regexSubject: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.tuple(fc.constantFrom('a', 'ab', 'aab', '中文', 'é'), fc.integer({ min: 1, max: 20_000 })).map(([s, n]) => s.repeat(n)),
  fc.constantFrom('a', 'ab', '中').map((s) => s.repeat((1 << 20) / s.length)),
);

export const regexFlags = fc.record({ i: fc.boolean(), m: fc.boolean(), s: fc.boolean() });
