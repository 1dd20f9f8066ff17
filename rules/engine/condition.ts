/**
 * Condition parsing: the string after `condition:` into a ConditionIR tree, parsed once
 * at load time. Grammar (pySigma's, precedence not > and > or, lower-case operators):
 *
 *   or_expr  := and_expr ("or" and_expr)*
 *   and_expr := not_expr ("and" not_expr)*
 *   not_expr := "not" not_expr | primary
 *   primary  := "(" or_expr ")" | quantifier "of" (them | pattern) | identifier
 *
 * `x of pattern` is resolved here against the identifiers of the same document, so a
 * filter's pattern can never capture identifiers of the rule it is applied to.
 */
import { SIGMA_ERROR_CODES as C, fail } from './errors.js';
import type { ConditionIR } from './ir.js';

const KEYWORDS = new Set(['and', 'or', 'not', 'of', 'them']);

/**
 * Deepest nesting of parentheses and `not` a condition may have. SigmaHQ's deepest is 2;
 * the cap keeps the recursive-descent parser (and every walk over the tree) far from the
 * stack limit, so a hostile 3,000-deep condition is a rejection, not a crash.
 */
export const MAX_CONDITION_DEPTH = 64;
/** Tokens of one condition (SigmaHQ's longest has ~50 nodes). */
export const MAX_CONDITION_TOKENS = 2_000;
/** Conditions in a condition list (SigmaHQ: 1). */
export const MAX_CONDITIONS = 64;
/** Search-identifiers all `x of …` of one condition may expand to together (SigmaHQ: 33). */
export const MAX_CONDITION_NAMES = 10_000;

interface Token {
  text: string;
  at: number;
}

function tokenize(text: string, path: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s*(?:([()])|([A-Za-z0-9_*-]+)|(\S))/gy;
  for (let m = re.exec(text); m && m[0] !== ''; m = re.exec(text)) {
    if (tokens.length >= MAX_CONDITION_TOKENS) fail(C.limit, `the condition has more than ${MAX_CONDITION_TOKENS} tokens`, path);
    const at = m.index + m[0].length - (m[1] ?? m[2] ?? m[3] ?? '').length;
    if (m[3] !== undefined) {
      if (m[3] === '|')
        fail(C.deprecated, 'the pipe syntax in conditions was removed in Sigma v2 (aggregations are correlation rules now)', path);
      fail(C.condition, `unexpected character '${m[3]}' at offset ${at}`, path);
    }
    tokens.push({ text: (m[1] ?? m[2]) as string, at });
  }
  return tokens;
}

/**
 * Selector pattern → anchored full match (pySigma): `selection` does not match `selection_extra`.
 * A glob, not a backtracking RegExp: `*a*a*…*b` against a long name stays linear per segment.
 */
export function patternMatcher(pattern: string): (name: string) => boolean {
  const segments = pattern.split('*');
  const first = segments[0] as string;
  const last = segments[segments.length - 1] as string;
  const globMatch = (name: string): boolean => {
    if (segments.length === 1) return name === first;
    if (name.length < first.length + last.length || !name.startsWith(first) || !name.endsWith(last)) return false;
    // Leftmost placement of each middle segment is optimal for `*`-only globs.
    let pos = first.length;
    const end = name.length - last.length;
    for (let i = 1; i < segments.length - 1; i++) {
      const seg = segments[i] as string;
      const at = name.indexOf(seg, pos);
      if (at < 0 || at + seg.length > end) return false;
      pos = at + seg.length;
    }
    return true;
  };
  // `_`-prefixed identifiers are hidden from `them` and patterns unless the pattern starts with `_`.
  return (name) => globMatch(name) && (pattern.startsWith('_') || !name.startsWith('_'));
}

export function parseCondition(text: string, identifiers: readonly string[], path: string): ConditionIR {
  const tokens = tokenize(text, path);
  if (tokens.length === 0) fail(C.condition, 'the condition is empty', path);
  let pos = 0;
  const peek = (): string | undefined => tokens[pos]?.text;
  const describe = (): string => {
    const tok = peek();
    if (tok === undefined) return 'end of condition';
    if (/^(and|or|not)$/i.test(tok) && !KEYWORDS.has(tok)) fail(C.condition, `operators must be lower case: '${tok}'`, path);
    return `'${tok}' at offset ${tokens[pos]?.at}`;
  };
  const known = new Set(identifiers);
  let depth = 0;
  let names = 0;
  // One glob pass per distinct pattern: a condition repeating `1 of s*` costs one scan.
  const expanded = new Map<string, string[]>();
  const enter = (): void => {
    if (++depth > MAX_CONDITION_DEPTH)
      fail(C.condition, `the condition is nested deeper than ${MAX_CONDITION_DEPTH} levels (parentheses and 'not')`, path);
  };

  const orExpr = (): ConditionIR => {
    const args = [andExpr()];
    while (peek() === 'or') {
      pos++;
      args.push(andExpr());
    }
    return args.length === 1 ? (args[0] as ConditionIR) : { kind: 'or', args };
  };
  const andExpr = (): ConditionIR => {
    const args = [notExpr()];
    while (peek() === 'and') {
      pos++;
      args.push(notExpr());
    }
    return args.length === 1 ? (args[0] as ConditionIR) : { kind: 'and', args };
  };
  const notExpr = (): ConditionIR => {
    if (peek() === 'not') {
      pos++;
      enter();
      const arg = notExpr();
      depth--;
      return { kind: 'not', arg };
    }
    return primary();
  };
  const primary = (): ConditionIR => {
    const tok = peek();
    if (tok === undefined) fail(C.condition, 'unexpected end of condition (operator without operand)', path);
    if (tok === '(') {
      pos++;
      enter();
      const inner = orExpr();
      if (peek() !== ')') fail(C.condition, `expected ')' but found ${describe()}`, path);
      pos++;
      depth--;
      return inner;
    }
    if ((tok === '1' || tok === 'all' || tok === 'any') && tokens[pos + 1]?.text === 'of') {
      pos += 2;
      const target = peek();
      if (target === undefined || target === '(' || target === ')' || (KEYWORDS.has(target) && target !== 'them'))
        fail(C.condition, `expected an identifier pattern or 'them' after 'of', found ${describe()}`, path);
      pos++;
      let matched = expanded.get(target);
      if (!matched) {
        const matches = target === 'them' ? (n: string) => !n.startsWith('_') : patternMatcher(target);
        matched = identifiers.filter(matches);
        expanded.set(target, matched);
      }
      if (matched.length === 0) fail(C.condition, `'${tok} of ${target}' matches no search-identifier`, path);
      names += matched.length;
      if (names > MAX_CONDITION_NAMES)
        fail(C.limit, `the 'x of' expressions of the condition expand to more than ${MAX_CONDITION_NAMES} search-identifiers`, path);
      return { kind: 'of', quantifier: tok === 'all' ? 'all' : 'any', pattern: target, names: [...matched] };
    }
    if (tok === ')' || KEYWORDS.has(tok)) fail(C.condition, `unexpected ${describe()}`, path);
    if (/^(AND|OR|NOT|And|Or|Not)$/.test(tok)) fail(C.condition, `operators must be lower case: '${tok}'`, path);
    if (tok.includes('*')) fail(C.condition, `a wildcard identifier '${tok}' needs '1 of' or 'all of'`, path);
    if (!known.has(tok)) fail(C.condition, `undefined search-identifier '${tok}'`, path);
    pos++;
    return { kind: 'ref', name: tok };
  };

  const tree = orExpr();
  if (pos < tokens.length) {
    const tok = peek() ?? '';
    if (/^(AND|OR|NOT)$/i.test(tok)) fail(C.condition, `operators must be lower case: '${tok}'`, path);
    fail(C.condition, `unexpected ${describe()}`, path);
  }
  return tree;
}

/** The same tree with every identifier renamed (a filter's identifiers get a private prefix). */
export function mapConditionNames(node: ConditionIR, rename: (name: string) => string): ConditionIR {
  switch (node.kind) {
    case 'ref':
      return { kind: 'ref', name: rename(node.name) };
    case 'of':
      return { ...node, names: node.names.map(rename) };
    case 'not':
      return { kind: 'not', arg: mapConditionNames(node.arg, rename) };
    default:
      return { kind: node.kind, args: node.args.map((a) => mapConditionNames(a, rename)) };
  }
}
