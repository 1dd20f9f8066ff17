/**
 * Fuzz targets: every entry point hostile input reaches. A target's `run` feeds one input and
 * returns how many records were dead-lettered (or rules/patterns rejected). Anything it throws is
 * a crash: entry points must turn bad input into dead letters and rejections, never exceptions.
 * Stalls (an input that never finishes) and memory are measured by the runner around the target.
 */
import fc from 'fast-check';
import { GlasswatchError } from '../../core/errors.js';
import { normalizeBuffer, normalizeBufferBounded, normalizeDocument } from '../../ingest/index.js';
import type { NormalizeResult } from '../../ingest/types.js';
import { loadRules, SigmaEngine } from '../../rules/engine/index.js';
import { compileLinearRegex, RegexSyntaxError } from '../../rules/engine/regex/automaton.js';
import {
  hostileBytes,
  mutatedDocument,
  mutatedRecord,
  mutatedRuleText,
  regexFlags,
  regexPattern,
  regexSubject,
  toJsonText,
} from './arbitraries.js';
import { httpTargets } from './http-targets.js';

export interface FuzzTarget<I = unknown, C = unknown> {
  name: string;
  arbitrary: fc.Arbitrary<I>;
  setup?: () => Promise<C>;
  run(input: I, ctx: C): Promise<number> | number;
  teardown?: (ctx: C) => Promise<void>;
  /** Short text of an input for a finding report. */
  describe?: (input: I) => string;
}

async function collect(
  results: Iterable<NormalizeResult> | AsyncIterable<NormalizeResult> | Promise<Iterable<NormalizeResult>>,
): Promise<number> {
  let dead = 0;
  const it = (await results) as Iterable<NormalizeResult> | AsyncIterable<NormalizeResult>;
  for await (const r of it) if (r.kind === 'dead') dead++;
  return dead;
}

const normalizeBytesTarget: FuzzTarget<Buffer> = {
  name: 'normalize-bytes',
  arbitrary: hostileBytes,
  // Both entry points: the bounded one (replay, S3) and the synchronous one (already-inflated bodies).
  run: async (bytes) =>
    (await collect(normalizeBufferBounded(bytes, 'fuzz/object.json.gz'))) + (await collect(normalizeBuffer(bytes, 'fuzz/body.json'))),
  describe: (b) => `${b.length} bytes: ${b.subarray(0, 120).toString('latin1')}`,
};

const normalizeDocumentTarget: FuzzTarget<unknown> = {
  name: 'normalize-document',
  arbitrary: fc.oneof(mutatedDocument, mutatedRecord),
  run: (doc) => collect(normalizeDocument(doc, { file: 'fuzz/body', line: null, index: null })),
  describe: (d) => toJsonText(d).slice(0, 200),
};

const events = {
  cloudtrail: {
    eventName: 'GetSecretValue',
    eventSource: 'secretsmanager.amazonaws.com',
    userIdentity: { type: 'Root' },
    big: 'x'.repeat(1 << 20),
  },
  okta: { eventType: 'user.session.start', actor: { alternateId: 'bg@example.com' }, big: 'a'.repeat(1 << 20) },
  k8s: { verb: 'create', objectRef: { resource: 'pods', subresource: 'exec' }, responseStatus: { code: '403' }, big: '中'.repeat(1 << 18) },
} as const;

const rulesTarget: FuzzTarget<string> = {
  name: 'rules-load',
  arbitrary: mutatedRuleText,
  run: (text) => {
    const loaded = loadRules([{ text, file: 'fuzz/rule.yml' }]);
    const engine = new SigmaEngine(loaded);
    for (const [source, raw] of Object.entries(events)) engine.match(source as keyof typeof events, raw);
    return loaded.rejected.length;
  },
  describe: (t) => t.slice(0, 300),
};

const regexTarget: FuzzTarget<{ re: string; flags: { i: boolean; m: boolean; s: boolean }; subjects: string[] }> = {
  name: 'regex',
  arbitrary: fc.record({ re: regexPattern, flags: regexFlags, subjects: fc.array(regexSubject, { minLength: 1, maxLength: 3 }) }),
  run: ({ re, flags, subjects }) => {
    let compiled: ReturnType<typeof compileLinearRegex>;
    try {
      compiled = compileLinearRegex(re, flags);
    } catch (err) {
      // A rejected pattern is the engine doing its job; anything else escaping is a crash.
      if (err instanceof RegexSyntaxError || err instanceof GlasswatchError) return 1;
      throw err;
    }
    for (const s of subjects) compiled.test(s);
    return 0;
  },
  describe: ({ re, flags, subjects }) =>
    `${JSON.stringify(re)} ${JSON.stringify(flags)} subjects ${subjects.map((s) => s.length).join(',')} chars`,
};

// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous list; each target is typed where it is defined
export const targets: FuzzTarget<any, any>[] = [normalizeBytesTarget, normalizeDocumentTarget, rulesTarget, regexTarget, ...httpTargets];
