/**
 * Candidate index analysis: which equality values a rule's condition requires. A
 * requirement `field ∈ S` means "if the rule matches, some value of `field`, in the
 * lower-cased string form the matcher uses, is in S". The engine indexes rules by
 * one such field and skips a rule when the event's value is not in its set. Only
 * sound derivations are made: negations, wildcards, numbers and keyword searches
 * contribute nothing, so the index can never hide a match.
 */
import { plainEquality } from './compile.js';
import type { ConditionIR, DetectionIR } from './ir.js';

export type Requirements = Map<string, Set<string>>;

function intersectInto(target: Requirements, source: Requirements): void {
  for (const [field, set] of source) {
    const prev = target.get(field);
    target.set(field, prev ? new Set([...prev].filter((v) => set.has(v))) : new Set(set));
  }
}

/** Both sides true-implies: a field required by every branch, with the union of values. */
function unionCommon(branches: Requirements[]): Requirements {
  const out: Requirements = new Map();
  const [first, ...rest] = branches;
  if (!first) return out;
  for (const [field, set] of first) {
    if (rest.every((b) => b.has(field))) {
      const union = new Set(set);
      for (const b of rest) for (const v of b.get(field) as Set<string>) union.add(v);
      out.set(field, union);
    }
  }
  return out;
}

export function detectionRequirements(det: DetectionIR): Requirements {
  if (det.kind === 'item') {
    const out: Requirements = new Map();
    if (det.negated || det.field === null || det.values.length === 0) return out;
    const eq = det.values.map(plainEquality);
    if (eq.some((e) => e === null)) return out;
    // OR: the value is one of them. AND: it must equal each, so any one of them suffices.
    out.set(det.field, new Set(det.linking === 'or' ? (eq as string[]) : [eq[0] as string]));
    return out;
  }
  const children = det.items.map(detectionRequirements);
  if (det.kind === 'anyOf') return unionCommon(children);
  const out: Requirements = new Map();
  for (const c of children) intersectInto(out, c);
  return out;
}

export function conditionRequirements(cond: ConditionIR, detections: Record<string, Requirements>): Requirements {
  switch (cond.kind) {
    case 'ref':
      return detections[cond.name] ?? new Map();
    case 'not':
      return new Map();
    case 'of': {
      const parts = cond.names.map((n) => detections[n] ?? new Map<string, Set<string>>());
      if (cond.quantifier === 'any') return unionCommon(parts);
      const out: Requirements = new Map();
      for (const p of parts) intersectInto(out, p);
      return out;
    }
    case 'and': {
      const out: Requirements = new Map();
      for (const a of cond.args) intersectInto(out, conditionRequirements(a, detections));
      return out;
    }
    case 'or':
      return unionCommon(cond.args.map((a) => conditionRequirements(a, detections)));
  }
}

/** The index key of a rule: the preferred field it requires, else the most selective one. */
export function chooseIndexKey(req: Requirements, preferred: readonly string[]): { field: string; values: Set<string> } | null {
  for (const field of preferred) {
    const values = req.get(field);
    if (values && values.size > 0) return { field, values };
  }
  let best: { field: string; values: Set<string> } | null = null;
  for (const [field, values] of req) {
    if (values.size > 0 && (!best || values.size < best.values.size)) best = { field, values };
  }
  return best;
}
