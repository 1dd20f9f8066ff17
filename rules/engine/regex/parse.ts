/**
 * Parser for the regex dialect of Sigma `re` values: the RE2 syntax subset that both
 * our linear-time matcher and ClickHouse `match()` (RE2) accept. Features that need
 * backtracking (backreferences, lookaround, atomic groups, possessive quantifiers) are
 * rejected so that the streaming and SQL results can never disagree and no rule can
 * make matching super-linear.
 *
 * Character classes use RE2's ASCII definitions (`\d`=[0-9], `\w`=[0-9A-Za-z_],
 * `\s`=[\t\n\f\r ]). Text is processed as UTF-16 code units.
 *
 * Size limits are RE2's, so a pattern the SQL side (ClickHouse `match()`) refuses is
 * refused here too: counts up to 1000, nested counts whose product exceeds 1000
 * (`(?:a{1000}){59}`) and group nesting deeper than 1000 are errors.
 */
import { SIGMA_ERROR_CODES, SigmaRuleError } from '../errors.js';

export type Range = [number, number];

export type RegexNode =
  | { t: 'empty' }
  | { t: 'set'; ranges: Range[] }
  | { t: 'cat'; items: RegexNode[] }
  | { t: 'alt'; items: RegexNode[] }
  | { t: 'rep'; item: RegexNode; min: number; max: number /* -1 = unbounded */ }
  | { t: 'assert'; kind: AssertKind };

/** bol/eol honour multi-line mode at parse time: `mbol`/`meol` are the line versions. */
export type AssertKind = 'bot' | 'eot' | 'mbol' | 'meol' | 'word' | 'nonword';

/** Patterns are named in errors, but a megabyte pattern is not copied into every log line. */
function shown(pattern: string): string {
  return pattern.length > 200 ? `${pattern.slice(0, 200)}… (${pattern.length} chars)` : pattern;
}

/** A coded rule error (BG_RULES_REGEX) naming the pattern, so any layer can report it as is. */
export class RegexSyntaxError extends SigmaRuleError {
  constructor(
    message: string,
    readonly pattern: string,
    readonly offset: number,
  ) {
    super(SIGMA_ERROR_CODES.regex, `${message} at offset ${offset} in /${shown(pattern)}/`);
    this.name = 'RegexSyntaxError';
  }
}

export interface ParseFlags {
  i: boolean;
  m: boolean;
  s: boolean;
}

/** RE2 refuses counted repetitions above 1000; so do we (keeps the automaton small). */
export const MAX_REPEAT = 1000;
/** RE2's kMaxNestingDepth: deeper groups are refused before they can exhaust the stack. */
export const MAX_NESTING = 1000;
const MAX_CHAR = 0xffff;

const DIGIT: Range[] = [[0x30, 0x39]];
const WORD: Range[] = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
const SPACE: Range[] = [
  [0x09, 0x0a],
  [0x0c, 0x0d],
  [0x20, 0x20],
];
const POSIX: Record<string, Range[]> = {
  alnum: [
    [0x30, 0x39],
    [0x41, 0x5a],
    [0x61, 0x7a],
  ],
  alpha: [
    [0x41, 0x5a],
    [0x61, 0x7a],
  ],
  digit: DIGIT,
  lower: [[0x61, 0x7a]],
  upper: [[0x41, 0x5a]],
  space: [
    [0x09, 0x0d],
    [0x20, 0x20],
  ],
  xdigit: [
    [0x30, 0x39],
    [0x41, 0x46],
    [0x61, 0x66],
  ],
  word: WORD,
  punct: [
    [0x21, 0x2f],
    [0x3a, 0x40],
    [0x5b, 0x60],
    [0x7b, 0x7e],
  ],
};

export function normaliseRanges(ranges: Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

export function negateRanges(ranges: Range[]): Range[] {
  const out: Range[] = [];
  let next = 0;
  for (const [lo, hi] of normaliseRanges(ranges)) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= MAX_CHAR) out.push([next, MAX_CHAR]);
  return out;
}

/** Adds the other-case forms of every char (simple case mapping, one code unit only). */
function caseFold(ranges: Range[]): Range[] {
  const extra: Range[] = [];
  for (const [lo, hi] of ranges) {
    if (hi - lo > 4000) continue; // huge ranges (negations, `.`) are closed enough already
    for (let c = lo; c <= hi; c++) {
      const ch = String.fromCharCode(c);
      for (const other of [ch.toLowerCase(), ch.toUpperCase()]) {
        if (other.length === 1 && other !== ch) {
          const o = other.charCodeAt(0);
          extra.push([o, o]);
        }
      }
    }
  }
  return extra.length ? normaliseRanges([...ranges, ...extra]) : ranges;
}

export function parseRegex(pattern: string, initial: ParseFlags): RegexNode {
  const node = new Parser(pattern, initial).parseAll();
  if (repeatBudgetLeft(node, MAX_REPEAT) === 0) {
    throw new RegexSyntaxError(
      `nested counted repetitions expand beyond ${MAX_REPEAT} copies (product of the counts, as RE2 refuses)`,
      pattern,
      0,
    );
  }
  return node;
}

/**
 * RE2's RepetitionWalker: divides the budget by every count on the way down (max, or
 * min when unbounded) and returns the smallest quotient; 0 means the product of
 * nested counts exceeds the budget. Depth is bounded by MAX_NESTING.
 */
function repeatBudgetLeft(node: RegexNode, budget: number): number {
  switch (node.t) {
    case 'rep': {
      const m = node.max < 0 ? node.min : node.max;
      const left = m > 0 ? Math.floor(budget / m) : budget;
      return Math.min(left, repeatBudgetLeft(node.item, left));
    }
    case 'cat':
    case 'alt': {
      let least = budget;
      for (const item of node.items) least = Math.min(least, repeatBudgetLeft(item, budget));
      return least;
    }
    default:
      return budget;
  }
}

class Parser {
  private pos = 0;
  private depth = 0;
  constructor(
    private readonly src: string,
    private flags: ParseFlags,
  ) {}

  parseAll(): RegexNode {
    const node = this.parseAlt();
    if (this.pos < this.src.length) this.fail('unmatched )');
    return node;
  }

  private fail(message: string, at = this.pos): never {
    throw new RegexSyntaxError(message, this.src, at);
  }

  private parseAlt(): RegexNode {
    // Inline flags such as `(?i)` last until the end of the enclosing group (RE2).
    const saved = { ...this.flags };
    const items: RegexNode[] = [this.parseCat()];
    while (this.src[this.pos] === '|') {
      this.pos++;
      items.push(this.parseCat());
    }
    this.flags = saved;
    return items.length === 1 ? (items[0] as RegexNode) : { t: 'alt', items };
  }

  private parseCat(): RegexNode {
    const items: RegexNode[] = [];
    while (this.pos < this.src.length) {
      const ch = this.src[this.pos];
      if (ch === '|' || ch === ')') break;
      const atom = this.parseAtom();
      if (atom) items.push(this.parseQuantifiers(atom));
    }
    if (items.length === 0) return { t: 'empty' };
    return items.length === 1 ? (items[0] as RegexNode) : { t: 'cat', items };
  }

  private parseQuantifiers(atom: RegexNode): RegexNode {
    let node = atom;
    for (;;) {
      const start = this.pos;
      const ch = this.src[this.pos];
      let min: number;
      let max: number;
      if (ch === '*') [min, max] = [0, -1];
      else if (ch === '+') [min, max] = [1, -1];
      else if (ch === '?') [min, max] = [0, 1];
      else if (ch === '{') {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos));
        if (!m) return node; // a `{` that is not a count is a literal, as in PCRE and RE2
        min = Number(m[1]);
        max = m[2] === undefined ? min : m[3] === '' ? -1 : Number(m[3]);
        if (min > MAX_REPEAT || max > MAX_REPEAT) this.fail(`repetition count above ${MAX_REPEAT}`);
        if (max !== -1 && max < min) this.fail('repetition {n,m} with m < n');
        this.pos += m[0].length - 1;
      } else return node;
      this.pos++;
      if (node.t === 'assert' || node.t === 'empty') this.fail('nothing to repeat', start);
      if (node.t === 'rep' && this.src[start - 1] !== ')') this.fail('doubled repetition operator', start);
      if (this.src[this.pos] === '?')
        this.pos++; // lazy: same language, we only test for a match
      else if (this.src[this.pos] === '+') this.fail('possessive quantifiers are not supported');
      node = { t: 'rep', item: node, min, max };
    }
  }

  private literal(code: number): RegexNode {
    const ranges: Range[] = [[code, code]];
    return { t: 'set', ranges: this.flags.i ? caseFold(ranges) : ranges };
  }

  private parseAtom(): RegexNode | null {
    const ch = this.src[this.pos] as string;
    switch (ch) {
      case '(':
        return this.parseGroup();
      case '[':
        return this.parseClass();
      case '.':
        this.pos++;
        return { t: 'set', ranges: this.flags.s ? [[0, MAX_CHAR]] : negateRanges([[0x0a, 0x0a]]) };
      case '^':
        this.pos++;
        return { t: 'assert', kind: this.flags.m ? 'mbol' : 'bot' };
      case '$':
        this.pos++;
        return { t: 'assert', kind: this.flags.m ? 'meol' : 'eot' };
      case '\\':
        return this.parseEscape();
      case '*':
      case '+':
      case '?':
        return this.fail('nothing to repeat');
      default:
        this.pos++;
        return this.literal(ch.charCodeAt(0));
    }
  }

  private parseGroup(): RegexNode | null {
    const start = this.pos;
    if (this.depth >= MAX_NESTING) this.fail(`group nesting deeper than ${MAX_NESTING}`);
    this.depth++;
    try {
      return this.parseGroupBody(start);
    } finally {
      this.depth--;
    }
  }

  private parseGroupBody(start: number): RegexNode | null {
    this.pos++;
    if (this.src[this.pos] === '?') {
      const rest = this.src.slice(this.pos + 1);
      if (/^(=|!|<=|<!)/.test(rest)) this.fail('lookaround is not supported (not linear-time)', start);
      if (rest.startsWith('>')) this.fail('atomic groups are not supported', start);
      const named = /^(P?<[A-Za-z_][A-Za-z0-9_]*>|'[A-Za-z_][A-Za-z0-9_]*')/.exec(rest);
      if (named) {
        this.pos += 1 + named[0].length;
      } else {
        const flagMatch = /^([ims]*)(?:-([ims]*))?(:|\))/.exec(rest);
        if (!flagMatch) this.fail('unsupported group syntax', start);
        const next = { ...this.flags };
        for (const f of flagMatch[1] ?? '') next[f as keyof ParseFlags] = true;
        for (const f of flagMatch[2] ?? '') next[f as keyof ParseFlags] = false;
        this.pos += 1 + flagMatch[0].length;
        if (flagMatch[3] === ')') {
          this.flags = next; // `(?i)`: applies to the rest of the enclosing group
          return null;
        }
        const saved = this.flags;
        this.flags = next;
        const inner = this.parseAlt();
        this.flags = saved;
        this.expect(')', start);
        return inner;
      }
    }
    const inner = this.parseAlt();
    this.expect(')', start);
    return inner;
  }

  private expect(ch: string, openedAt: number): void {
    if (this.src[this.pos] !== ch) this.fail('missing )', openedAt);
    this.pos++;
  }

  /** Escapes valid both outside and inside classes; returns ranges or a single code. */
  private escapeRanges(inClass: boolean): Range[] | number {
    const at = this.pos;
    const c = this.src[this.pos + 1];
    if (c === undefined) this.fail('trailing backslash');
    this.pos += 2;
    switch (c) {
      case 'd':
        return DIGIT;
      case 'D':
        return negateRanges(DIGIT);
      case 'w':
        return WORD;
      case 'W':
        return negateRanges(WORD);
      case 's':
        return SPACE;
      case 'S':
        return negateRanges(SPACE);
      case 'n':
        return 0x0a;
      case 'r':
        return 0x0d;
      case 't':
        return 0x09;
      case 'f':
        return 0x0c;
      case 'v':
        return 0x0b;
      case 'a':
        return 0x07;
      case '0':
        return 0;
      case 'x': {
        const m = /^(?:\{([0-9A-Fa-f]{1,4})\}|([0-9A-Fa-f]{2}))/.exec(this.src.slice(this.pos));
        if (!m) this.fail('bad \\x escape', at);
        this.pos += m[0].length;
        return parseInt(m[1] ?? m[2] ?? '0', 16);
      }
      case 'u': {
        const m = /^[0-9A-Fa-f]{4}/.exec(this.src.slice(this.pos));
        if (!m) this.fail('bad \\u escape', at);
        this.pos += 4;
        return parseInt(m[0], 16);
      }
      default:
        if (/[1-9]/.test(c)) this.fail('backreferences are not supported (not linear-time)', at);
        if (/[A-Za-z]/.test(c) && !(inClass && c === 'b')) this.fail(`unsupported escape \\${c}`, at);
        if (c === 'b') return 0x08; // `[\b]` is backspace
        return c.charCodeAt(0); // identity escape of punctuation: `\.`, `\-`, `\"`, `\/`
    }
  }

  private parseEscape(): RegexNode {
    const c = this.src[this.pos + 1];
    const assertions: Record<string, AssertKind> = { b: 'word', B: 'nonword', A: 'bot', z: 'eot' };
    if (c !== undefined && assertions[c]) {
      this.pos += 2;
      return { t: 'assert', kind: assertions[c] as AssertKind };
    }
    const r = this.escapeRanges(false);
    if (typeof r === 'number') return this.literal(r);
    return { t: 'set', ranges: r };
  }

  private parseClass(): RegexNode {
    const start = this.pos;
    this.pos++;
    let negate = false;
    if (this.src[this.pos] === '^') {
      negate = true;
      this.pos++;
    }
    const ranges: Range[] = [];
    let first = true;
    for (;;) {
      if (this.pos >= this.src.length) this.fail('missing ]', start);
      const ch = this.src[this.pos] as string;
      if (ch === ']' && !first) {
        this.pos++;
        break;
      }
      first = false;
      const posix = /^\[:(\^?)([a-z]+):\]/.exec(this.src.slice(this.pos));
      if (posix) {
        const set = POSIX[posix[2] ?? ''];
        if (!set) this.fail(`unknown POSIX class ${posix[0]}`);
        ranges.push(...(posix[1] ? negateRanges(set) : set));
        this.pos += posix[0].length;
        continue;
      }
      const lo = this.classAtom();
      if (Array.isArray(lo)) {
        ranges.push(...lo);
        continue;
      }
      if (this.src[this.pos] === '-' && this.src[this.pos + 1] !== ']' && this.pos + 1 < this.src.length) {
        this.pos++;
        const hi = this.classAtom();
        if (Array.isArray(hi)) this.fail('class escape used as range end');
        if (hi < lo) this.fail('invalid character range');
        ranges.push([lo, hi]);
      } else ranges.push([lo, lo]);
    }
    let set = normaliseRanges(ranges);
    if (this.flags.i) set = caseFold(set);
    return { t: 'set', ranges: negate ? negateRanges(set) : set };
  }

  private classAtom(): Range[] | number {
    const ch = this.src[this.pos] as string;
    if (ch === '\\') return this.escapeRanges(true);
    this.pos++;
    return ch.charCodeAt(0);
  }
}
