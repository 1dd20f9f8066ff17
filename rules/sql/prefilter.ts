/**
 * A cheap necessary condition in front of the JSON work: literals the rule requires,
 * searched in `lowerUTF8(raw)`. Purely an optimisation; it may never drop an event the
 * evaluator matches, which holds because:
 * - `raw` is the JS `JSON.stringify` text of the event, so a leaf's string form (decoded
 *   string, number text, compact object JSON) appears in it verbatim, except for the
 *   characters JSON escapes (`"`, `\`, controls): literals containing those are skipped;
 * - only ASCII literals are used, so lower-casing the whole text cannot differ from
 *   lower-casing the leaf (context-dependent mappings like the final sigma give non-ASCII);
 * - only positive string tests contribute (no `neq`, `not`, numbers, regexes…).
 */
import type { ConditionIR, DetectionIR, RuleIR, ValueIR } from '../engine/ir.js';
import type { Params } from './params.js';

/** Any one of these lower-case literals must occur. */
type Requirement = string[];

const MIN_LITERAL = 3;
const MAX_REQUIREMENTS = 3;
const MAX_NEEDLES = 255; // multiSearchAny's limit

function literalOf(v: ValueIR): string[] | null {
  if (v.kind === 'anyOf') {
    const all: string[] = [];
    for (const x of v.values) {
      const l = literalOf(x);
      if (!l) return null;
      all.push(...l);
    }
    return all;
  }
  if (v.kind !== 'string') return null;
  let best = '';
  for (const p of v.parts) {
    if (typeof p !== 'string') continue;
    for (const run of p.split(/[^\x20-\x7e]|["\\]/)) if (run.length > best.length) best = run;
  }
  return best.length >= MIN_LITERAL ? [best.toLowerCase()] : null;
}

const score = (r: Requirement): number => Math.min(...r.map((s) => s.length)) - r.length / 1000;
const best = (rs: Requirement[]): Requirement | undefined => [...rs].sort((a, b) => score(b) - score(a))[0];

/** OR of branches: one requirement made of each branch's best one, or nothing. */
function union(branches: Requirement[][]): Requirement[] {
  const picked: string[] = [];
  for (const b of branches) {
    const r = best(b);
    if (!r) return [];
    picked.push(...r);
  }
  return [[...new Set(picked)]];
}

function detection(det: DetectionIR): Requirement[] {
  if (det.kind === 'allOf') return det.items.flatMap(detection);
  if (det.kind === 'anyOf') return union(det.items.map(detection));
  if (det.negated) return [];
  const lits = det.values.map(literalOf);
  if (det.linking === 'and') return lits.filter((l): l is string[] => l !== null);
  return lits.every((l) => l !== null) ? [[...new Set(lits.flat() as string[])]] : [];
}

function condition(c: ConditionIR, dets: Record<string, Requirement[]>): Requirement[] {
  switch (c.kind) {
    case 'ref':
      return dets[c.name] ?? [];
    case 'not':
      return [];
    case 'and':
      return c.args.flatMap((a) => condition(a, dets));
    case 'or':
      return union(c.args.map((a) => condition(a, dets)));
    case 'of':
      return c.quantifier === 'all' ? c.names.flatMap((n) => dets[n] ?? []) : union(c.names.map((n) => dets[n] ?? []));
  }
}

/** SQL of the pre-filter, or null when the rule requires no usable literal. */
export function prefilterSql(rule: RuleIR, params: Params, raw: string): string | null {
  const dets: Record<string, Requirement[]> = {};
  for (const [name, det] of Object.entries(rule.detections)) dets[name] = detection(det);
  const alternatives = rule.conditions.map((c) => condition(c, dets));
  const reqs = (alternatives.length === 1 ? (alternatives[0] as Requirement[]) : union(alternatives))
    .filter((r) => r.length <= MAX_NEEDLES)
    .sort((a, b) => score(b) - score(a))
    .slice(0, MAX_REQUIREMENTS);
  if (reqs.length === 0) return null;
  return reqs.map((r) => `multiSearchAny(lowerUTF8(${raw}), ${params.strs(r)})`).join(' AND ');
}
