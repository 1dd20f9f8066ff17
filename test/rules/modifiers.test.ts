import { describe, expect, it } from 'vitest';
import { rejection, ruleMatcher } from './helpers.js';

type Case = [detection: string, event: Record<string, unknown>, expected: boolean];
const check = (cases: Case[]) =>
  it.each(cases)('%s on %j → %s', (detection, event, expected) => {
    expect(ruleMatcher(detection)(event)).toBe(expected);
  });

describe('contains / startswith / endswith', () => {
  const d = (mod: string, v: string) => `sel:\n  f|${mod}: '${v}'\ncondition: sel`;
  check([
    [d('contains', 'foobar'), { f: 'xxFOOBARxx' }, true],
    [d('contains', '*foobar'), { f: 'xfoobarx' }, true], // no doubled wildcard, still contains
    [d('contains', 'foobar*'), { f: 'xfoobarx' }, true],
    [d('contains', 'foo*bar'), { f: 'afooXXbarb' }, true],
    [d('contains', 'foobar'), { f: 'fooba' }, false],
    [d('startswith', 'foo'), { f: 'Foobar' }, true],
    [d('startswith', 'foo'), { f: 'xfoo' }, false],
    [d('startswith', 'va*lue'), { f: 'vaXXlue-tail' }, true], // inner wildcard kept
    [d('endswith', 'bar'), { f: 'fooBAR' }, true],
    [d('endswith', 'bar'), { f: 'barx' }, false],
  ]);
  it('a trailing escaped backslash stays literal and does not escape the added wildcard', () => {
    const m = ruleMatcher(String.raw`sel:
  f|contains: 'foobar\\'
condition: sel`);
    expect(m({ f: String.raw`xxfoobar\yy` })).toBe(true);
    expect(m({ f: 'xxfoobaryy' })).toBe(false);
    const s = ruleMatcher(String.raw`sel:
  f|startswith: 'foobar\\'
condition: sel`);
    expect(s({ f: String.raw`foobar\tail` })).toBe(true);
  });
});

describe('all, neq, cased, exists', () => {
  check([
    ['sel:\n  f|contains|all: [a, b, 123]\ncondition: sel', { f: 'xa-b-123' }, true],
    ['sel:\n  f|contains|all: [a, b, 123]\ncondition: sel', { f: 'xa-b' }, false],
    ["sel:\n  f|all: ['val1*', val2]\ncondition: sel", { f: ['val1x', 'val2'] }, true],
    ['sel:\n  f|neq: val1\ncondition: sel', { f: 'val2' }, true],
    ['sel:\n  f|neq: val1\ncondition: sel', { f: 'VAL1' }, false],
    ['sel:\n  f|neq: [val1, val2]\ncondition: sel', { f: 'val2' }, false],
    ['sel:\n  f|neq: val1\ncondition: sel', {}, true], // negation semantics: absent field is different
    ['sel:\n  f|neq: 5\ncondition: sel', { f: 6 }, true],
    ['sel:\n  f|cased: FooBar\ncondition: sel', { f: 'FooBar' }, true],
    ['sel:\n  f|cased: FooBar\ncondition: sel', { f: 'foobar' }, false],
    ['sel:\n  f|contains|cased: Bar\ncondition: sel', { f: 'FooBarX' }, true],
    ['sel:\n  f|exists: true\ncondition: sel', { f: null }, true],
    ['sel:\n  f|exists: true\ncondition: sel', {}, false],
    ['sel:\n  f|exists: false\ncondition: sel', {}, true],
    ['sel:\n  f|exists: yes\ncondition: sel', { f: '' }, true], // YAML 1.1 boolean accepted for exists
    ['sel:\n  f|exists: no\ncondition: sel', { f: 1 }, false],
  ]);
});

describe('re and its flags', () => {
  check([
    ["sel:\n  f|re: 'foo?bar.*'\ncondition: sel", { f: 'xfobar' }, true], // `?` is regex, not a Sigma wildcard
    ["sel:\n  f|re: 'Foo'\ncondition: sel", { f: 'foo' }, false], // regexes are case-sensitive
    ["sel:\n  f|re|i: 'Foo'\ncondition: sel", { f: 'xfoo' }, true],
    ["sel:\n  f|re|ignorecase: 'Foo'\ncondition: sel", { f: 'foo' }, true],
    ["sel:\n  f|re|m: '^b$'\ncondition: sel", { f: 'a\nb\nc' }, true],
    ["sel:\n  f|re: '^b$'\ncondition: sel", { f: 'a\nb\nc' }, false],
    ["sel:\n  f|re|s: 'a.c'\ncondition: sel", { f: 'a\nc' }, true],
    ["sel:\n  f|re: '(?i)^abc'\ncondition: sel", { f: 'ABCD' }, true],
    [
      String.raw`sel:
  f|re: 'foo\\bar'
condition: sel`,
      { f: String.raw`foo\bar` },
      true,
    ], // backslashes passed through unchanged
    ["sel:\n  f|re|contains: 'b.r'\ncondition: sel", { f: 'xbarx' }, true],
  ]);
});

describe('encodings', () => {
  check([
    ['sel:\n  f|base64: foobar\ncondition: sel', { f: 'Zm9vYmFy' }, true],
    ['sel:\n  f|base64|contains: foobar\ncondition: sel', { f: 'xxZm9vYmFyxx' }, true],
    ['sel:\n  f|base64offset|contains: foobar\ncondition: sel', { f: 'xxZm9vYmFy' }, true],
    ['sel:\n  f|base64offset|contains: foobar\ncondition: sel', { f: 'xxZvb2Jhcxx' }, true],
    ['sel:\n  f|base64offset|contains: foobar\ncondition: sel', { f: 'xmb29iYXx' }, true],
    ['sel:\n  f|base64offset|contains: foobar\ncondition: sel', { f: 'Zm9vYmF' }, false],
    ["sel:\n  f|wide|contains: 'ab'\ncondition: sel", { f: 'xa\u0000b\u0000x' }, true],
    ["sel:\n  f|utf16le|contains: 'ab'\ncondition: sel", { f: 'a\u0000b\u0000' }, true],
    ["sel:\n  f|utf16be: 'ab'\ncondition: sel", { f: '\u0000a\u0000b' }, true],
    ["sel:\n  f|utf16: 'ab'\ncondition: sel", { f: '\u00ff\u00fea\u0000b\u0000' }, true],
    // `cmd` as UTF-16LE, base64: YABtAGQA
    ["sel:\n  f|wide|base64: 'cmd'\ncondition: sel", { f: 'YwBtAGQA' }, true],
    ["sel:\n  f|wide|base64offset|contains: 'cmd'\ncondition: sel", { f: 'xxxYwBtAGQAxx' }, true],
  ]);
});

describe('windash', () => {
  const m = ruleMatcher("sel:\n  f|windash|contains: '-param-1 -param2'\ncondition: sel");
  it.each(['-', '/', '\u2013', '\u2014', '\u2015'])('accepts %s at word starts', (dash) => {
    expect(m({ f: `cmd ${dash}param-1 ${dash}param2` })).toBe(true);
  });
  it('keeps the inner dash of param-1', () => {
    expect(m({ f: 'cmd /param/1 /param2' })).toBe(false);
  });
  it('stays OR inside each value under all', () => {
    const all = ruleMatcher("sel:\n  f|windash|contains|all: ['-foo', '-bar']\ncondition: sel");
    expect(all({ f: '/foo \u2013bar' })).toBe(true);
    expect(all({ f: '/foo' })).toBe(false);
  });
});

describe('numeric comparisons and time parts', () => {
  check([
    ['sel:\n  f|lt: 10\ncondition: sel', { f: 9 }, true],
    ['sel:\n  f|lt: 10\ncondition: sel', { f: 10 }, false],
    ['sel:\n  f|lte: 10\ncondition: sel', { f: '10' }, true],
    ['sel:\n  f|gt: 10\ncondition: sel', { f: 10.5 }, true],
    ['sel:\n  f|gte: 10\ncondition: sel', { f: 9 }, false],
    ['sel:\n  f|gte: 10\ncondition: sel', { f: 'abc' }, false],
    ['sel:\n  t|minute: 5\ncondition: sel', { t: '2024-03-10T22:05:00Z' }, true],
    ['sel:\n  t|hour: 22\ncondition: sel', { t: '2024-03-10T22:05:00Z' }, true],
    ['sel:\n  t|hour|gte: 20\ncondition: sel', { t: '2024-03-10T21:00:00Z' }, true],
    ['sel:\n  t|hour|lt: 6\ncondition: sel', { t: '2024-03-10T21:00:00Z' }, false],
    ['sel:\n  t|day: 10\ncondition: sel', { t: '2024-03-10T22:05:00Z' }, true],
    ['sel:\n  t|week: 10\ncondition: sel', { t: '2024-03-10T22:05:00Z' }, true], // ISO week of 2024-03-10
    ['sel:\n  t|month: 3\ncondition: sel', { t: '2024-03-10T22:05:00Z' }, true],
    ['sel:\n  t|year: 2024\ncondition: sel', { t: '2024-03-10 22:05:00.000000000' }, true],
  ]);
});

describe('cidr', () => {
  check([
    ['sel:\n  ip|cidr: 192.168.0.0/16\ncondition: sel', { ip: '192.168.44.1' }, true],
    ['sel:\n  ip|cidr: 192.168.0.0/16\ncondition: sel', { ip: '192.169.0.1' }, false],
    ['sel:\n  ip|cidr: [10.0.0.0/8, 172.16.0.0/12]\ncondition: sel', { ip: '172.31.255.255' }, true],
    ['sel:\n  ip|cidr: 192.168.1.0/31\ncondition: sel', { ip: '192.168.1.1' }, true],
    ['sel:\n  ip|cidr: 0.0.0.0/0\ncondition: sel', { ip: '8.8.8.8' }, true],
    ["sel:\n  ip|cidr: '2001:db8::/32'\ncondition: sel", { ip: '2001:db8:1::5' }, true],
    ["sel:\n  ip|cidr: '2001:db8::/32'\ncondition: sel", { ip: '2001:db9::1' }, false],
    ["sel:\n  ip|cidr: 'fe80::/64'\ncondition: sel", { ip: 'fe80::1%eth0' }, true],
    ["sel:\n  ip|cidr: '::/0'\ncondition: sel", { ip: '::1' }, true],
    ['sel:\n  ip|cidr: 10.0.0.0/8\ncondition: sel', { ip: '::ffff:10.1.2.3' }, true],
    ['sel:\n  ip|cidr: 10.0.0.0/8\ncondition: sel', { ip: '100.200.300.400' }, false],
  ]);
});

describe('fieldref', () => {
  check([
    ['sel:\n  a|fieldref: b\ncondition: sel', { a: 'Bob', b: 'bob' }, true],
    ['sel:\n  a|fieldref: b\ncondition: sel', { a: 'bob', b: 'alice' }, false],
    ['sel:\n  a|fieldref: b\ncondition: sel', { a: 'bob' }, false],
    ['sel:\n  a|fieldref|contains: b\ncondition: sel', { a: 'xbobx', b: 'bob' }, true],
    ['sel:\n  a|fieldref|startswith: b\ncondition: sel', { a: 'bobx', b: 'bob' }, true],
    ['sel:\n  a|fieldref|endswith: b\ncondition: sel', { a: 'xbob', b: 'bob' }, true],
    ['sel:\n  a|fieldref|endswith: b\ncondition: sel', { a: 'bobx', b: 'bob' }, false],
    ['sel:\n  a|fieldref|neq: b\ncondition: sel', { a: 'x', b: 'y' }, true],
    [
      'sel:\n  userIdentity.arn|fieldref: requestParameters.userName\ncondition: sel',
      { userIdentity: { arn: 'u' }, requestParameters: { userName: 'U' } },
      true,
    ],
  ]);
});

describe('expand', () => {
  const placeholders = { Admins: ['root', 'adm_*'], Domain: ['corp'] };
  it('expands placeholders from configuration (cartesian product, wildcards allowed)', () => {
    const m = ruleMatcher("sel:\n  u|expand: '%Domain%\\\\%Admins%'\ncondition: sel", { placeholders });
    expect(m({ u: 'corp\\root' })).toBe(true);
    expect(m({ u: 'CORP\\adm_alice' })).toBe(true);
    expect(m({ u: 'corp\\alice' })).toBe(false);
    const c = ruleMatcher("sel:\n  u|contains|expand: '%Admins%'\ncondition: sel", { placeholders });
    expect(c({ u: 'x adm_bob y' })).toBe(true);
  });
  it('keeps %text% literal without expand and \\% literal with it', () => {
    expect(ruleMatcher("sel:\n  u: '%Admins%'\ncondition: sel")({ u: '%admins%' })).toBe(true);
    expect(ruleMatcher("sel:\n  u|expand: '50\\%'\ncondition: sel", { placeholders })({ u: '50%' })).toBe(true);
  });
  it('expands inside regexes as an escaped alternation', () => {
    const m = ruleMatcher("sel:\n  u|re|expand: '^%Domain%\\.'\ncondition: sel", { placeholders });
    expect(m({ u: 'corp.x' })).toBe(true);
  });
  it('rejects an unresolved placeholder with a clear reason', () => {
    const r = rejection("sel:\n  u|expand: '%Nope%'\ncondition: sel");
    expect(r?.code).toBe('BG_RULES_UNRESOLVED_PLACEHOLDER');
    expect(r?.path).toBe('detection.sel.u|expand');
    expect(r?.reason).toContain('%Nope%');
  });
});

describe('invalid modifier use is rejected at load time', () => {
  it.each([
    ['sel:\n  f|foobar: x\ncondition: sel', 'BG_RULES_UNKNOWN_MODIFIER', 'detection.sel.f|foobar'],
    ['sel:\n  f|base64: foo*bar\ncondition: sel', 'BG_RULES_MODIFIER', 'detection.sel.f|base64'],
    ['sel:\n  f|base64offset: foo*bar\ncondition: sel', 'BG_RULES_MODIFIER', 'detection.sel.f|base64offset'],
    ["sel:\n  f|re|base64offset: 'x'\ncondition: sel", 'BG_RULES_MODIFIER', 'detection.sel.f|re|base64offset'],
    ['sel:\n  f|wide: foobär\ncondition: sel', 'BG_RULES_MODIFIER', 'detection.sel.f|wide'],
    ["sel:\n  f|contains|re: 'x'\ncondition: sel", 'BG_RULES_MODIFIER', 'detection.sel.f|contains|re'],
    ["sel:\n  f|i: 'x'\ncondition: sel", 'BG_RULES_MODIFIER', 'detection.sel.f|i'],
    ["sel:\n  f|gte: '123'\ncondition: sel", 'BG_RULES_MODIFIER', 'detection.sel.f|gte'],
    ['sel:\n  f|fieldref: fie*ld\ncondition: sel', 'BG_RULES_MODIFIER', 'detection.sel.f|fieldref'],
    ["sel:\n  '|exists': true\ncondition: sel", 'BG_RULES_MODIFIER', 'detection.sel.|exists'],
    ['sel:\n  f|base64|exists: true\ncondition: sel', 'BG_RULES_MODIFIER', 'detection.sel.f|base64|exists'],
    ['sel:\n  f|exists: maybe\ncondition: sel', 'BG_RULES_MODIFIER', 'detection.sel.f|exists'],
    ['sel:\n  f|cidr: 192.168.1.1/24\ncondition: sel', 'BG_RULES_CIDR', 'detection.sel.f|cidr'],
    ['sel:\n  f|contains|cidr: 10.0.0.0/8\ncondition: sel', 'BG_RULES_MODIFIER', 'detection.sel.f|contains|cidr'],
    ["sel:\n  f|re: '(test.*'\ncondition: sel", 'BG_RULES_REGEX', 'detection.sel.f|re'],
    ["sel:\n  f|re: '(a)\\1'\ncondition: sel", 'BG_RULES_REGEX', 'detection.sel.f|re'],
    ['sel:\n  f|all: single\ncondition: sel', 'BG_RULES_MODIFIER', 'detection.sel.f|all'],
    ['sel:\n  f|cased: 5\ncondition: sel', 'BG_RULES_MODIFIER', 'detection.sel.f|cased'],
    ['sel:\n  f|hour: 2.5\ncondition: sel', 'BG_RULES_MODIFIER', 'detection.sel.f|hour'],
  ])('%s → %s at %s', (detection, code, path) => {
    const r = rejection(detection);
    expect(r?.code).toBe(code);
    expect(r?.path).toBe(path);
    expect(r?.file).toBe('inline.yml');
    expect(r?.ruleId).toBe('5b2c7a1e-1111-4a4a-9b9b-000000000001');
  });
});
