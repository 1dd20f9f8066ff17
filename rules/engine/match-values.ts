/**
 * Value tests: one compiled closure per IR value, applied to the values a field
 * resolved to. Event-side coercions (sigma-spec-notes §3.6): strings match the string
 * form of numbers and booleans; objects match their compact JSON; arrays match when
 * any element does; JSON null only matches `null`.
 */
import { inNetwork, type Network, parseCidr } from './cidr.js';
import type { FieldAccessor } from './fields.js';
import type { StringPart, ValueIR } from './ir.js';
import { parseTimestamp } from './logsources.js';
import { compileLinearRegex } from './regex/automaton.js';
import { isAscii, isWildcard } from './sigma-string.js';

/** Test over the resolved values of one field (empty = absent). `raw` serves fieldref. */
export type ValueTest = (values: readonly unknown[], raw: unknown) => boolean;
type LeafTest = (leaf: unknown) => boolean;

/** Calls `test` on each scalar leaf (arrays flattened, objects as JSON) until it returns true. */
export function anyLeaf(value: unknown, test: LeafTest): boolean {
  if (Array.isArray(value)) {
    for (const el of value) if (anyLeaf(el, test)) return true;
    return false;
  }
  return test(value);
}

function anyValueLeaf(values: readonly unknown[], test: LeafTest): boolean {
  for (const v of values) if (anyLeaf(v, test)) return true;
  return false;
}

/** The string a string pattern is matched against; null for JSON null. */
export function stringForm(v: unknown): string | null {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
    case 'boolean':
      return String(v);
    case 'object':
      return v === null ? null : JSON.stringify(v);
    default:
      return null;
  }
}

/** Compiles a wildcard pattern into a string predicate (linear or O(n·m), never exponential). */
export function compileStringMatcher(parts: StringPart[], cased: boolean): (s: string) => boolean {
  const fold = cased ? (s: string) => s : (s: string) => s.toLowerCase();
  // Segments between `*`; inside a segment `\u0000?`-free chars or `null` for `?`.
  const segments: (string | null)[][] = [[]];
  for (const p of parts) {
    if (typeof p === 'string') for (const ch of fold(p)) (segments[segments.length - 1] as (string | null)[]).push(ch);
    else if (isWildcard(p, '*')) segments.push([]);
    else if (isWildcard(p, '?')) (segments[segments.length - 1] as (string | null)[]).push(null);
  }
  const hasQ = segments.some((s) => s.includes(null));
  const texts = segments.map((s) => s.join(''));
  const ascii = texts.every(isAscii);
  if (!hasQ) {
    const [first = '', ...rest] = texts;
    if (rest.length === 0) {
      const n = first.length;
      if (cased) return (s) => s === first;
      return ascii ? (s) => s.length === n && (s === first || s.toLowerCase() === first) : (s) => s.toLowerCase() === first;
    }
    const last = rest[rest.length - 1] as string;
    const middle = rest.slice(0, -1).filter((t) => t !== '');
    if (middle.length === 0) {
      if (first === '' && last === '') return () => true; // `*`
      if (last === '') return (s) => fold(s).startsWith(first);
      if (first === '') return (s) => fold(s).endsWith(last);
      return (s) => s.length >= first.length + last.length && fold(s).startsWith(first) && fold(s).endsWith(last);
    }
    if (first === '' && last === '' && middle.length === 1) {
      const needle = middle[0] as string;
      return (s) => fold(s).includes(needle);
    }
  }
  return (s) => globMatch(fold(s), segments);
}

function segmentAt(s: string, seg: (string | null)[], pos: number): boolean {
  if (pos + seg.length > s.length) return false;
  for (let k = 0; k < seg.length; k++) {
    const c = seg[k];
    if (c !== null && s[pos + k] !== c) return false;
  }
  return true;
}

/** Greedy leftmost placement of `*`-separated segments: correct for globs, no backtracking. */
function globMatch(s: string, segments: (string | null)[][]): boolean {
  const first = segments[0] as (string | null)[];
  if (segments.length === 1) return s.length === first.length && segmentAt(s, first, 0);
  const last = segments[segments.length - 1] as (string | null)[];
  if (!segmentAt(s, first, 0)) return false;
  const end = s.length - last.length;
  if (end < first.length || !segmentAt(s, last, end)) return false;
  let pos = first.length;
  for (let i = 1; i < segments.length - 1; i++) {
    const seg = segments[i] as (string | null)[];
    let found = -1;
    for (let p = pos; p + seg.length <= end; p++) {
      if (segmentAt(s, seg, p)) {
        found = p;
        break;
      }
    }
    if (found < 0) return false;
    pos = found + seg.length;
  }
  return true;
}

function numericValue(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isNaN(n) ? undefined : n;
  }
  return undefined;
}

const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  lt: (a, b) => a < b,
  lte: (a, b) => a <= b,
  gt: (a, b) => a > b,
  gte: (a, b) => a >= b,
  eq: (a, b) => a === b,
};

/** UTC date parts; numbers are epoch seconds (< 1e11) or milliseconds. */
function timePart(v: unknown, part: string): number | undefined {
  let ms: number | undefined;
  if (typeof v === 'number') ms = v < 1e11 ? v * 1000 : v;
  else if (typeof v === 'string') ms = parseTimestamp(v);
  if (ms === undefined) return undefined;
  const d = new Date(ms);
  switch (part) {
    case 'minute':
      return d.getUTCMinutes();
    case 'hour':
      return d.getUTCHours();
    case 'day':
      return d.getUTCDate();
    case 'month':
      return d.getUTCMonth() + 1;
    case 'year':
      return d.getUTCFullYear();
    default: {
      // ISO 8601 week number (pySigma's test backend uses %V).
      const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
      const dow = t.getUTCDay() || 7;
      t.setUTCDate(t.getUTCDate() + 4 - dow);
      const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
      return Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
    }
  }
}

export function compileValueTest(value: ValueIR, accessor: (name: string) => FieldAccessor): ValueTest {
  switch (value.kind) {
    case 'string': {
      const match = compileStringMatcher(value.parts, value.cased);
      const leaf: LeafTest = (v) => {
        const s = stringForm(v);
        return s !== null && match(s);
      };
      return (values) => anyValueLeaf(values, leaf);
    }
    case 'number': {
      const n = value.value;
      return (values) => anyValueLeaf(values, (v) => numericValue(v) === n);
    }
    case 'boolean': {
      const text = String(value.value);
      return (values) => anyValueLeaf(values, (v) => v === value.value || (typeof v === 'string' && v.toLowerCase() === text));
    }
    case 'null':
      return (values) => values.length === 0 || values.includes(null);
    case 'exists':
      return value.value ? (values) => values.length > 0 : (values) => values.length === 0;
    case 'regex': {
      const re = compileLinearRegex(value.pattern, value.flags);
      return (values) =>
        anyValueLeaf(values, (v) => {
          const s = stringForm(v);
          return s !== null && re.test(s);
        });
    }
    case 'cidr': {
      const net = parseCidr(`${value.network}`) as Network;
      return (values) => anyValueLeaf(values, (v) => typeof v === 'string' && inNetwork(net, v));
    }
    case 'compare': {
      const op = COMPARE[value.op] as (a: number, b: number) => boolean;
      const n = value.value;
      return (values) =>
        anyValueLeaf(values, (v) => {
          const x = numericValue(v);
          return x !== undefined && op(x, n);
        });
    }
    case 'timepart': {
      const op = COMPARE[value.op] as (a: number, b: number) => boolean;
      return (values) =>
        anyValueLeaf(values, (v) => {
          const x = timePart(v, value.part);
          return x !== undefined && op(x, value.value);
        });
    }
    case 'fieldref': {
      const other = accessor(value.field);
      const fold = value.cased ? (s: string) => s : (s: string) => s.toLowerCase();
      const relate: Record<string, (a: string, b: string) => boolean> = {
        equals: (a, b) => a === b,
        contains: (a, b) => a.includes(b),
        startswith: (a, b) => a.startsWith(b),
        endswith: (a, b) => a.endsWith(b),
      };
      const rel = relate[value.mode] as (a: string, b: string) => boolean;
      return (values, raw) => {
        if (values.length === 0) return false;
        const refs: unknown[] = [];
        other.collect(raw, refs);
        return anyValueLeaf(values, (a) => {
          const sa = stringForm(a);
          if (sa === null) return false;
          return anyValueLeaf(refs, (b) => {
            const sb = stringForm(b);
            return sb !== null && rel(fold(sa), fold(sb));
          });
        });
      };
    }
    case 'anyOf': {
      const tests = value.values.map((v) => compileValueTest(v, accessor));
      return (values, raw) => {
        for (const t of tests) if (t(values, raw)) return true;
        return false;
      };
    }
  }
}
