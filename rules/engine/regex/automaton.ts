/**
 * Linear-time regex search: the parsed pattern becomes a Thompson NFA (program.ts),
 * simulated as a DFA whose states are built lazily and cached (the RE2 design). Each
 * input code unit costs one cached transition, or at worst one NFA step of O(program
 * size), so a hostile pattern such as `(a+)+$` can never backtrack.
 *
 * Memory is bounded per regex: the cache is accounted in bytes (DFA_CACHE_BYTES). When
 * a new state would overflow it, the whole cache is dropped (a new epoch: the initial
 * state is rebuilt, so nothing old stays reachable) and rebuilding starts from the
 * current position. When that happens again before 10 characters per cached state were
 * read (RE2's heuristic: the DFA is thrashing), the rest of the text is matched by NFA
 * simulation, which needs no cache at all.
 */
import { type ParseFlags, parseRegex } from './parse.js';
import {
  assertHolds,
  compileProgram,
  K_EDGE,
  MAX_PROGRAM,
  OP_ASSERT,
  OP_JMP,
  OP_MATCH,
  OP_SET,
  OP_SPLIT,
  type Program,
} from './program.js';

/**
 * DFA cache budget per regex, in bytes (estimated: kernel, key, transition table and
 * object overhead; calibrated within ~30% of the measured heap). 8 MiB is RE2's default
 * `max_mem`: a wide counted class such as `\w[ab]{1000}` needs ~1,000 states of ~1,000
 * positions each, and under 1 MiB it thrashed into NFA simulation (11 s per MB, a fuzz
 * finding). The cache only grows that large for patterns that need it: the 217 SigmaHQ
 * regexes use ~4 MiB in all over 4 MB of real text.
 */
export const DFA_CACHE_BYTES = 8 << 20;
const STATE_OVERHEAD_BYTES = 450;
const MAX_GENERATION = 0xffff_ffff;

export { MAX_PROGRAM };

export interface RegexLimits {
  /** DFA cache budget of this regex in bytes (default DFA_CACHE_BYTES). */
  dfaCacheBytes?: number;
  /** NFA size budget in instructions (default MAX_PROGRAM). */
  maxProgram?: number;
}

export interface RegexStats {
  programSize: number;
  classes: number;
  states: number;
  cacheBytes: number;
  cacheBudget: number;
  flushes: number;
  nfaFallbacks: number;
  /** Cache misses: transitions computed by an NFA step (the slow path). */
  transitionsBuilt: number;
  generation: number;
}

export interface LinearRegex {
  readonly source: string;
  test(text: string): boolean;
  stats(): RegexStats;
}

/**
 * Compiles a Sigma `re` value. Throws RegexSyntaxError (a SigmaRuleError coded
 * BG_RULES_REGEX, naming the pattern) for invalid or unsupported syntax and for
 * patterns over the size budgets. `flags` come from the `|i|m|s` modifiers; leading
 * inline groups such as `(?i)` or `(?is)` are understood by the parser itself.
 */
export function compileLinearRegex(source: string, flags: ParseFlags, limits: RegexLimits = {}): LinearRegex {
  const program = compileProgram(parseRegex(source, flags), source, limits.maxProgram ?? MAX_PROGRAM);
  return new LazyDfa(source, program, limits.dfaCacheBytes ?? DFA_CACHE_BYTES);
}

interface DState {
  /** NFA instructions to resume after the last character (sorted, canonical). */
  kernel: Int32Array;
  /** Kind of the last character (assertions look at it). */
  prev: number;
  /** By class: next state, null = a match was reached before consuming, undefined = unknown. */
  next: (DState | null | undefined)[];
  /** undefined until computed: does the pattern match at the end of text from here? */
  atEnd: boolean | undefined;
  /** Cache generation the state belongs to: links are only added between current states. */
  epoch: number;
}

/** Returned by the slow path when the cache budget says: finish with NFA simulation. */
const FALLBACK: DState = { kernel: new Int32Array(0), prev: K_EDGE, next: [], atEnd: undefined, epoch: -1 };

export class LazyDfa implements LinearRegex {
  private states = new Map<string, DState>();
  private epoch = 0;
  private bytes = 0;
  private initial: DState;
  private readonly stamp: Uint32Array;
  private generation = 0;
  private readonly stack: Int32Array;
  private readonly setsFound: Int32Array;
  private readonly scratch: Int32Array;
  private flushes = 0;
  private nfaFallbacks = 0;
  private transitionsBuilt = 0;
  /** Position of the last flush in the current test() call (-1: none yet). */
  private flushedAt = -1;
  private fallbackLength = 0;

  constructor(
    readonly source: string,
    private readonly prog: Program,
    private readonly budget: number,
  ) {
    const n = prog.size;
    this.stamp = new Uint32Array(n);
    // Each visited instruction pushes at most two successors; kernel and start come first.
    this.stack = new Int32Array(3 * n + 2);
    this.setsFound = new Int32Array(n);
    this.scratch = new Int32Array(n);
    this.initial = this.insert(new Int32Array(0), K_EDGE);
  }

  test(text: string): boolean {
    const classes = this.prog.classes;
    const ascii = classes.ascii;
    let state = this.initial;
    this.flushedAt = -1;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      const k = c < 128 ? (ascii[c] as number) : classes.wide(c);
      let next = state.next[k];
      if (next === undefined) {
        next = this.miss(state, k, i);
        if (next === FALLBACK) {
          this.nfaFallbacks++;
          return this.simulate(text, i + 1, this.scratch.slice(0, this.fallbackLength), classes.kind[k] as number);
        }
      }
      if (next === null) return true;
      state = next;
    }
    if (state.atEnd === undefined) state.atEnd = this.closure(state.kernel, state.kernel.length, state.prev, K_EDGE) < 0;
    return state.atEnd;
  }

  /**
   * The slow path, kept out of the hot loop: computes the transition of `state` on class
   * `k` at position `i`, caching it unless the budget says to fall back to the NFA (then
   * the next kernel is left in `scratch`, its length in `fallbackLength`).
   */
  private miss(state: DState, k: number, i: number): DState | null {
    this.transitionsBuilt++;
    const classes = this.prog.classes;
    const len = this.step(state.kernel, state.kernel.length, state.prev, k, this.scratch);
    let next: DState | null | undefined = null;
    if (len >= 0) {
      const kind = classes.kind[k] as number;
      const key = stateKey(this.scratch, len, kind);
      next = this.states.get(key);
      if (next === undefined) {
        const cost = stateCost(key, len, classes.count);
        if (this.bytes + cost > this.budget) {
          if (cost > this.budget || (this.flushedAt >= 0 && i - this.flushedAt < 10 * this.states.size)) {
            this.fallbackLength = len;
            return FALLBACK;
          }
          this.flush();
          this.flushedAt = i;
        }
        next = this.insert(this.scratch.slice(0, len), kind, key, cost);
      }
    }
    if (state.epoch === this.epoch) state.next[k] = next;
    return next;
  }

  stats(): RegexStats {
    return {
      programSize: this.prog.size,
      classes: this.prog.classes.count,
      states: this.states.size,
      cacheBytes: this.bytes,
      cacheBudget: this.budget,
      flushes: this.flushes,
      nfaFallbacks: this.nfaFallbacks,
      transitionsBuilt: this.transitionsBuilt,
      generation: this.generation,
    };
  }

  /** For tests: how many states the initial state still reaches (must be cached ones only). */
  reachableStates(): number {
    const seen = new Set<DState>([this.initial]);
    const todo = [this.initial];
    while (todo.length) {
      for (const next of (todo.pop() as DState).next) {
        if (next && !seen.has(next)) {
          seen.add(next);
          todo.push(next);
        }
      }
    }
    return seen.size;
  }

  /** For tests: puts the generation counter where its wrap-around would happen. */
  setGenerationForTest(generation: number): void {
    this.generation = generation;
  }

  private insert(kernel: Int32Array, prev: number, key = stateKey(kernel, kernel.length, prev), cost = 0): DState {
    const state: DState = { kernel, prev, next: new Array(this.prog.classes.count), atEnd: undefined, epoch: this.epoch };
    this.states.set(key, state);
    this.bytes += cost || stateCost(key, kernel.length, this.prog.classes.count);
    return state;
  }

  /** Drops every state: the new initial state starts a new epoch that old states cannot reach. */
  private flush(): void {
    this.flushes++;
    this.epoch++;
    this.states = new Map();
    this.bytes = 0;
    this.initial = this.insert(new Int32Array(0), K_EDGE);
  }

  /** NFA simulation from `from` on: O(program) per character, no cache, fixed memory. */
  private simulate(text: string, from: number, kernel: Int32Array, prev: number): boolean {
    const classes = this.prog.classes;
    let cur = new Int32Array(this.prog.size);
    let other = new Int32Array(this.prog.size);
    cur.set(kernel);
    let len = kernel.length;
    for (let i = from; i < text.length; i++) {
      const c = text.charCodeAt(i);
      const k = c < 128 ? (classes.ascii[c] as number) : classes.wide(c);
      len = this.step(cur, len, prev, k, other, false);
      if (len < 0) return true;
      const swap = cur;
      cur = other;
      other = swap;
      prev = classes.kind[k] as number;
    }
    return this.closure(cur, len, prev, K_EDGE) < 0;
  }

  /**
   * One NFA step on a character of class `k`: writes the sorted kernel of the next state
   * into `out` and returns its length, or -1 when MATCH is reached before the character.
   */
  private step(kernel: Int32Array, len: number, prev: number, k: number, out: Int32Array, sorted = true): number {
    const { classes, sets, a, member } = this.prog;
    const found = this.closure(kernel, len, prev, classes.kind[k] as number);
    if (found < 0) return -1;
    const setsFound = this.setsFound;
    let n = 0;
    // Distinct SET instructions give distinct successors: no duplicate check needed.
    if (member !== null) {
      const count = classes.count;
      for (let i = 0; i < found; i++) {
        const pc = setsFound[i] as number;
        if (member[(a[pc] as number) * count + k] === 1) out[n++] = pc + 1;
      }
    } else {
      const c = classes.rep[k] as number;
      for (let i = 0; i < found; i++) {
        const pc = setsFound[i] as number;
        if (sets[a[pc] as number]?.has(c)) out[n++] = pc + 1;
      }
    }
    if (sorted) sortKernel(out, n);
    return n;
  }

  /**
   * Epsilon closure of the kernel plus the start (unanchored search), given the kinds of
   * the characters before and after this position. Leaves the SET instructions reached
   * in `setsFound` and returns their count, or -1 when MATCH is reachable.
   */
  private closure(kernel: Int32Array, len: number, prev: number, nextKind: number): number {
    const { op, a, b } = this.prog;
    const gen = this.nextGeneration();
    const stamp = this.stamp;
    const stack = this.stack;
    const setsFound = this.setsFound;
    let sp = 0;
    stack[sp++] = 0;
    for (let i = len - 1; i >= 0; i--) stack[sp++] = kernel[i] as number;
    let found = 0;
    while (sp > 0) {
      const pc = stack[--sp] as number;
      if (stamp[pc] === gen) continue;
      stamp[pc] = gen;
      switch (op[pc]) {
        case OP_SET:
          setsFound[found++] = pc;
          break;
        case OP_MATCH:
          return -1;
        case OP_JMP:
          stack[sp++] = a[pc] as number;
          break;
        case OP_SPLIT:
          stack[sp++] = b[pc] as number;
          stack[sp++] = a[pc] as number;
          break;
        case OP_ASSERT:
          if (assertHolds(a[pc] as number, prev, nextKind)) stack[sp++] = pc + 1;
          break;
      }
    }
    return found;
  }

  /** A fresh stamp value; at the 32-bit limit the stamps are cleared instead of wrapping. */
  private nextGeneration(): number {
    if (this.generation >= MAX_GENERATION) {
      this.stamp.fill(0);
      this.generation = 0;
    }
    return ++this.generation;
  }
}

/** Kernels are short and nearly sorted: insertion sort beats TypedArray#sort's call overhead. */
function sortKernel(kernel: Int32Array, n: number): void {
  if (n > 64) {
    kernel.subarray(0, n).sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const v = kernel[i] as number;
    let j = i - 1;
    while (j >= 0 && (kernel[j] as number) > v) {
      kernel[j + 1] = kernel[j] as number;
      j--;
    }
    kernel[j + 1] = v;
  }
}

function stateKey(kernel: Int32Array, len: number, prev: number): string {
  return `${prev}|${kernel.subarray(0, len).join(',')}`;
}

/** Estimated heap bytes of one cached state: object, kernel, key string, transition table. */
function stateCost(key: string, kernelLength: number, classCount: number): number {
  return STATE_OVERHEAD_BYTES + key.length + 4 * kernelLength + 8 * classCount;
}

export { RegexSyntaxError } from './parse.js';
