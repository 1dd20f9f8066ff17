/**
 * Linear-time regex search: the parsed pattern becomes a Thompson NFA, simulated as a
 * DFA whose states are built lazily and cached (the RE2 design). Each input code unit
 * costs one cached transition, or at worst one NFA-set step of O(program size), so a
 * hostile pattern such as `(a+)+$` can never backtrack. The cache is bounded: when it
 * overflows it is dropped and rebuilt, which keeps memory flat.
 */
import { type AssertKind, type ParseFlags, parseRegex, type Range, type RegexNode, RegexSyntaxError } from './parse.js';

const OP_SET = 0;
const OP_SPLIT = 1;
const OP_JMP = 2;
const OP_ASSERT = 3;
const OP_MATCH = 4;

/** Programs above this many instructions are refused (nested counted repeats). */
export const MAX_PROGRAM = 60_000;
const MAX_CACHED_STATES = 4_096;

// Character kinds around a position: what assertions look at.
const K_EDGE = 0; // start of text (before) or end of text (after)
const K_WORD = 1;
const K_NEWLINE = 2;
const K_OTHER = 3;

const ASSERT_CODES: Record<AssertKind, number> = { bot: 0, eot: 1, mbol: 2, meol: 3, word: 4, nonword: 5 };

function kindOf(c: number): number {
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f) return K_WORD;
  return c === 0x0a ? K_NEWLINE : K_OTHER;
}

class CharSet {
  private readonly ascii = new Uint8Array(128);
  private readonly wide: Range[];
  constructor(ranges: Range[]) {
    for (const [lo, hi] of ranges) for (let c = lo; c <= Math.min(hi, 127); c++) this.ascii[c] = 1;
    this.wide = ranges.filter((r) => r[1] >= 128);
  }
  has(c: number): boolean {
    if (c < 128) return this.ascii[c] === 1;
    let lo = 0;
    let hi = this.wide.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.wide[mid] as Range;
      if (c < r[0]) hi = mid - 1;
      else if (c > r[1]) lo = mid + 1;
      else return true;
    }
    return false;
  }
}

interface DState {
  kernel: number[];
  prev: number;
  ascii: (DState | null | undefined)[];
  other: Map<number, DState | null>;
  /** undefined until computed: does the pattern match at the end of text from here? */
  atEnd: boolean | undefined;
}

class Program {
  readonly op: number[] = [];
  readonly a: number[] = [];
  readonly b: number[] = [];
  readonly sets: CharSet[] = [];

  emit(op: number, a = 0, b = 0): number {
    if (this.op.length >= MAX_PROGRAM) throw new Error('too large');
    this.op.push(op);
    this.a.push(a);
    this.b.push(b);
    return this.op.length - 1;
  }

  compile(node: RegexNode): void {
    switch (node.t) {
      case 'empty':
        return;
      case 'set':
        this.sets.push(new CharSet(node.ranges));
        this.emit(OP_SET, this.sets.length - 1);
        return;
      case 'assert':
        this.emit(OP_ASSERT, ASSERT_CODES[node.kind]);
        return;
      case 'cat':
        for (const item of node.items) this.compile(item);
        return;
      case 'alt': {
        const jumps: number[] = [];
        node.items.forEach((item, idx) => {
          if (idx < node.items.length - 1) {
            const split = this.emit(OP_SPLIT);
            this.a[split] = split + 1;
            this.compile(item);
            jumps.push(this.emit(OP_JMP));
            this.b[split] = this.op.length;
          } else this.compile(item);
        });
        for (const j of jumps) this.a[j] = this.op.length;
        return;
      }
      case 'rep': {
        for (let i = 0; i < node.min; i++) this.compile(node.item);
        if (node.max === -1) {
          const split = this.emit(OP_SPLIT);
          this.a[split] = split + 1;
          this.compile(node.item);
          this.emit(OP_JMP, split);
          this.b[split] = this.op.length;
          return;
        }
        const splits: number[] = [];
        for (let i = node.min; i < node.max; i++) {
          const split = this.emit(OP_SPLIT);
          this.a[split] = split + 1;
          splits.push(split);
          this.compile(node.item);
        }
        for (const s of splits) this.b[s] = this.op.length;
        return;
      }
    }
  }
}

export interface LinearRegex {
  readonly source: string;
  test(text: string): boolean;
}

/**
 * Compiles a Sigma `re` value. Throws RegexSyntaxError for invalid or unsupported
 * syntax. `flags` come from the `|i|m|s` modifiers; leading inline groups such as
 * `(?i)` or `(?is)` are understood by the parser itself.
 */
export function compileLinearRegex(source: string, flags: ParseFlags): LinearRegex {
  const program = new Program();
  try {
    program.compile(parseRegex(source, flags));
  } catch (err) {
    if (err instanceof RegexSyntaxError) throw err;
    throw new RegexSyntaxError(`pattern expands beyond ${MAX_PROGRAM} instructions`, source, 0);
  }
  program.emit(OP_MATCH);
  return new LazyDfa(source, program);
}

class LazyDfa implements LinearRegex {
  private states = new Map<string, DState>();
  private initial: DState;
  private readonly stamp: Int32Array;
  private generation = 0;
  private readonly stack: number[] = [];

  constructor(
    readonly source: string,
    private readonly prog: Program,
  ) {
    this.stamp = new Int32Array(prog.op.length);
    this.initial = this.intern([], K_EDGE);
  }

  test(text: string): boolean {
    let state = this.initial;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      let next = c < 128 ? state.ascii[c] : state.other.get(c);
      if (next === undefined) next = this.transition(state, c);
      if (next === null) return true; // null = a match was reached before consuming c
      state = next;
    }
    if (state.atEnd === undefined) state.atEnd = this.closure(state, K_EDGE) === null;
    return state.atEnd;
  }

  private intern(kernel: number[], prev: number): DState {
    const key = `${prev}|${kernel.join(',')}`;
    let state = this.states.get(key);
    if (!state) {
      if (this.states.size >= MAX_CACHED_STATES) {
        this.states = new Map(); // bounded memory: old states become garbage after this call
      }
      state = { kernel, prev, ascii: new Array(128), other: new Map(), atEnd: undefined };
      this.states.set(key, state);
    }
    return state;
  }

  private transition(state: DState, c: number): DState | null {
    const sets = this.closure(state, kindOf(c));
    let next: DState | null = null;
    if (sets !== null) {
      this.generation++;
      const kernel: number[] = [];
      for (const pc of sets) {
        if (this.prog.sets[this.prog.a[pc] as number]?.has(c) && this.stamp[pc + 1] !== this.generation) {
          this.stamp[pc + 1] = this.generation;
          kernel.push(pc + 1);
        }
      }
      kernel.sort((x, y) => x - y);
      next = this.intern(kernel, kindOf(c));
    }
    if (c < 128) state.ascii[c] = next;
    else if (state.other.size < 256) state.other.set(c, next);
    return next;
  }

  /**
   * Epsilon closure of the state's kernel plus the start (unanchored search), given the
   * kinds of the characters before and after this position. Returns the SET
   * instructions reached, or null when MATCH is reachable.
   */
  private closure(state: DState, nextKind: number): number[] | null {
    const { op, a, b } = this.prog;
    const gen = ++this.generation;
    const stack = this.stack;
    stack.length = 0;
    for (let i = state.kernel.length - 1; i >= 0; i--) stack.push(state.kernel[i] as number);
    stack.push(0);
    const sets: number[] = [];
    while (stack.length) {
      const pc = stack.pop() as number;
      if (this.stamp[pc] === gen) continue;
      this.stamp[pc] = gen;
      switch (op[pc]) {
        case OP_SET:
          sets.push(pc);
          break;
        case OP_MATCH:
          return null;
        case OP_JMP:
          stack.push(a[pc] as number);
          break;
        case OP_SPLIT:
          stack.push(b[pc] as number, a[pc] as number);
          break;
        case OP_ASSERT:
          if (assertHolds(a[pc] as number, state.prev, nextKind)) stack.push(pc + 1);
          break;
      }
    }
    return sets;
  }
}

function assertHolds(code: number, prev: number, next: number): boolean {
  switch (code) {
    case 0:
      return prev === K_EDGE;
    case 1:
      return next === K_EDGE;
    case 2:
      return prev === K_EDGE || prev === K_NEWLINE;
    case 3:
      return next === K_EDGE || next === K_NEWLINE;
    case 4:
      return (prev === K_WORD) !== (next === K_WORD);
    default:
      return (prev === K_WORD) === (next === K_WORD);
  }
}

export { RegexSyntaxError } from './parse.js';
