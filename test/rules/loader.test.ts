import { describe, expect, it } from 'vitest';
import { SigmaEngine } from '../../rules/engine/index.js';
import { load, ruleYaml } from './helpers.js';

const RULE_A = (id: string, extra = '') => `title: Rule ${id}
id: ${id}
${extra}logsource:
    product: windows
    category: process_creation
detection:
    sel:
        EventID: [4625, 4624]
    condition: sel
`;
const ID1 = '0e95725d-7320-415d-80f7-004da920fc11';
const ID2 = '0e95725d-7320-415d-80f7-004da920fc12';

describe('YAML and rule fields', () => {
  it('rejects duplicate keys naming the line', () => {
    const r = load(ruleYaml('selection:\n  a: 1\nselection:\n  a: 2\ncondition: selection')).rejected[0];
    expect(r?.code).toBe('BG_RULES_DUPLICATE_KEY');
    expect(r?.reason).toMatch(/duplicate key 'selection' \(line 9\)/);
  });
  it('rejects malformed YAML and empty documents', () => {
    expect(load('title: [unclosed\n').rejected[0]?.code).toBe('BG_RULES_YAML');
    expect(load('# only a comment\n').rejected[0]?.code).toBe('BG_RULES_EMPTY_DOCUMENT');
  });
  it('loads every v2.1 field and keeps custom attributes', () => {
    const text = `title: Full
id: ${ID1}
name: full_rule
related:
    - id: ${ID2}
      type: derived
taxonomy: sigma
status: test
description: d
license: DRL-1.1
author: Alice, Bob
references: [https://example.com]
date: 2024-01-02
modified: 2024-02-03
logsource: {product: aws, service: cloudtrail}
detection:
    sel: {eventName: X}
    condition: sel
fields: [eventName]
falsepositives: [none]
level: high
tags: [attack.t1078, detection.threat-hunting]
scope: [server]
my_custom: 42
`;
    const { rules, rejected } = load(text);
    expect(rejected).toEqual([]);
    expect(rules[0]).toMatchObject({
      id: ID1,
      name: 'full_rule',
      status: 'test',
      level: 'high',
      author: 'Alice, Bob',
      date: '2024-01-02',
      modified: '2024-02-03',
      tags: ['attack.t1078', 'detection.threat-hunting'],
      related: [{ id: ID2, type: 'derived' }],
      custom: { my_custom: 42 },
    });
  });
  it.each([
    ['logsource: {product: aws}\ndetection: {sel: {a: 1}, condition: sel}\n', 'title'],
    [`title: ${'x'.repeat(257)}\nlogsource: {product: aws}\ndetection: {sel: {a: 1}, condition: sel}\n`, 'title'],
    ['title: t\ndetection: {sel: {a: 1}, condition: sel}\n', 'logsource'],
    ['title: t\nlogsource: {product: aws}\n', 'detection'],
    ['title: t\nlogsource: {product: aws}\ndetection: [a]\n', 'detection'],
    ['title: t\nid: not-a-uuid\nlogsource: {product: aws}\ndetection: {sel: {a: 1}, condition: sel}\n', 'id'],
    ['title: t\nstatus: done\nlogsource: {product: aws}\ndetection: {sel: {a: 1}, condition: sel}\n', 'status'],
    ['title: t\nlevel: severe\nlogsource: {product: aws}\ndetection: {sel: {a: 1}, condition: sel}\n', 'level'],
    ['title: t\ndate: 2022/01-01\nlogsource: {product: aws}\ndetection: {sel: {a: 1}, condition: sel}\n', 'date'],
    ['title: t\ndate: 24-11-24\nlogsource: {product: aws}\ndetection: {sel: {a: 1}, condition: sel}\n', 'date'],
    ['title: t\ndate: 4000-01-01\nlogsource: {product: aws}\ndetection: {sel: {a: 1}, condition: sel}\n', 'date'],
    ["title: t\ndate: ' 2024-11-24'\nlogsource: {product: aws}\ndetection: {sel: {a: 1}, condition: sel}\n", 'date'],
    ['title: t\nmodified: 2024-02-30\nlogsource: {product: aws}\ndetection: {sel: {a: 1}, condition: sel}\n', 'modified'],
    ['title: t\ntags: [NotNamespaced]\nlogsource: {product: aws}\ndetection: {sel: {a: 1}, condition: sel}\n', 'tags[0]'],
    [
      `title: t\nrelated: [{id: ${ID1}, type: cousin}]\nlogsource: {product: aws}\ndetection: {sel: {a: 1}, condition: sel}\n`,
      'related[0].type',
    ],
    ['title: t\nlogsource: {product: aws}\ndetection: {sel|contains: {a: 1}, condition: sel}\n', 'detection.sel|contains'],
  ])('rejects a bad field (%#) at %s', (text, path) => {
    const r = load(text).rejected[0];
    expect(r?.code).toMatch(/^BG_RULES_/);
    expect(r?.path).toBe(path);
  });
  it('accepts the v1 date form with a warning, or rejects it in strict mode', () => {
    const text = RULE_A(ID1, 'date: 2021/08/23\n');
    const lenient = load(text);
    expect(lenient.rules[0]?.date).toBe('2021-08-23');
    expect(lenient.warnings[0]?.path).toBe('date');
    expect(load(text, { strict: true }).rejected[0]?.code).toBe('BG_RULES_DEPRECATED_SYNTAX');
  });
});

describe('multi-document files and v1 collections', () => {
  it('loads plain multi-document files; a trailing --- is ignored', () => {
    const { rules, rejected } = load(`${RULE_A(ID1)}---\n${RULE_A(ID2)}---\n`);
    expect(rejected).toEqual([]);
    expect(rules.map((r) => r.id)).toEqual([ID1, ID2]);
  });
  const GLOBAL = `action: global
title: Shared
detection:
    sel: {EventID: 1}
    condition: sel
---
logsource: {product: windows, service: sysmon}
---
logsource: {product: windows, service: security}
`;
  it('rejects action: global unless legacy collections are enabled', () => {
    expect(load(GLOBAL).rejected[0]?.code).toBe('BG_RULES_COLLECTION');
  });
  it('action: global is deep-merged into following documents (global wins)', () => {
    const { rules, rejected } = load(GLOBAL, { legacyCollections: true });
    expect(rejected).toEqual([]);
    expect(rules.map((r) => [r.title, r.logsource.service])).toEqual([
      ['Shared', 'sysmon'],
      ['Shared', 'security'],
    ]);
  });
  it('action: reset clears the template; repeat re-emits the previous rule with overrides', () => {
    const text = `${GLOBAL}---\naction: reset\n---\n${RULE_A(ID1)}---\naction: repeat\nid: ${ID2}\nlogsource: {category: network_connection}\n`;
    const { rules, rejected } = load(text, { legacyCollections: true });
    expect(rejected).toEqual([]);
    expect(rules.slice(2).map((r) => [r.title, r.id, r.logsource.category])).toEqual([
      [`Rule ${ID1}`, ID1, 'process_creation'],
      [`Rule ${ID1}`, ID2, 'network_connection'],
    ]);
  });
  it('rejects an unknown action', () => {
    expect(load('action: explode\ntitle: x\n', { legacyCollections: true }).rejected[0]?.reason).toContain(
      "unknown collection action 'explode'",
    );
  });
});

const FILTER = (rules: string, condition: string, logsource = 'product: windows') => `title: Filter admins
id: 7a1b2c3d-0000-4000-8000-000000000001
logsource:
    ${logsource}
filter:
    rules: ${rules}
    selection:
        User|startswith: 'adm_'
    condition: ${condition}
`;

function engineFor(text: string) {
  const loaded = load(text);
  expect(loaded.rejected).toEqual([]);
  // Route through a source whose logsource the windows rules do not match: use match on IR directly.
  return loaded;
}

describe('filters (meta-filters)', () => {
  const eventMatches = (text: string, event: Record<string, unknown>): boolean => {
    const loaded = engineFor(
      text
        .replace(/product: windows\n {4}category: process_creation/g, 'product: aws\n    service: cloudtrail')
        .replace(/product: windows$/gm, 'product: aws'),
    );
    return new SigmaEngine(loaded).match('cloudtrail', event).length > 0;
  };
  it('ANDs the filter condition into the rule: rule and not filter', () => {
    const text = `${RULE_A(ID1)}---\n${FILTER(`[${ID1}]`, 'not selection')}`;
    expect(eventMatches(text, { EventID: 4625, User: 'bob' })).toBe(true);
    expect(eventMatches(text, { EventID: 4625, User: 'adm_bob' })).toBe(false);
    expect(load(text).rules[0]?.filters).toEqual(['7a1b2c3d-0000-4000-8000-000000000001']);
  });
  it('rules: any applies to every rule whose logsource the filter contains', () => {
    const text = `${RULE_A(ID1)}---\n${RULE_A(ID2)}---\n${FILTER('any', 'not selection')}`;
    const { rules } = load(text);
    expect(rules.every((r) => r.filters.length === 1)).toBe(true);
  });
  it('an empty rules list means any; a single string is one reference', () => {
    expect(load(`${RULE_A(ID1)}---\n${FILTER('[]', 'not selection')}`).rules[0]?.filters).toHaveLength(1);
    expect(load(`${RULE_A(ID1)}---\n${FILTER(ID1, 'not selection')}`).rules[0]?.filters).toHaveLength(1);
  });
  it('a more specific filter logsource does not apply to a less specific rule', () => {
    const text = `${RULE_A(ID1)}---\n${FILTER('any', 'not selection', 'product: windows\n    category: process_creation\n    service: sysmon')}`;
    expect(load(text).rules[0]?.filters).toEqual([]);
  });
  it('filter patterns never capture rule identifiers; not (filter) forms are equivalent', () => {
    for (const cond of [
      'not selection',
      'not (selection)',
      'not ((selection))',
      'not 1 of sel*',
      'not 1 of them',
      'not all of selection*',
    ]) {
      const text = `${RULE_A(ID1)}---\n${FILTER(`[${ID1}]`, `'${cond}'`)}`;
      expect(eventMatches(text, { EventID: 4624, User: 'adm_x' }), cond).toBe(false);
      expect(eventMatches(text, { EventID: 4624, User: 'x' }), cond).toBe(true);
    }
  });
  it('applying two filters ANDs both', () => {
    const second = FILTER(`[${ID1}]`, 'not selection').replace("'adm_'", "'svc_'").replace('000000000001', '000000000002');
    const text = `${RULE_A(ID1)}---\n${FILTER(`[${ID1}]`, 'not selection')}---\n${second}`;
    expect(eventMatches(text, { EventID: 4624, User: 'svc_x' })).toBe(false);
    expect(eventMatches(text, { EventID: 4624, User: 'adm_x' })).toBe(false);
    expect(eventMatches(text, { EventID: 4624, User: 'x' })).toBe(true);
  });
  it.each([
    [FILTER('[x]', 'not selection').replace(/ {4}rules: \[x\]\n/, ''), 'BG_RULES_FILTER', 'filter.rules'],
    [FILTER('{a: 1}', 'not selection'), 'BG_RULES_FILTER', 'filter.rules'],
    [FILTER('any', '[selection, selection]'), 'BG_RULES_FILTER', 'filter.condition'],
    [FILTER('any', 'not other'), 'BG_RULES_CONDITION', 'filter.condition'],
    [FILTER('[0e95725d-7320-415d-80f7-004da920fc99]', 'not selection'), 'BG_RULES_REFERENCE', 'filter.rules'],
  ])('rejects a malformed filter (%#)', (text, code, path) => {
    const r = load(`${RULE_A(ID1)}---\n${text}`).rejected[0];
    expect(r?.code).toBe(code);
    expect(r?.path).toBe(path);
  });
});

describe('correlation documents', () => {
  const BASE = `title: failed login
id: ${ID1}
name: failed_login
logsource: {product: aws, service: cloudtrail}
detection:
    sel: {eventName: ConsoleLogin}
    condition: sel
`;
  const corr = (body: string, head = '') => `${BASE}---\ntitle: many failures\n${head}correlation:\n${body.replace(/^/gm, '    ')}\n`;
  it('accepts rules as a single string and group-by as a string; 10m is 600 s', () => {
    const { correlations, rejected } = load(
      corr('type: event_count\nrules: failed_login\ngroup-by: user\ntimespan: 10m\ncondition: {gte: 10}'),
    );
    expect(rejected).toEqual([]);
    expect(correlations[0]).toMatchObject({
      rules: [ID1],
      groupBy: ['user'],
      timespanMs: 600_000,
      condition: { gte: 10 },
      generate: false,
    });
  });
  it('temporal defaults its condition to gte: number of rules; ranges are accepted (spec, unlike pySigma)', () => {
    expect(load(corr('type: temporal\nrules: [failed_login]\ngroup-by: [u]\ntimespan: 1h')).correlations[0]?.condition).toEqual({ gte: 1 });
    expect(
      load(corr('type: event_count\nrules: [failed_login]\ntimespan: 1h\ncondition: {gte: 10, lte: 20}')).correlations[0]?.condition,
    ).toEqual({ gte: 10, lte: 20 });
  });
  it.each([
    ['type: nope\nrules: [failed_login]\ntimespan: 1h\ncondition: {gte: 1}', 'correlation.type'],
    ['rules: [failed_login]\ntimespan: 1h\ncondition: {gte: 1}', 'correlation.type'],
    ['type: event_count\nrules: [unknown_rule]\ntimespan: 1h\ncondition: {gte: 1}', 'correlation.rules[0]'],
    ['type: event_count\ntimespan: 1h\ncondition: {gte: 1}', 'correlation.rules'],
    ['type: event_count\nrules: [failed_login]\ngroup-by: {a: 1}\ntimespan: 1h\ncondition: {gte: 1}', 'correlation.group-by'],
    ['type: event_count\nrules: [failed_login]\ntimespan: 1 hour\ncondition: {gte: 1}', 'correlation.timespan'],
    ['type: event_count\nrules: [failed_login]\ntimespan: 1M\ncondition: {gte: 1}', 'correlation.timespan'],
    ['type: event_count\nrules: [failed_login]\ncondition: {gte: 1}', 'correlation.timespan'],
    ['type: event_count\nrules: [failed_login]\ntimespan: 1h\ncondition: {between: 1}', 'correlation.condition.between'],
    ['type: event_count\nrules: [failed_login]\ntimespan: 1h\ncondition: {gte: 1.5}', 'correlation.condition.gte'],
    ['type: event_count\nrules: [failed_login]\ntimespan: 1h', 'correlation.condition'],
    ['type: value_count\nrules: [failed_login]\ntimespan: 1h\ncondition: {gte: 1}', 'correlation.condition.field'],
    ['type: value_sum\nrules: [failed_login]\ntimespan: 1h\ncondition: {gte: 1}', 'correlation.condition.field'],
    ['type: value_avg\nrules: [failed_login]\ntimespan: 1h\ncondition: {gte: 1}', 'correlation.condition.field'],
    ['type: value_percentile\nrules: [failed_login]\ntimespan: 1h\ncondition: {gte: 1}', 'correlation.condition.field'],
    ['type: value_median\nrules: [failed_login]\ntimespan: 1h\ncondition: {gte: 1, field: x}', 'correlation.type'],
  ])('rejects %j at %s', (body, path) => {
    const r = load(corr(body)).rejected[0];
    expect(r?.path).toBe(path);
  });
  it('rejects a non-boolean generate', () => {
    expect(
      load(corr('type: event_count\nrules: [failed_login]\ntimespan: 1h\ncondition: {gte: 1}', 'generate: maybe\n')).rejected[0]?.path,
    ).toBe('generate');
  });
});
