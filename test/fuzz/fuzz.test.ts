// Property-based pass over every hostile-input entry point (normalizers, HTTP receivers, the rule
// loader, the regex engine): a few hundred generated inputs each, in-process. Nothing may throw,
// every receiver answers (never a 500 or a dropped connection), and every normalized unit accounts
// for its input. `npm run fuzz` runs the same targets at 10,000 inputs each in child processes
// and measures stalls and peak RSS.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeBuffer } from '../../ingest/index.js';
import { nested, toJsonText } from './arbitraries.js';
import { targets } from './targets.js';

const RUNS = Number(process.env.GLASSWATCH_FUZZ_RUNS ?? 150);

describe('fuzz targets (property-based, in-process)', () => {
  for (const target of targets) {
    it(`${target.name}: ${RUNS} generated inputs, no exception escapes`, async () => {
      const ctx = target.setup ? await target.setup() : undefined;
      try {
        await fc.assert(
          fc.asyncProperty(target.arbitrary, async (input) => {
            const dead = await target.run(input, ctx);
            expect(dead).toBeGreaterThanOrEqual(0);
          }),
          { numRuns: RUNS, seed: Number(process.env.GLASSWATCH_FUZZ_SEED ?? 20261130), endOnFailure: true },
        );
      } finally {
        if (target.teardown) await target.teardown(ctx);
      }
    }, 120_000);
  }

  it('the generators reach the shapes the findings used: 5,000-deep records survive serialisation', async () => {
    const doc = { Records: [{ eventID: 'deep', eventTime: '2026-11-20T22:44:12Z', eventName: 'X', requestParameters: nested(5_000) }] };
    const text = toJsonText(doc);
    expect(JSON.parse(text).Records[0].eventID).toBe('deep');
    // And the normalizer gives exactly one result for that one record, whatever it decides.
    const results = [];
    for await (const r of normalizeBuffer(Buffer.from(text), 'deep.json')) results.push(r);
    expect(results).toHaveLength(1);
  });
});
