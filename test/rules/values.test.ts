import { describe, expect, it } from 'vitest';
import { compileSelection } from '../../rules/engine/index.js';
import { parseSigmaString } from '../../rules/engine/sigma-string.js';
import { rejection, ruleMatcher } from './helpers.js';

describe('Sigma string escaping (spec §Escape Character)', () => {
  it.each([
    ['wild*cards?contained', ['wild', { wildcard: '*' }, 'cards', { wildcard: '?' }, 'contained']],
    [String.raw`escaped\*\?\\*?`, ['escaped*?\\', { wildcard: '*' }, { wildcard: '?' }]],
    [String.raw`escaped\nonspecial`, [String.raw`escaped\nonspecial`]],
    [String.raw`finalescape\ `.trimEnd(), [String.raw`finalescape\ `.trimEnd()]],
    [String.raw`C:\Windows\*`, [String.raw`C:\Windows*`]],
    [String.raw`\\\*`, [String.raw`\*`]],
    [String.raw`\\\\`, [String.raw`\\`]],
    [String.raw`\\\ `.trimEnd(), [String.raw`\\`]],
  ])('%s', (text, parts) => {
    expect(parseSigmaString(text)).toEqual(parts);
  });
});

describe('wildcards and case', () => {
  const m = (value: string) => ruleMatcher(`sel:\n  f: '${value}'\ncondition: sel`);
  it.each([
    ['foo', 'FOO', true],
    ['foo', 'foox', false], // plain values are whole-value matches
    ['foo*', 'FooBar', true],
    ['*bar', 'foobar', true],
    ['f?o', 'fxo', true],
    ['f?o', 'fo', false],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXcYYb', false],
    ['*', '', true],
    [String.raw`a\*b`, 'a*b', true],
    [String.raw`a\*b`, 'axxb', false],
    [String.raw`a\?b`, 'axb', false],
    [String.raw`C:\Windows\*`, String.raw`c:\windows*`, true],
    [String.raw`C:\Windows\\*`, String.raw`C:\Windows\System32`, true],
    ['straße', 'STRASSE', false], // toLowerCase, not full case folding
    ['ÄRGER', 'ärger', true], // non-ASCII letters are case-insensitive too
    ['', '', true],
    ['', 'x', false],
  ])('%s vs %j → %s', (pattern, value, want) => {
    expect(m(pattern)({ f: value })).toBe(want);
  });
});

describe('null, exists, "*", empty list', () => {
  const isNull = ruleMatcher('sel:\n  f: null\ncondition: sel');
  const any = ruleMatcher("sel:\n  f: '*'\ncondition: sel");
  const notNull = ruleMatcher('sel:\n  f: null\ncondition: not sel');
  it('null matches absent or JSON null, not empty string', () => {
    expect(isNull({})).toBe(true);
    expect(isNull({ f: null })).toBe(true);
    expect(isNull({ f: '' })).toBe(false);
    expect(notNull({ f: 'x' })).toBe(true);
  });
  it("'*' matches any present non-null value, not an absent field", () => {
    expect(any({ f: '' })).toBe(true);
    expect(any({ f: 0 })).toBe(true);
    expect(any({ f: { a: 1 } })).toBe(true);
    expect(any({ f: null })).toBe(false);
    expect(any({})).toBe(false);
  });
  it("empty string value is equality with '' (not null)", () => {
    const empty = ruleMatcher("sel:\n  f: ''\ncondition: sel");
    expect(empty({ f: '' })).toBe(true);
    expect(empty({})).toBe(false);
  });
  it('`field: []` is a null check (pySigma)', () => {
    const m = ruleMatcher('sel:\n  f: []\ncondition: sel');
    expect(m({})).toBe(true);
    expect(m({ f: 'x' })).toBe(false);
  });
  it('a map with a null check ANDs it (field1 AND field2 AND field3 is null)', () => {
    const m = ruleMatcher('sel:\n  field1: value1\n  field2: 123\n  field3: null\ncondition: sel');
    expect(m({ field1: 'value1', field2: 123 })).toBe(true);
    expect(m({ field1: 'value1', field2: 123, field3: 'x' })).toBe(false);
  });
  it('rejects null inside a value list and keyword searches without a value', () => {
    expect(rejection('sel:\n  f: [a, null]\ncondition: sel')?.code).toBe('BG_RULES_VALUE');
    expect(rejection('sel:\ncondition: sel')?.code).toBe('BG_RULES_VALUE');
    expect(rejection('sel:\n  f: {a: 1}\ncondition: sel')?.path).toBe('detection.sel.f');
  });
});

describe('type coercion between rule and event', () => {
  it('string rule values match booleans and numbers by text', () => {
    expect(ruleMatcher("sel:\n  p: 'true'\ncondition: sel")({ p: true })).toBe(true);
    expect(ruleMatcher("sel:\n  p: 'false'\ncondition: sel")({ p: true })).toBe(false);
    expect(ruleMatcher("sel:\n  c: '401'\ncondition: sel")({ c: 401 })).toBe(true);
  });
  it('numeric rule values match numbers and numeric strings', () => {
    const m = ruleMatcher('sel:\n  c: 401\ncondition: sel');
    expect(m({ c: 401 })).toBe(true);
    expect(m({ c: '401' })).toBe(true);
    expect(m({ c: '4010' })).toBe(false);
  });
  it('boolean rule values match JSON booleans and their text', () => {
    const m = ruleMatcher('sel:\n  b: true\ncondition: sel');
    expect(m({ b: true })).toBe(true);
    expect(m({ b: 'True' })).toBe(true);
    expect(m({ b: false })).toBe(false);
  });
  it('object-valued fields match by compact JSON (contains|all)', () => {
    const m = ruleMatcher('sel:\n  requestParameters|contains|all: [\'"Effect":"Allow"\', \'s3:*\']\ncondition: sel');
    expect(m({ requestParameters: { policy: { Effect: 'Allow', Action: 's3:*' } } })).toBe(true);
    expect(m({ requestParameters: { policy: { Effect: 'Deny', Action: 's3:*' } } })).toBe(false);
  });
});

describe('field paths', () => {
  it('resolves nested paths and any-matches across arrays', () => {
    const groups = ruleMatcher("sel:\n  user.groups: 'system:masters'\ncondition: sel");
    expect(groups({ user: { groups: ['system:authenticated', 'system:masters'] } })).toBe(true);
    expect(groups({ user: { groups: ['system:authenticated'] } })).toBe(false);
    const target = ruleMatcher('sel:\n  target.displayName|contains: admin\ncondition: sel');
    expect(target({ target: [{ displayName: 'Bob' }, { displayName: 'Super Admin' }] })).toBe(true);
    expect(target({ target: [] })).toBe(false);
  });
  it('also resolves literal dotted keys, and mixed groupings', () => {
    const m = ruleMatcher("sel:\n  requestParameters.roleArn: 'arn:x'\ncondition: sel");
    expect(m({ requestParameters: { roleArn: 'arn:x' } })).toBe(true);
    expect(m({ 'requestParameters.roleArn': 'arn:x' })).toBe(true);
    const deep = ruleMatcher('sel:\n  a.b.c: v\ncondition: sel');
    expect(deep({ 'a.b': { c: 'v' } })).toBe(true);
    expect(deep({ a: { 'b.c': 'v' } })).toBe(true);
  });
  it('field names are case-sensitive', () => {
    expect(ruleMatcher('sel:\n  EventName: x\ncondition: sel')({ eventName: 'x' })).toBe(false);
  });
  it('array leaf with contains "*" (aws_new_lambda_layer_attached)', () => {
    const m = ruleMatcher("sel:\n  requestParameters.layers|contains: '*'\ncondition: sel");
    expect(m({ requestParameters: { layers: ['arn:aws:lambda:layer:1'] } })).toBe(true);
    expect(m({ requestParameters: {} })).toBe(false);
  });
});

describe('detection shapes', () => {
  it('maps are AND, lists of maps are OR, value lists are OR', () => {
    const m = ruleMatcher('sel:\n  - a: 1\n    b: 2\n  - c: [3, 4]\ncondition: sel');
    expect(m({ a: 1, b: 2 })).toBe(true);
    expect(m({ a: 1 })).toBe(false);
    expect(m({ c: 4 })).toBe(true);
  });
  it('keyword lists search every string leaf (OR); |all makes them AND', () => {
    const kw = ruleMatcher('kw:\n  - keyword1\n  - 123\ncondition: kw');
    expect(kw({ deep: { list: ['x', 'KEYWORD1'] } })).toBe(true);
    expect(kw({ n: 123 })).toBe(true);
    expect(kw({ a: 'keyword1x' })).toBe(false);
    const all = ruleMatcher("kw:\n  '|all': [alpha, beta]\ncondition: kw");
    expect(all({ a: 'alpha', b: { c: 'beta' } })).toBe(true);
    expect(all({ a: 'alpha' })).toBe(false);
    const contains = ruleMatcher("kw:\n  '|contains': evil\ncondition: kw");
    expect(contains({ a: ['x', 'an evil string'] })).toBe(true);
  });
  it('unbound values keep wildcards (value*1, value?2)', () => {
    const kw = ruleMatcher("kw:\n  - 'value*1'\n  - 'value?2'\ncondition: kw");
    expect(kw({ a: 'valueXX1' })).toBe(true);
    expect(kw({ a: 'valueX2' })).toBe(true);
    expect(kw({ a: 'valueXX2' })).toBe(false);
  });
  it('two keyword items in one map are AND of two ORs', () => {
    const m = ruleMatcher("kw:\n  '|contains': [a1, a2]\n  '|startswith': [b1, b2]\ncondition: kw");
    expect(m({ x: 'xa2', y: 'b1y' })).toBe(true);
    expect(m({ x: 'xa2' })).toBe(false);
  });
  it('value lists mixing plain, wildcard and regex-free values are ORs of per-value tests', () => {
    const m = ruleMatcher("sel:\n  f: [plain, 'wild*', 42]\ncondition: sel");
    expect(m({ f: 'wildcat' })).toBe(true);
    expect(m({ f: 42 })).toBe(true);
    expect(m({ f: 'plainx' })).toBe(false);
  });
  it('overlapping contains|all selections under 1 of selection*', () => {
    const m = ruleMatcher('selection1:\n  f|contains|all: [a, b]\nselection2:\n  f|contains|all: [c, d, e, g]\ncondition: 1 of selection*');
    expect(m({ f: 'ab' })).toBe(true);
    expect(m({ f: 'cdeg' })).toBe(true);
    expect(m({ f: 'acd' })).toBe(false);
  });
});

describe('compileSelection (bare selections for the detector team)', () => {
  it('compiles a map, a list of maps, with modifiers', () => {
    const one = compileSelection({ 'userIdentity.arn|contains': ':assumed-role/BreakGlass' }, { path: 'identities.aws' });
    expect(one({ userIdentity: { arn: 'arn:aws:sts::1:assumed-role/BreakGlass/alice' } })).toBe(true);
    expect(one({ userIdentity: { arn: 'arn:aws:sts::1:assumed-role/Dev/alice' } })).toBe(false);
    const many = compileSelection([{ 'userIdentity.arn|contains': ':assumed-role/BreakGlass' }, { 'userIdentity.type': 'Root' }], {
      path: 'identities.aws',
    });
    expect(many({ userIdentity: { type: 'Root' } })).toBe(true);
    expect(many({ 'actor.alternateId': 'x' })).toBe(false);
  });
  it('throws a coded error naming the path', () => {
    expect(() => compileSelection({ 'a|nope': 'x' }, { path: 'identities.okta' })).toThrow(
      /identities\.okta\.a\|nope: unknown modifier 'nope'/,
    );
  });
});
