/**
 * The streaming evaluator: rules compiled once, routed by logsource, narrowed by a
 * candidate index, evaluated on raw events, and fed to the correlation engine.
 */
import { chooseIndexKey, conditionRequirements, detectionRequirements, type Requirements } from './candidates.js';
import { AccessorCache, compileCondition, compileDetection, type Predicate } from './compile.js';
import { CorrelationEngine, type CorrelationMatch } from './correlate.js';
import type { FieldAccessor } from './fields.js';
import type { CorrelationIR, RuleIR } from './ir.js';
import type { LoadedRules } from './load.js';
import { eventTimeMs, ruleAppliesTo, SOURCE_NAMES, SOURCE_PROFILES, type SourceName } from './logsources.js';
import { anyLeaf, stringForm } from './match-values.js';

export interface RuleMatch {
  kind: 'rule';
  /** Rule key: its id, else `name:<name>`, else `<file>#<document>`. */
  rule: string;
  id: string | undefined;
  title: string;
  level: string | undefined;
  tags: string[];
  /** Kept on every match: the Detection Rule License requires author attribution. */
  author: string | undefined;
  /** Index of the matching condition when `condition` is a list (0 otherwise). */
  condition: number;
  /** False when the rule only feeds correlations (`generate: false`). */
  output: boolean;
}

interface CompiledRule {
  ir: RuleIR;
  ordinal: number;
  conditions: Predicate[];
  output: boolean;
  /** Per-call dedupe stamp: a rule reached through several index keys is evaluated once. */
  stamp: number;
  /** Which condition alternative matched in the current call. */
  hitCondition: number;
}

interface IndexedField {
  accessor: FieldAccessor;
  byValue: Map<string, CompiledRule[]>;
}

interface Route {
  indexed: IndexedField[];
  always: CompiledRule[];
  total: number;
}

export interface EngineOptions {
  /** Build the candidate index (on by default; off is for differential tests). */
  index?: boolean;
}

export interface Evaluation {
  matches: RuleMatch[];
  correlations: CorrelationMatch[];
}

export class SigmaEngine {
  private readonly routes = new Map<SourceName, Route>();
  private readonly accessors = new AccessorCache();
  private readonly correlation: CorrelationEngine;
  private callStamp = 0;
  readonly rules: readonly RuleIR[];
  readonly correlations: readonly CorrelationIR[];

  constructor(loaded: Pick<LoadedRules, 'rules' | 'correlations'>, options: EngineOptions = {}) {
    this.rules = loaded.rules;
    this.correlations = loaded.correlations;
    this.correlation = new CorrelationEngine(loaded.correlations);
    // generate: false (the default) silences rules that feed a correlation.
    const generating = new Set<string>();
    for (const c of loaded.correlations) if (c.generate) for (const r of c.rules) generating.add(r);
    const compiled = loaded.rules.map((ir, ordinal) => {
      const detections: Record<string, Predicate> = {};
      for (const [name, det] of Object.entries(ir.detections)) detections[name] = compileDetection(det, this.accessors);
      const output = !this.correlation.isReferenced(ir.key) || generating.has(ir.key);
      return { ir, ordinal, conditions: ir.conditions.map((c) => compileCondition(c, detections)), output, stamp: 0, hitCondition: 0 };
    });
    for (const source of SOURCE_NAMES) this.routes.set(source, this.buildRoute(source, compiled, options.index !== false));
  }

  private buildRoute(source: SourceName, compiled: CompiledRule[], useIndex: boolean): Route {
    const profile = SOURCE_PROFILES[source];
    const route: Route = { indexed: [], always: [], total: 0 };
    const fields = new Map<string, IndexedField>();
    for (const rule of compiled) {
      if (!ruleAppliesTo(rule.ir.logsource, profile.logsource)) continue;
      route.total++;
      const key = useIndex ? chooseIndexKey(ruleRequirements(rule.ir), profile.indexFields) : null;
      if (!key) {
        route.always.push(rule);
        continue;
      }
      let indexed = fields.get(key.field);
      if (!indexed) {
        indexed = { accessor: this.accessors.get(key.field), byValue: new Map() };
        fields.set(key.field, indexed);
      }
      for (const v of key.values) {
        const list = indexed.byValue.get(v) ?? [];
        list.push(rule);
        indexed.byValue.set(v, list);
      }
    }
    route.indexed = [...fields.values()];
    return route;
  }

  /** Rule matches for one raw event of `source`, in rule load order. */
  match(source: SourceName, raw: unknown): RuleMatch[] {
    const route = this.routes.get(source);
    if (!route) throw new Error(`unknown source '${source}'`);
    const stamp = ++this.callStamp;
    let hits: CompiledRule[] | undefined;
    const check = (rule: CompiledRule): void => {
      if (rule.stamp === stamp) return;
      rule.stamp = stamp;
      for (let i = 0; i < rule.conditions.length; i++) {
        if ((rule.conditions[i] as Predicate)(raw)) {
          if (!hits) hits = [];
          hits.push(rule);
          rule.hitCondition = i;
          return;
        }
      }
    };
    for (const rule of route.always) check(rule);
    if (route.indexed.length) {
      const values: unknown[] = [];
      for (const field of route.indexed) {
        values.length = 0;
        field.accessor.collect(raw, values);
        for (const v of values) {
          anyLeaf(v, (leaf) => {
            const s = stringForm(leaf);
            const rules = s === null ? undefined : field.byValue.get(s.toLowerCase());
            if (rules) for (const r of rules) check(r);
            return false;
          });
        }
      }
    }
    if (!hits) return [];
    if (hits.length > 1) hits.sort((a, b) => a.ordinal - b.ordinal);
    return hits.map((r) => toMatch(r, r.hitCondition));
  }

  /**
   * Rule matches plus the correlation matches they complete. `timeMs` defaults to the
   * event's own time field (see logsources.ts); correlations never read the wall clock.
   */
  evaluate(source: SourceName, raw: Record<string, unknown>, timeMs?: number): Evaluation {
    const all = this.match(source, raw);
    const correlations: CorrelationMatch[] = [];
    if (this.correlations.length && all.length) {
      const t = timeMs ?? eventTimeMs(source, raw);
      if (t !== undefined) for (const m of all) correlations.push(...this.correlation.observe(m.rule, raw, t));
    }
    return { matches: all.filter((m) => m.output), correlations };
  }

  /** Feeds a rule match to the correlations directly (when matching happens elsewhere). */
  observe(match: Pick<RuleMatch, 'rule'>, raw: unknown, timeMs: number): CorrelationMatch[] {
    return this.correlation.observe(match.rule, raw, timeMs);
  }

  /** Moves event time forward without an event, expiring correlation state. */
  advance(timeMs: number): void {
    this.correlation.advance(timeMs);
  }

  /** Correlation state: live groups plus buffered observations. */
  stateSize(): number {
    return this.correlation.stateSize();
  }

  /** How many rules each source sees, and how many skip the candidate index. */
  routeStats(): Record<string, { rules: number; unindexed: number; indexFields: number }> {
    const out: Record<string, { rules: number; unindexed: number; indexFields: number }> = {};
    for (const [source, r] of this.routes) out[source] = { rules: r.total, unindexed: r.always.length, indexFields: r.indexed.length };
    return out;
  }
}

function ruleRequirements(ir: RuleIR): Requirements {
  const dets: Record<string, Requirements> = {};
  for (const [name, det] of Object.entries(ir.detections)) dets[name] = detectionRequirements(det);
  const alternatives = ir.conditions.map((c) => conditionRequirements(c, dets));
  if (alternatives.length === 1) return alternatives[0] as Requirements;
  // A list of conditions is OR: only fields every alternative requires.
  const out: Requirements = new Map();
  const [first, ...rest] = alternatives;
  for (const [field, set] of first ?? []) {
    if (!rest.every((a) => a.has(field))) continue;
    const union = new Set(set);
    for (const a of rest) for (const v of a.get(field) ?? []) union.add(v);
    out.set(field, union);
  }
  return out;
}

function toMatch(rule: CompiledRule, condition: number): RuleMatch {
  const { ir } = rule;
  return {
    kind: 'rule',
    rule: ir.key,
    id: ir.id,
    title: ir.title,
    level: ir.level,
    tags: ir.tags,
    author: ir.author,
    condition,
    output: rule.output,
  };
}
