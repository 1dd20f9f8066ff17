import { describe, expect, it } from 'vitest';
import { parseCondition } from '../../rules/engine/condition.js';
import { rejection, ruleMatcher } from './helpers.js';

// Five detections, each true when its own field is set to 1.
const DETECTIONS = `detection1:\n  d1: 1\ndetection2:\n  d2: 1\ndetection3:\n  d3: 1\ndetection_4:\n  d4: 1\nother:\n  o: 1`;
const NAMES = ['detection1', 'detection2', 'detection3', 'detection_4', 'other'];
const rule = (condition: string) => ruleMatcher(`${DETECTIONS}\ncondition: ${condition}`);
/** Event with the listed detections true. */
const ev = (...on: number[]) => Object.fromEntries(on.map((n) => [n === 5 ? 'o' : `d${n}`, 1]));

/** Exhaustive truth table over the five detections against a reference function. */
function agrees(condition: string, reference: (d: boolean[]) => boolean): void {
  const m = rule(condition);
  for (let mask = 0; mask < 32; mask++) {
    const bits = [0, 1, 2, 3, 4].map((i) => (mask & (1 << i)) !== 0);
    const on = bits.flatMap((b, i) => (b ? [i + 1] : []));
    expect(m(ev(...on)), `${condition} with ${JSON.stringify(on)}`).toBe(reference(bits));
  }
}

describe('condition semantics (truth tables)', () => {
  it.each<[string, (d: boolean[]) => boolean]>([
    ['detection1 or detection2', ([a, b]) => !!(a || b)],
    ['detection1 and detection2', ([a, b]) => !!(a && b)],
    ['not detection1', ([a]) => !a],
    ['detection1 or detection2 or detection3', ([a, b, c]) => !!(a || b || c)],
    // precedence: not > and > or
    ['detection1 and not detection2 or not detection3 and detection_4', ([a, b, c, d]) => !!((a && !b) || (!c && d))],
    ['(detection1 or not detection2) and not (detection3 or detection_4)', ([a, b, c, d]) => !!((a || !b) && !(c || d))],
    ['detection1 and (detection2 or detection3)', ([a, b, c]) => !!(a && (b || c))],
    ['not not detection1', ([a]) => !!a],
    ['1 of detection*', ([a, b, c, d]) => !!(a || b || c || d)],
    ['any of detection*', ([a, b, c, d]) => !!(a || b || c || d)],
    ['all of detection*', ([a, b, c, d]) => !!(a && b && c && d)],
    ['not 1 of detection*', ([a, b, c, d]) => !(a || b || c || d)],
    ['1 of them', (d) => d.some(Boolean)],
    ['all of them', (d) => d.every(Boolean)],
    ['any of them', (d) => d.some(Boolean)],
    ['other and not 1 of detection*', ([a, b, c, d, o]) => !!(o && !(a || b || c || d))],
    ['1 of *_4 or other', ([, , , d, o]) => !!(d || o)],
  ])('%s', (condition, reference) => agrees(condition, reference));

  it('a condition list is OR-linked and the match records which alternative fired', () => {
    const m = rule('[detection1, detection3]');
    expect(m(ev(3))).toBe(true);
    expect(m(ev(2))).toBe(false);
  });
});

describe('condition parsing', () => {
  it('parses once into an AST with resolved selectors', () => {
    expect(parseCondition('d1 and not 1 of d*', ['d1', 'd2'], 'c')).toEqual({
      kind: 'and',
      args: [
        { kind: 'ref', name: 'd1' },
        { kind: 'not', arg: { kind: 'of', quantifier: 'any', pattern: 'd*', names: ['d1', 'd2'] } },
      ],
    });
  });
  it('an exact selector pattern is a full match, not a prefix', () => {
    expect(parseCondition('1 of selection', ['selection', 'selection_extra'], 'c')).toMatchObject({ names: ['selection'] });
  });
  it('`_`-prefixed identifiers are excluded from them and patterns unless the pattern starts with _', () => {
    expect(parseCondition('1 of them', ['a', '_b'], 'c')).toMatchObject({ names: ['a'] });
    expect(parseCondition('1 of *', ['a', '_b'], 'c')).toMatchObject({ names: ['a'] });
    expect(parseCondition('1 of _*', ['a', '_b'], 'c')).toMatchObject({ names: ['_b'] });
  });
  it('operators are whole words: identifiers like notable and order_x work', () => {
    expect(parseCondition('notable and not order_x', ['notable', 'order_x'], 'c')).toMatchObject({ kind: 'and' });
    expect(parseCondition('1 of order_*', ['order_x', 'ordinary'], 'c')).toMatchObject({ names: ['order_x'] });
  });

  it.each([
    ['detection1 and', 'BG_RULES_CONDITION', 'end of condition'],
    ['detection1 and (detection2 OR detection3)', 'BG_RULES_CONDITION', 'lower case'],
    ['detection1 and not (detection2 or detection3', 'BG_RULES_CONDITION', "expected ')'"],
    ['detection1 AND detection2', 'BG_RULES_CONDITION', 'lower case'],
    ['undefined_one', 'BG_RULES_CONDITION', "undefined search-identifier 'undefined_one'"],
    ['1 of nomatch*', 'BG_RULES_CONDITION', 'matches no search-identifier'],
    ['detection1 | count() by src_ip > 50', 'BG_RULES_DEPRECATED_SYNTAX', 'pipe syntax'],
    ['detection1 near detection2', 'BG_RULES_CONDITION', "unexpected 'near'"],
    ['detection*', 'BG_RULES_CONDITION', "needs '1 of'"],
    ['', 'BG_RULES_CONDITION', 'empty'],
    ['()', 'BG_RULES_CONDITION', "unexpected ')'"],
  ])('rejects %j', (condition, code, message) => {
    const r = rejection(`${DETECTIONS}\ncondition: '${condition}'`);
    expect(r?.code).toBe(code);
    expect(r?.reason).toContain(message);
    expect(r?.path).toBe('detection.condition');
  });

  it('rejects a missing condition and the removed timeframe', () => {
    expect(rejection('sel:\n  a: 1')?.reason).toContain("'condition' is missing");
    const r = rejection('sel:\n  a: 1\ntimeframe: 5m\ncondition: sel');
    expect(r?.code).toBe('BG_RULES_DEPRECATED_SYNTAX');
    expect(r?.path).toBe('detection.timeframe');
  });
  it('names every identifier the truth tables use', () => {
    expect(parseCondition('all of them', NAMES, 'c')).toMatchObject({ names: NAMES });
  });
});
