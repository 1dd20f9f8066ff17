/**
 * Detector rules fail closed (issue 10 item 5): rules that do not load stop the detector
 * with one message listing every failure, unless `detector.allowRuleErrors: true`, and
 * then every summary says so. `detector.rules` adds to the built-in break-glass pack;
 * `detector.builtinRules: false` drops it, and the summary says that too.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fail, printDetectorSummary } from '../../cli/output.js';
import { ConfigError, parseConfig } from '../../core/config.js';
import { GlasswatchError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import { breakGlassPackDir, buildDetector, ruleLoadWarnings } from '../../detectors/build.js';
import { listRuleFiles, loadRules } from '../../rules/engine/index.js';

const IDENTITIES = [{ id: 'aws-root', source: 'cloudtrail', match: { 'userIdentity.type': 'Root' }, revocation: { mode: 'manual' } }];

const rule = (title: string, eventName: string) => `title: ${title}
logsource: {product: aws, service: cloudtrail}
detection:
    sel: {eventName: ${eventName}}
    condition: sel
level: high
`;

function rulesDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'gw-det-rules-'));
  const rules = join(dir, 'rules');
  mkdirSync(rules);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(rules, name), text);
  return rules;
}

const build = (detector: Record<string, unknown>) =>
  buildDetector({
    config: parseConfig({ identities: IDENTITIES, detector }, 'glasswatch.yml'),
    store: null,
    log: silentLogger,
    clock: 'replay',
  });

const PACK_RULES = loadRules([breakGlassPackDir()]).rules.length;

const BAD = {
  'bad-condition.yml': rule('Bad condition', 'X').replace('condition: sel', 'condition: sel and missing'),
  'bad-modifier.yml': rule('Bad modifier', 'X').replace('eventName:', 'eventName|bogus:'),
};

describe('detector rules', () => {
  let stderr: string[];
  beforeEach(() => {
    stderr = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr.push(String(chunk));
      return true;
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it('the built-in pack loads cleanly on its own (the baseline these tests compare with)', async () => {
    expect(listRuleFiles(breakGlassPackDir()).length).toBeGreaterThan(10);
    expect(loadRules([breakGlassPackDir()]).rejected).toEqual([]);
    const b = await build({});
    expect(b.rulesLoaded).toBe(PACK_RULES);
    expect(b.builtinRules).toBe(true);
    expect(ruleLoadWarnings(b)).toEqual([]);
  });

  it('detector.rules adds to the built-in pack instead of replacing it', async () => {
    const b = await build({ rules: [rulesDir({ 'mine.yml': rule('Mine', 'StopLogging') })] });
    expect(b.rulesLoaded).toBe(PACK_RULES + 1);
    expect(ruleLoadWarnings(b)).toEqual([]);
  });

  it('naming the pack folder in detector.rules does not load it twice', async () => {
    const b = await build({ rules: [breakGlassPackDir()] });
    expect(b.rulesLoaded).toBe(PACK_RULES);
  });

  it('a rule of detector.rules with the id of a pack rule replaces it (tuning a copy does not run both)', async () => {
    const packFile = join(breakGlassPackDir(), 'aws_root_activity.yml');
    const packRule = loadRules([packFile]).rules[0];
    const tuned = readFileSync(packFile, 'utf8').replace(/^title: .*$/m, 'title: Tuned root activity');
    const b = await build({ rules: [rulesDir({ 'aws_root_activity.yml': tuned })] });
    expect(b.rulesLoaded).toBe(PACK_RULES);
    const titles = b.detector.options.engine?.rules.filter((r) => r.id === packRule?.id).map((r) => r.title);
    expect(titles).toEqual(['Tuned root activity']);
  });

  it('detector.builtinRules: false drops the pack, and the summary says so', async () => {
    const b = await build({ builtinRules: false, rules: [rulesDir({ 'mine.yml': rule('Mine', 'StopLogging') })] });
    expect(b.rulesLoaded).toBe(1);
    expect(b.builtinRules).toBe(false);
    expect(ruleLoadWarnings(b).join('\n')).toMatch(/built-in break-glass rule pack is off \(detector\.builtinRules: false\)/);
    printDetectorSummary(b);
    expect(stderr.join('')).toMatch(/WARNING: the built-in break-glass rule pack is off/);
  });

  it('rules that fail to load stop the detector: exit 2, every failure listed, what to do next', async () => {
    const dir = rulesDir({ 'good.yml': rule('Good', 'StopLogging'), ...BAD });
    const err = await build({ rules: [dir] }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GlasswatchError);
    const e = err as GlasswatchError;
    expect(e.code).toBe('BG_CONFIG_RULES');
    expect(e.message).toMatch(/2 detection rule document\(s\) failed to load/);
    expect(e.message).toContain('bad-condition.yml');
    expect(e.message).toContain('bad-modifier.yml');
    expect(e.message).toMatch(/undefined search-identifier 'missing'/);
    expect(e.message).toMatch(/unknown modifier 'bogus'/);
    expect(e.hint).toMatch(/detector\.allowRuleErrors: true/);
    expect(fail(e)).toBe(2);
    const printed = stderr.join('');
    expect(printed).toMatch(/next: fix or remove these rules/);
    expect(printed).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('a hostile rule file fails closed the same way (no stack trace)', async () => {
    const dir = rulesDir({
      'deep.yml': rule('Deep', 'X').replace('condition: sel', `condition: '${'('.repeat(3000)}sel${')'.repeat(3000)}'`),
    });
    await expect(build({ rules: [dir] })).rejects.toMatchObject({ code: 'BG_CONFIG_RULES', stage: 'config' });
  });

  it('detector.allowRuleErrors: true runs the rules that loaded, and the summary warns', async () => {
    const dir = rulesDir({ 'good.yml': rule('Good', 'StopLogging'), ...BAD });
    const b = await build({ rules: [dir], allowRuleErrors: true });
    expect(b.rulesLoaded).toBe(PACK_RULES + 1);
    expect(b.rulesRejected).toHaveLength(2);
    expect(ruleLoadWarnings(b)).toEqual([
      expect.stringMatching(/^WARNING: 2 detection rule document\(s\) failed to load and are not running/),
    ]);
    printDetectorSummary(b);
    expect(stderr.join('')).toMatch(/WARNING: 2 detection rule document\(s\) failed to load/);
  });

  it('the new keys are validated: wrong types and unknown keys are errors', async () => {
    await expect(build({ allowRuleErrors: 'yes' })).rejects.toThrow(ConfigError);
    await expect(build({ allowRuleErrors: 'yes' })).rejects.toThrow(/detector\.allowRuleErrors: must be true or false/);
    await expect(build({ builtinRules: 0 })).rejects.toThrow(/detector\.builtinRules: must be true or false/);
    await expect(build({ allowRuleError: true })).rejects.toThrow(/allowRuleError/);
  });
});
