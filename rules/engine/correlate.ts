/**
 * Streaming correlations (event_count, value_count, temporal, temporal_ordered,
 * value_sum, value_avg, value_percentile) driven by **event time**, never the wall
 * clock, so replaying a log gives exactly what live processing gave.
 *
 * Semantics (decisions, see also the README in index.ts):
 * - sliding windows: on each observation the window is (watermark - timespan, watermark],
 *   the watermark being the highest event time seen by this correlation; an event
 *   older than the window on arrival is dropped as too late;
 * - the condition is evaluated when an event arrives; when it holds, one match is
 *   emitted and the group's state is cleared (no alert per further event);
 * - group-by values are the first value of each field (after aliases); an absent
 *   field groups as null; value_* types skip events without a usable value;
 * - state is bounded: entries leave with the window and idle groups are swept.
 */
import { fieldValues } from './fields.js';
import type { CorrelationCondition, CorrelationIR } from './ir.js';
import { stringForm } from './match-values.js';

export interface CorrelationMatch {
  kind: 'correlation';
  /** Correlation key (its id when it has one). */
  correlation: string;
  id: string | undefined;
  title: string;
  level: string | undefined;
  author: string | undefined;
  tags: string[];
  type: CorrelationIR['type'];
  /** group-by field → value of the group that fired. */
  group: Record<string, unknown>;
  /** Event time (ms) of the event that completed the condition. */
  time: number;
  windowStart: number;
  /** The aggregated figure the condition was checked against. */
  value: number;
  /** Number of observations in the window. */
  events: number;
}

interface Entry {
  t: number;
  rule: string;
  value: string | number | undefined;
}

interface Group {
  entries: Entry[];
  head: number;
  values: Record<string, unknown>;
  distinct: Map<string, number>;
  sum: number;
  last: number;
}

const SWEEP_EVERY = 512;

class CorrelationState {
  readonly groups = new Map<string, Group>();
  watermark = -Infinity;
  private sinceSweep = 0;

  constructor(readonly ir: CorrelationIR) {}

  private fieldFor(name: string, rule: string): string {
    return this.ir.aliases[name]?.[rule] ?? name;
  }

  observe(rule: string, event: unknown, t: number): CorrelationMatch | null {
    const { ir } = this;
    if (t > this.watermark) this.watermark = t;
    const windowStart = this.watermark - ir.timespanMs;
    if (t <= windowStart) return null; // too late for any open window
    if (++this.sinceSweep >= SWEEP_EVERY) this.sweep();

    const groupValues: Record<string, unknown> = {};
    for (const g of ir.groupBy) {
      const v = fieldValues(event, this.fieldFor(g, rule))[0];
      groupValues[g] = v === undefined ? null : v;
    }
    const value = this.entryValue(rule, event);
    if (value === undefined && ir.type !== 'event_count' && !ir.type.startsWith('temporal')) return null;
    const key = ir.groupBy.length ? JSON.stringify(ir.groupBy.map((g) => groupValues[g])) : '';
    let group = this.groups.get(key);
    if (!group) {
      group = { entries: [], head: 0, values: groupValues, distinct: new Map(), sum: 0, last: t };
      this.groups.set(key, group);
    }
    this.evict(group, windowStart);
    this.insert(group, { t, rule, value });
    const figure = this.figure(group);
    if (!conditionHolds(ir.condition, figure)) return null;
    const match: CorrelationMatch = {
      kind: 'correlation',
      correlation: ir.key,
      id: ir.id,
      title: ir.title,
      level: ir.level,
      author: ir.author,
      tags: ir.tags,
      type: ir.type,
      group: group.values,
      time: t,
      windowStart: Math.max(windowStart, (group.entries[group.head] as Entry).t),
      value: figure,
      events: group.entries.length - group.head,
    };
    this.groups.delete(key); // fire once, then start counting afresh
    return match;
  }

  private entryValue(rule: string, event: unknown): string | number | undefined {
    const { ir } = this;
    if (ir.type === 'value_count') {
      const parts = ir.valueFields.map((f) => stringForm(fieldValues(event, this.fieldFor(f, rule))[0]));
      return parts.every((p) => p === null) ? undefined : JSON.stringify(parts);
    }
    if (ir.type.startsWith('value_')) {
      const raw = fieldValues(event, this.fieldFor(ir.valueFields[0] as string, rule))[0];
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
      return Number.isFinite(n) ? n : undefined;
    }
    return undefined;
  }

  private insert(group: Group, entry: Entry): void {
    const { entries } = group;
    let i = entries.length;
    while (i > group.head && (entries[i - 1] as Entry).t > entry.t) i--; // keep time order for late arrivals
    entries.splice(i, 0, entry);
    group.last = Math.max(group.last, entry.t);
    this.account(group, entry, 1);
  }

  private account(group: Group, entry: Entry, sign: 1 | -1): void {
    const type = this.ir.type;
    const distinctKey = type === 'value_count' ? (entry.value as string) : type.startsWith('temporal') ? entry.rule : undefined;
    if (distinctKey !== undefined) {
      const n = (group.distinct.get(distinctKey) ?? 0) + sign;
      if (n <= 0) group.distinct.delete(distinctKey);
      else group.distinct.set(distinctKey, n);
    }
    if (typeof entry.value === 'number') group.sum += sign * entry.value;
  }

  private evict(group: Group, windowStart: number): void {
    const { entries } = group;
    while (group.head < entries.length && (entries[group.head] as Entry).t <= windowStart) {
      this.account(group, entries[group.head] as Entry, -1);
      group.head++;
    }
    if (group.head > 64 && group.head * 2 > entries.length) {
      entries.splice(0, group.head);
      group.head = 0;
    }
  }

  private figure(group: Group): number {
    const count = group.entries.length - group.head;
    switch (this.ir.type) {
      case 'event_count':
        return count;
      case 'value_count':
      case 'temporal':
        return group.distinct.size;
      case 'temporal_ordered':
        return orderedPrefix(this.ir.rules, group.entries, group.head);
      case 'value_sum':
        return group.sum;
      case 'value_avg':
        return count ? group.sum / count : 0;
      default: {
        // value_percentile / value_median: nearest-rank percentile of the window's values.
        const sorted = group.entries
          .slice(group.head)
          .map((e) => e.value as number)
          .sort((a, b) => a - b);
        const rank = this.ir.type === 'value_median' ? 50 : this.ir.percentile;
        return sorted[Math.max(0, Math.ceil((rank / 100) * sorted.length) - 1)] ?? 0;
      }
    }
  }

  /** Drops groups whose newest entry left the window; keeps state proportional to activity. */
  sweep(): void {
    this.sinceSweep = 0;
    const windowStart = this.watermark - this.ir.timespanMs;
    for (const [key, group] of this.groups) {
      if (group.last <= windowStart) this.groups.delete(key);
      else this.evict(group, windowStart);
    }
  }

  size(): number {
    let n = 0;
    for (const g of this.groups.values()) n += 1 + g.entries.length - g.head;
    return n;
  }
}

/** Longest prefix of `rules` seen in order (by event time) among the window's entries. */
function orderedPrefix(rules: string[], entries: Entry[], head: number): number {
  const best: number[] = new Array(rules.length + 1).fill(Number.NEGATIVE_INFINITY);
  best[0] = Number.POSITIVE_INFINITY;
  for (let i = head; i < entries.length; i++) {
    const e = entries[i] as Entry;
    for (let p = rules.length - 1; p >= 0; p--) {
      if (rules[p] !== e.rule) continue;
      const start = p === 0 ? e.t : (best[p] as number);
      if (start > (best[p + 1] as number)) best[p + 1] = start;
    }
  }
  let k = 0;
  while (k < rules.length && (best[k + 1] as number) > Number.NEGATIVE_INFINITY) k++;
  return k;
}

export function conditionHolds(c: CorrelationCondition, v: number): boolean {
  if (c.gt !== undefined && !(v > c.gt)) return false;
  if (c.gte !== undefined && !(v >= c.gte)) return false;
  if (c.lt !== undefined && !(v < c.lt)) return false;
  if (c.lte !== undefined && !(v <= c.lte)) return false;
  if (c.eq !== undefined && v !== c.eq) return false;
  if (c.neq !== undefined && v === c.neq) return false;
  return true;
}

export class CorrelationEngine {
  private readonly byRule = new Map<string, CorrelationState[]>();
  private readonly states: CorrelationState[];

  constructor(correlations: readonly CorrelationIR[]) {
    this.states = correlations.map((c) => new CorrelationState(c));
    for (const state of this.states) {
      for (const rule of new Set(state.ir.rules)) {
        const list = this.byRule.get(rule) ?? [];
        list.push(state);
        this.byRule.set(rule, list);
      }
    }
  }

  /** Whether any correlation listens to this rule (or correlation) key. */
  isReferenced(ruleKey: string): boolean {
    return this.byRule.has(ruleKey);
  }

  /**
   * Feeds one match of `ruleKey` (a rule or a correlation) observed at event time
   * `timeMs`. Returns the correlation matches it completes, chained ones included.
   */
  observe(ruleKey: string, event: unknown, timeMs: number): CorrelationMatch[] {
    const out: CorrelationMatch[] = [];
    for (const state of this.byRule.get(ruleKey) ?? []) {
      const match = state.observe(ruleKey, event, timeMs);
      if (!match) continue;
      out.push(match);
      // A correlation can be the input of another: its group values act as the event.
      out.push(...this.observe(match.correlation, match.group, timeMs));
    }
    return out;
  }

  /** Advances event time without an event (e.g. end of a replay) and drops expired state. */
  advance(timeMs: number): void {
    for (const s of this.states) {
      if (timeMs > s.watermark) s.watermark = timeMs;
      s.sweep();
    }
  }

  /** Number of live groups plus buffered entries over all correlations. */
  stateSize(): number {
    let n = 0;
    for (const s of this.states) n += s.size();
    return n;
  }
}
