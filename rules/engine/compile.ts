/**
 * IR → closures. Each rule is compiled once; evaluating an event runs only these
 * closures (no interpretation of the IR on the hot path).
 */
import { type FieldAccessor, fieldAccessor } from './fields.js';
import type { ConditionIR, DetectionIR, ItemIR, ValueIR } from './ir.js';
import { anyLeaf, compileValueTest, stringForm, type ValueTest } from './match-values.js';
import { plainText } from './sigma-string.js';

export type Predicate = (raw: unknown) => boolean;

/** Field accessors are shared between rules: one per distinct field name. */
export class AccessorCache {
  private readonly cache = new Map<string, FieldAccessor>();
  get = (name: string): FieldAccessor => {
    let acc = this.cache.get(name);
    if (!acc) {
      acc = fieldAccessor(name);
      this.cache.set(name, acc);
    }
    return acc;
  };
}

const defaultAccessors = new AccessorCache();

/** A plain case-insensitive equality (no wildcards): eligible for Set lookups and the index. */
export function plainEquality(v: ValueIR): string | null {
  if (v.kind !== 'string' || v.cased) return null;
  const text = plainText(v.parts);
  return text === null ? null : text.toLowerCase();
}

function setTest(keys: Set<string>): ValueTest {
  const leaf = (v: unknown): boolean => {
    const s = stringForm(v);
    return s !== null && keys.has(s.toLowerCase());
  };
  return (values) => {
    for (const v of values) if (anyLeaf(v, leaf)) return true;
    return false;
  };
}

/** Every scalar leaf of the event (keyword searches look at all of them). */
function collectLeaves(node: unknown, out: unknown[]): void {
  if (Array.isArray(node)) for (const el of node) collectLeaves(el, out);
  else if (node !== null && typeof node === 'object') for (const v of Object.values(node)) collectLeaves(v, out);
  else if (typeof node === 'string' || typeof node === 'number' || typeof node === 'boolean') out.push(node);
}

export function compileItem(item: ItemIR, accessors: AccessorCache = defaultAccessors): Predicate {
  let tests: ValueTest[];
  const equalities = item.values.map(plainEquality);
  if (item.linking === 'or' && item.values.length > 1 && equalities.every((e) => e !== null)) {
    tests = [setTest(new Set(equalities as string[]))];
  } else tests = item.values.map((v) => compileValueTest(v, accessors.get));
  const linked: ValueTest =
    tests.length === 1
      ? (tests[0] as ValueTest)
      : item.linking === 'and'
        ? (values, raw) => {
            for (const t of tests) if (!t(values, raw)) return false;
            return true;
          }
        : (values, raw) => {
            for (const t of tests) if (t(values, raw)) return true;
            return false;
          };
  const negated = item.negated;
  if (item.field === null) {
    return (raw) => {
      const leaves: unknown[] = [];
      collectLeaves(raw, leaves);
      return linked(leaves, raw) !== negated;
    };
  }
  const acc = accessors.get(item.field);
  return (raw) => {
    const values: unknown[] = [];
    acc.collect(raw, values);
    return linked(values, raw) !== negated;
  };
}

export function compileDetection(det: DetectionIR, accessors: AccessorCache = defaultAccessors): Predicate {
  if (det.kind === 'item') return compileItem(det, accessors);
  const parts = det.items.map((d) => compileDetection(d, accessors));
  if (parts.length === 1) return parts[0] as Predicate;
  if (det.kind === 'allOf') {
    return (raw) => {
      for (const p of parts) if (!p(raw)) return false;
      return true;
    };
  }
  return (raw) => {
    for (const p of parts) if (p(raw)) return true;
    return false;
  };
}

export function compileCondition(cond: ConditionIR, detections: Record<string, Predicate>): Predicate {
  switch (cond.kind) {
    case 'ref': {
      const p = detections[cond.name];
      if (!p) throw new Error(`undefined search-identifier ${cond.name}`); // the parser already checked
      return p;
    }
    case 'not': {
      const inner = compileCondition(cond.arg, detections);
      return (raw) => !inner(raw);
    }
    case 'and':
    case 'or':
    case 'of': {
      const args =
        cond.kind === 'of'
          ? cond.names.map((n) => compileCondition({ kind: 'ref', name: n }, detections))
          : cond.args.map((a) => compileCondition(a, detections));
      const all = cond.kind === 'and' || (cond.kind === 'of' && cond.quantifier === 'all');
      if (args.length === 1) return args[0] as Predicate;
      return all
        ? (raw) => {
            for (const a of args) if (!a(raw)) return false;
            return true;
          }
        : (raw) => {
            for (const a of args) if (a(raw)) return true;
            return false;
          };
    }
  }
}
