import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { isSource } from '../../core/event.js';
import { recordSource } from '../../ingest/index.js';
import { loadRules, SigmaEngine } from '../../rules/engine/index.js';

const packDir = new URL('../../rules/breakglass', import.meta.url).pathname;
const fixtureDir = new URL('../fixtures/breakglass', import.meta.url).pathname;
const loaded = loadRules([packDir]);
const engine = new SigmaEngine(loaded);
const CATEGORY = /^glasswatch\.(command|data|config)$/;

describe('break-glass rule pack', () => {
  it('loads every rule, each with exactly one review category and our authorship', () => {
    expect(loaded.rejected).toEqual([]);
    expect(loaded.rules.length).toBeGreaterThanOrEqual(30);
    for (const r of loaded.rules) {
      expect(
        r.tags.filter((t: string) => CATEGORY.test(t)),
        r.title,
      ).toHaveLength(1);
      expect(r.author).toBe('glasswatch');
    }
  });

  const files = readdirSync(fixtureDir).filter((f) => f.endsWith('.yml'));
  it('has a fixture file for every rule', () => {
    const rules = readdirSync(packDir).filter((f) => f.endsWith('.yml'));
    expect(files.sort()).toEqual(rules.sort());
  });

  for (const file of files) {
    it(`${basename(file, '.yml')}: positives match, negatives do not`, () => {
      const fixture = parse(readFileSync(join(fixtureDir, file), 'utf8')) as {
        rule: string;
        positive: Record<string, unknown>[];
        negative: Record<string, unknown>[];
      };
      expect(fixture.positive.length).toBeGreaterThan(0);
      expect(fixture.negative.length).toBeGreaterThan(0);
      const hits = (raw: Record<string, unknown>) => {
        const source = recordSource(raw);
        if (!isSource(source)) throw new Error(`fixture event of no known source in ${file}`);
        return engine.match(source, raw).map((m) => m.id);
      };
      for (const [i, raw] of fixture.positive.entries()) expect(hits(raw), `positive[${i}]`).toContain(fixture.rule);
      for (const [i, raw] of fixture.negative.entries()) expect(hits(raw), `negative[${i}]`).not.toContain(fixture.rule);
    });
  }
});
