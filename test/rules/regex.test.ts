import { describe, expect, it } from 'vitest';
import { compileLinearRegex } from '../../rules/engine/index.js';

const NO = { i: false, m: false, s: false };
const re = (p: string, flags: Partial<typeof NO> = {}) => compileLinearRegex(p, { ...NO, ...flags });

describe('linear-time regex engine', () => {
  it.each([
    ['foo', 'xxfooxx', true], // unanchored search
    ['^foo', 'xfoo', false],
    ['foo$', 'afoo', true],
    ['foo$', 'foo\n', false], // RE2: `$` is end of text without m
    ['a.b', 'a\nb', false],
    ['\\bfoo\\b', 'a foo b', true],
    ['\\bfoo\\b', 'afoo', false],
    ['\\Bfoo', 'afoo', true],
    ['[a-c]{2,3}x', 'zzabx', true],
    ['x{2}', 'xax', false],
    ['(?:ab)+c', 'ababc', true],
    ['(?P<name>a)b', 'ab', true],
    ['\\d{3}-\\w+\\s', '123-abc ', true],
    ['[^\\\\]{3}$', 'a\\bcd', true],
    ['[[:digit:]]+', 'a1', true],
    ['a{,2}', 'a{,2}', true], // not a count: literal braces, as in RE2/PCRE
    ['\\x41\\u0042', 'AB', true],
    ['\\-\\"\\/', '-"/', true], // identity escapes PCRE accepts
    ['.+:assumed-role/aws:.+', 'arn:aws:sts::1:assumed-role/aws:ec2/i-1', true],
    ['(^0oa.*|[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,10})', 'john@example.com', true],
    ['(^0oa.*|[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,10})', 'hunter2', false],
  ])('/%s/ on %j → %s', (pattern, text, want) => {
    expect(re(pattern).test(text)).toBe(want);
  });

  it('honours the i, m and s flags and leading inline groups', () => {
    expect(re('ABC', { i: true }).test('xabcx')).toBe(true);
    expect(re('ABC').test('abc')).toBe(false);
    expect(re('^foo$', { m: true }).test('x\nfoo\ny')).toBe(true);
    expect(re('a.b', { s: true }).test('a\nb')).toBe(true);
    expect(re('(?i)abc').test('ABC')).toBe(true);
    expect(re('(?s)a.c').test('a\nc')).toBe(true);
    expect(re('(?m)^b').test('a\nb')).toBe(true);
    expect(re('(?is)a.c').test('A\nC')).toBe(true);
    expect(re('a(?i:b)c').test('aBc')).toBe(true);
    expect(re('a(?i:b)c').test('aBC')).toBe(false);
    expect(re('é', { i: true }).test('É')).toBe(true);
  });

  it.each([
    ['(a)\\1', 'backreferences'],
    ['x(?=y)', 'lookaround'],
    ['(?<!x)a', 'lookaround'],
    ['(?>a)', 'atomic'],
    ['a++', 'possessive'],
    ['(test.*', 'missing )'],
    ['*a', 'nothing to repeat'],
    ['a{2000}', 'above 1000'],
    ['\\p{L}', 'unsupported escape'],
    ['[z-a]', 'invalid character range'],
  ])('rejects %s (%s)', (pattern, message) => {
    expect(() => re(pattern)).toThrow(message);
  });

  it('runs the classic ReDoS pattern (a+)+$ in milliseconds', () => {
    const hostile = re('(a+)+$');
    const t0 = performance.now();
    expect(hostile.test(`${'a'.repeat(30)}!`)).toBe(false);
    expect(hostile.test(`${'a'.repeat(100_000)}!`)).toBe(false);
    expect(performance.now() - t0).toBeLessThan(200);
  });

  it('stays linear on nested and counted repetitions', () => {
    const t0 = performance.now();
    expect(re('(x+x+)+y').test('x'.repeat(50_000))).toBe(false);
    expect(re('(.*a){20}').test('a'.repeat(5_000))).toBe(true);
    expect(re('.{1000,}').test('x'.repeat(999))).toBe(false);
    expect(re('.{1000,}').test('x'.repeat(1000))).toBe(true);
    expect(performance.now() - t0).toBeLessThan(1_000);
  });
});
