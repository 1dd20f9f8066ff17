/**
 * A necessary condition on the store's materialized field columns (core/store/migrations.ts,
 * FIELD_COLUMNS), checked before any JSON work and before the literal pre-filter on `raw`.
 * Like the literal pre-filter it is purely an optimisation and may never drop an event the
 * evaluator matches, which holds because:
 * - a column holds the field's ASCII string value when reading it is unambiguous and '' otherwise
 *   (absent, number, array, object, non-ASCII, a literal dotted key beside the nested one, another
 *   source); every test here lets '' through;
 * - only positive, case-insensitive plain equalities contribute (`plainEquality`): the evaluator
 *   compares `value.toLowerCase()` with the lower-cased text, which for an ASCII value is
 *   ClickHouse's ASCII `lower()`;
 * - `not`, `neq` and anything else add no condition (true), so AND/OR only ever widen.
 * A set test is written `lower(c) IN [...]`, not `has([...], lower(c))`: IN is evaluated once per
 * LowCardinality dictionary entry and can use the set skip index, `has` builds the array per row
 * (10M events: ~25 ms against ~350 ms).
 */
import { FIELD_COLUMNS } from '../../core/store/migrations.js';
import { plainEquality } from '../engine/compile.js';
import type { ConditionIR, DetectionIR, ItemIR, RuleIR } from '../engine/ir.js';
import type { SourceName } from '../engine/logsources.js';
import type { Params } from './params.js';

/** SQL boolean, or null for "no condition" (true). */
type Cond = string | null;

const and = (xs: Cond[]): Cond => {
  const kept = [...new Set(xs.filter((x): x is string => x !== null))];
  return kept.length === 0 ? null : kept.length === 1 ? (kept[0] as string) : `(${kept.join(' AND ')})`;
};
const or = (xs: Cond[]): Cond => {
  if (xs.length === 0 || xs.some((x) => x === null)) return null;
  const kept = [...new Set(xs as string[])];
  return kept.length === 1 ? (kept[0] as string) : `(${kept.join(' OR ')})`;
};

/**
 * Field → column for the rule's sources. A column is '' for other sources, so using it for a rule
 * over several sources stays correct; only the columns of the rule's own sources can narrow anything.
 */
export function fieldColumns(sources: readonly SourceName[]): Map<string, string> {
  const by = new Map<string, string[]>();
  for (const c of FIELD_COLUMNS.filter((x) => sources.includes(x.source))) by.set(c.field, [...(by.get(c.field) ?? []), c.column]);
  // A field two sources have (Okta's and CloudTrail's eventType), for a rule over both: each column is
  // '' on the other source's rows, so their concatenation is the row's own column.
  return new Map([...by].map(([field, cols]) => [field, cols.length === 1 ? (cols[0] as string) : `concat(${cols.join(', ')})`]));
}

/**
 * An item's exact test on its column when the column is not '' (the value is then the field's only
 * value, an ASCII string), or null when the item is not a plain equality on a column field.
 */
export function columnTestSql(item: ItemIR, params: Params, columns: Map<string, string>): { column: string; test: string } | null {
  const column = item.field === null ? undefined : columns.get(item.field);
  if (!column) return null;
  const texts = item.values.map(plainEquality);
  if (texts.length === 0) return null;
  if (texts.every((t) => t !== null)) {
    const test =
      item.linking === 'or'
        ? `lower(${column}) IN ${params.strs([...new Set(texts as string[])])}`
        : (and(texts.map((t) => `lower(${column}) = ${params.str(t as string)}`)) as string);
    return { column, test };
  }
  // Presence, on a column that marks a certainly absent field with NUL (its value is then the only one).
  if (!MARKS_ABSENCE.has(column)) return null;
  const tests: string[] = [];
  for (const [i, v] of item.values.entries()) {
    const text = texts[i];
    if (text !== null && text !== undefined) tests.push(`lower(${column}) = ${params.str(text)}`);
    else if (v.kind === 'exists') tests.push(v.value ? `${column} != '\\0'` : `${column} = '\\0'`);
    else if (v.kind === 'null') tests.push(`${column} = '\\0'`);
    else return null;
  }
  return { column, test: tests.length === 1 ? (tests[0] as string) : `(${tests.join(item.linking === 'or' ? ' OR ' : ' AND ')})` };
}

/** Columns holding NUL where their field is certainly absent (core/store/migrations.ts, FieldColumn.absent). */
const MARKS_ABSENCE = new Set(FIELD_COLUMNS.filter((c) => c.absent !== undefined).map((c) => c.column));

export function columnPrefilterSql(rule: RuleIR, params: Params, sources: readonly SourceName[]): string | null {
  const columns = fieldColumns(sources);
  if (columns.size === 0) return null;

  const item = (it: ItemIR): Cond => {
    if (it.negated || it.field === null) return null;
    const column = columns.get(it.field);
    if (!column) return null;
    const texts = it.values.map(plainEquality);
    if (it.linking === 'or') {
      if (texts.some((t) => t === null)) return null;
      return `(${column} = '' OR lower(${column}) IN ${params.strs([...new Set(texts as string[])])})`;
    }
    return and(texts.map((t) => (t === null ? null : `(${column} = '' OR lower(${column}) = ${params.str(t)})`)));
  };
  const detection = (d: DetectionIR): Cond =>
    d.kind === 'item' ? item(d) : d.kind === 'allOf' ? and(d.items.map(detection)) : or(d.items.map(detection));
  const dets: Record<string, Cond> = {};
  for (const [name, d] of Object.entries(rule.detections)) dets[name] = detection(d);
  const condition = (c: ConditionIR): Cond => {
    switch (c.kind) {
      case 'ref':
        return dets[c.name] ?? null;
      case 'not':
        return null;
      case 'and':
        return and(c.args.map(condition));
      case 'or':
        return or(c.args.map(condition));
      case 'of': {
        const named = c.names.map((n) => dets[n] ?? null);
        return c.quantifier === 'all' ? and(named) : or(named);
      }
    }
  };
  return or(rule.conditions.map(condition));
}

/**
 * `(c1 != '' AND ...)` over the columns of every item the rule's conditions use, when each such item
 * is a plain equality on a column field: a row where all of them hold a value is decided by
 * `RuleSqlBuilder.ruleOnColumns` exactly, without `raw`. Null when some item needs the JSON.
 */
export function decidedOnColumnsSql(rule: RuleIR, params: Params, columns: Map<string, string>): string | null {
  const used = new Set<string>();
  const collect = (c: ConditionIR): void => {
    if (c.kind === 'ref') used.add(c.name);
    else if (c.kind === 'of') for (const n of c.names) used.add(n);
    else if (c.kind === 'not') collect(c.arg);
    else for (const a of c.args) collect(a);
  };
  for (const c of rule.conditions) collect(c);
  const needed = new Set<string>();
  const items = (d: DetectionIR): ItemIR[] => (d.kind === 'item' ? [d] : d.items.flatMap(items));
  for (const name of used) {
    const det = rule.detections[name];
    if (!det) return null;
    for (const it of items(det)) {
      const t = columnTestSql(it, params, columns);
      if (!t) return null;
      needed.add(t.column);
    }
  }
  if (needed.size === 0) return null;
  return `(${[...needed].map((c) => `${c} != ''`).join(' AND ')})`;
}
