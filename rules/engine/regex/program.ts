/**
 * The compiled form of a pattern: a Thompson NFA in flat typed arrays, refused above a
 * size budget, and the partition of UTF-16 code units into character classes that no
 * instruction or assertion can tell apart. The DFA caches one transition per class, so
 * CJK or Cyrillic text costs the same as ASCII once its few classes are seen.
 */
import { type AssertKind, type Range, type RegexNode, RegexSyntaxError } from './parse.js';

export const OP_SET = 0;
export const OP_SPLIT = 1;
export const OP_JMP = 2;
export const OP_ASSERT = 3;
export const OP_MATCH = 4;

/**
 * NFA size budget in instructions. The largest pattern of the SigmaHQ corpus is
 * `.{1000,}` (1,004 instructions); 2,000 keeps twice that. The bound matters because a
 * pattern whose DFA thrashes costs one NFA step per character, O(program): about
 * 10 s per MB of hostile text at 1,000 instructions on one core, so the budget is
 * what bounds the time one field can take.
 */
export const MAX_PROGRAM = 2_000;

// Character kinds around a position: what assertions look at.
export const K_EDGE = 0; // start of text (before) or end of text (after)
export const K_WORD = 1;
export const K_NEWLINE = 2;
export const K_OTHER = 3;

const ASSERT_CODES: Record<AssertKind, number> = { bot: 0, eot: 1, mbol: 2, meol: 3, word: 4, nonword: 5 };
/** Where kindOf changes: classes never straddle these, so a class has one kind. */
const KIND_CUTS = [0x0a, 0x0b, 0x30, 0x3a, 0x41, 0x5b, 0x5f, 0x60, 0x61, 0x7b, 0x80];
const MAX_CHAR = 0xffff;

export function kindOf(c: number): number {
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f) return K_WORD;
  return c === 0x0a ? K_NEWLINE : K_OTHER;
}

export function assertHolds(code: number, prev: number, next: number): boolean {
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

class CharSet {
  private readonly ascii = new Uint8Array(128);
  private readonly wide: Range[];
  constructor(readonly ranges: Range[]) {
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

/** Code unit → class id: a table for ASCII, a binary search over runs above it. */
export class CharClasses {
  readonly ascii = new Uint16Array(128);
  /** One code unit of each class: transitions are computed on it. */
  readonly rep: number[] = [];
  readonly kind: number[] = [];
  private readonly wideStart: Uint32Array;
  private readonly wideClass: Uint16Array;

  constructor(sets: readonly CharSet[]) {
    const cutSet = new Set<number>([0, ...KIND_CUTS]);
    for (const set of sets) {
      for (const [lo, hi] of set.ranges) {
        cutSet.add(lo);
        if (hi < MAX_CHAR) cutSet.add(hi + 1);
      }
    }
    const starts = [...cutSet].sort((x, y) => x - y);
    // Interval i is [starts[i], starts[i+1]-1]: same membership in every set, same kind.
    const members: number[][] = starts.map(() => []);
    sets.forEach((set, id) => {
      for (const [lo, hi] of set.ranges) {
        for (let i = lastAtOrBelow(starts, lo); i < starts.length && (starts[i] as number) <= hi; i++) {
          (members[i] as number[]).push(id);
        }
      }
    });
    const bySignature = new Map<string, number>();
    const intervalClass = starts.map((start, i) => {
      const signature = `${kindOf(start)}:${(members[i] as number[]).join(',')}`;
      let id = bySignature.get(signature);
      if (id === undefined) {
        id = this.rep.length;
        bySignature.set(signature, id);
        this.rep.push(start);
        this.kind.push(kindOf(start));
      }
      return id;
    });
    const wideStart: number[] = [];
    const wideClass: number[] = [];
    starts.forEach((start, i) => {
      const id = intervalClass[i] as number;
      const end = i + 1 < starts.length ? (starts[i + 1] as number) : MAX_CHAR + 1;
      if (start < 128) this.ascii.fill(id, start, Math.min(end, 128));
      else if (wideClass[wideClass.length - 1] !== id) {
        wideStart.push(start);
        wideClass.push(id);
      }
    });
    this.wideStart = Uint32Array.from(wideStart);
    this.wideClass = Uint16Array.from(wideClass);
  }

  get count(): number {
    return this.rep.length;
  }

  /** Class of a code unit of 128 or above (0x80 is always a run start). */
  wide(c: number): number {
    const starts = this.wideStart;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] as number) <= c) lo = mid;
      else hi = mid - 1;
    }
    return this.wideClass[lo] as number;
  }
}

function lastAtOrBelow(sorted: number[], value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((sorted[mid] as number) <= value) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export interface Program {
  readonly size: number;
  readonly op: Uint8Array;
  readonly a: Int32Array;
  readonly b: Int32Array;
  /** Per SET instruction's set id (`a`) and class id: does the set hold that class? */
  readonly sets: readonly CharSet[];
  readonly classes: CharClasses;
  /** member[set * classes.count + class]: the hot-path form of `sets`, when small enough. */
  readonly member: Uint8Array | null;
}

/** Above this many (set, class) pairs the membership table is skipped for CharSet lookups. */
const MAX_MEMBER_TABLE = 1 << 16;

class Builder {
  readonly op: number[] = [];
  readonly a: number[] = [];
  readonly b: number[] = [];
  readonly sets: CharSet[] = [];
  private readonly setIds = new Map<string, number>();

  constructor(
    private readonly source: string,
    private readonly budget: number,
  ) {}

  emit(op: number, a = 0, b = 0): number {
    if (this.op.length >= this.budget) {
      throw new RegexSyntaxError(`pattern compiles to more than ${this.budget} NFA instructions (the regex size budget)`, this.source, 0);
    }
    this.op.push(op);
    this.a.push(a);
    this.b.push(b);
    return this.op.length - 1;
  }

  private setId(ranges: Range[]): number {
    const key = ranges.map((r) => `${r[0]}-${r[1]}`).join(',');
    let id = this.setIds.get(key);
    if (id === undefined) {
      id = this.sets.length;
      this.sets.push(new CharSet(ranges));
      this.setIds.set(key, id);
    }
    return id;
  }

  compile(node: RegexNode): void {
    switch (node.t) {
      case 'empty':
        return;
      case 'set':
        this.emit(OP_SET, this.setId(node.ranges));
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
        // Expansion stops at the first instruction over budget: cost is bounded too.
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

/** Compiles a parsed pattern; throws a RegexSyntaxError naming it when over `budget`. */
export function compileProgram(node: RegexNode, source: string, budget = MAX_PROGRAM): Program {
  const builder = new Builder(source, budget);
  builder.compile(node);
  builder.emit(OP_MATCH);
  const classes = new CharClasses(builder.sets);
  let member: Uint8Array | null = null;
  if (builder.sets.length * classes.count <= MAX_MEMBER_TABLE) {
    member = new Uint8Array(builder.sets.length * classes.count);
    builder.sets.forEach((set, id) => {
      classes.rep.forEach((c, k) => {
        if (set.has(c)) (member as Uint8Array)[id * classes.count + k] = 1;
      });
    });
  }
  return {
    size: builder.op.length,
    op: Uint8Array.from(builder.op),
    a: Int32Array.from(builder.a),
    b: Int32Array.from(builder.b),
    sets: builder.sets,
    classes,
    member,
  };
}
