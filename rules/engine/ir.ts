/**
 * Intermediate representation of loaded Sigma documents.
 *
 * The IR is the contract between the parser and every back end: the streaming
 * evaluator (compile.ts) and the ClickHouse SQL compiler must give the same answers
 * from the same IR. It is plain data (JSON-serialisable apart from nothing), holds
 * no closures, and every modifier has already been applied: a back end never sees
 * `contains` or `windash`, only wildcard strings, expansions and typed tests.
 *
 * Semantics that a back end must reproduce (decisions from the spec notes):
 * - string tests are case-insensitive unless `cased`; `*` any run, `?` one char;
 * - a field path `a.b.c` is resolved as nested keys, with every split into literal
 *   dotted keys also tried (`{"a.b": {"c": 1}}`); arrays met on the way or at the
 *   leaf are searched element by element (any-match);
 * - `null` matches an absent field or a JSON null; `exists` only checks presence;
 * - regexes are unanchored searches in RE2 syntax (see regex/parse.ts).
 */

export type SigmaLevel = 'informational' | 'low' | 'medium' | 'high' | 'critical';
export type SigmaStatus = 'stable' | 'test' | 'experimental' | 'deprecated' | 'unsupported';

export interface LogSource {
  category?: string;
  product?: string;
  service?: string;
  definition?: string;
  /** Extra keys are allowed by the spec and kept. */
  [key: string]: string | undefined;
}

/** A piece of a Sigma string: literal text, or a wildcard token. */
export type StringPart = string | { wildcard: '*' | '?' } | { placeholder: string };

/** Where a value came from inside the rule, for error messages and SQL comments. */
export interface ValueOrigin {
  path: string;
}

export type ValueIR =
  /** Wildcard pattern over the string form of the event value. */
  | { kind: 'string'; parts: StringPart[]; cased: boolean }
  /** Equality with a number: event numbers, or event strings that parse to the same number. */
  | { kind: 'number'; value: number }
  /** Equality with a boolean: event booleans, or the strings `true`/`false` (any case). */
  | { kind: 'boolean'; value: boolean }
  /** Field is absent or JSON null. */
  | { kind: 'null' }
  /** Field is present (`true`) or absent (`false`), whatever its value. */
  | { kind: 'exists'; value: boolean }
  /** Unanchored RE2-syntax regex; flags from `|i|m|s` and leading inline groups. */
  | { kind: 'regex'; pattern: string; flags: RegexFlags }
  /** Event value is an IP address inside the network. */
  | { kind: 'cidr'; network: string; prefix: number; family: 4 | 6 }
  /** Numeric comparison `field <op> value`. */
  | { kind: 'compare'; op: CompareOp; value: number }
  /** Part of a date/time field compared with a number (`|hour|gte: 20`), UTC. */
  | { kind: 'timepart'; part: TimePart; op: CompareOp | 'eq'; value: number }
  /** Compare with another field of the same event. */
  | { kind: 'fieldref'; field: string; mode: 'equals' | 'contains' | 'startswith' | 'endswith'; cased: boolean }
  /** Several values produced by one rule value (windash, base64offset, expand): always OR. */
  | { kind: 'anyOf'; values: ValueIR[] };

export interface RegexFlags {
  i: boolean;
  m: boolean;
  s: boolean;
}
export type CompareOp = 'lt' | 'lte' | 'gt' | 'gte';
export type TimePart = 'minute' | 'hour' | 'day' | 'week' | 'month' | 'year';

/** One `field|mods: values` entry of a selection; `field === null` is a keyword search. */
export interface ItemIR {
  kind: 'item';
  field: string | null;
  /** Modifiers as written, for display and SQL comments; semantics are in `values`. */
  modifiers: string[];
  /** How the values combine: OR by default, AND after `all`. */
  linking: 'and' | 'or';
  values: ValueIR[];
  /** `neq`: the whole item is negated (NOT (f=v1 OR f=v2)); true on an absent field. */
  negated: boolean;
  path: string;
}

/** A search-identifier's body: map = allOf, list of maps = anyOf, keyword lists = items. */
export type DetectionIR =
  | ItemIR
  | { kind: 'allOf'; items: DetectionIR[]; path: string }
  | { kind: 'anyOf'; items: DetectionIR[]; path: string };

export type ConditionIR =
  | { kind: 'ref'; name: string }
  | { kind: 'and'; args: ConditionIR[] }
  | { kind: 'or'; args: ConditionIR[] }
  | { kind: 'not'; arg: ConditionIR }
  /** `1 of x*` / `all of them`: already resolved to the identifiers it covers. */
  | { kind: 'of'; quantifier: 'any' | 'all'; pattern: string; names: string[] };

export interface RuleMeta {
  id: string | undefined;
  name: string | undefined;
  title: string;
  status: SigmaStatus | undefined;
  level: SigmaLevel | undefined;
  description: string | undefined;
  author: string | undefined;
  license: string | undefined;
  references: string[];
  tags: string[];
  falsepositives: string[];
  fields: string[];
  scope: string[];
  related: { id: string; type: string }[];
  taxonomy: string;
  date: string | undefined;
  modified: string | undefined;
  /** Unknown top-level keys, kept because the spec allows custom attributes. */
  custom: Record<string, unknown>;
}

export interface RuleIR extends RuleMeta {
  kind: 'rule';
  /** Unique key used by correlations and matches: the id, else `name:<name>`, else `<file>#<document>`. */
  key: string;
  file: string;
  logsource: LogSource;
  detections: Record<string, DetectionIR>;
  /** A YAML list condition is several alternatives, OR-linked; a match records which one. */
  conditions: ConditionIR[];
  /** Ids of the filters ANDed into `conditions` (their identifiers are renamed `_filt<n>_…`). */
  filters: string[];
}

export type CorrelationType =
  | 'event_count'
  | 'value_count'
  | 'temporal'
  | 'temporal_ordered'
  | 'value_sum'
  | 'value_avg'
  | 'value_percentile'
  | 'value_median';

export interface CorrelationCondition {
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
  eq?: number;
  neq?: number;
}

export interface CorrelationIR extends RuleMeta {
  kind: 'correlation';
  /** Same scheme as RuleIR.key; correlation chains reference these keys. */
  key: string;
  file: string;
  type: CorrelationType;
  /** Referenced rule or correlation ids (names are resolved to ids at load time). */
  rules: string[];
  groupBy: string[];
  timespanMs: number;
  /** Threshold (AND of all bounds given); for temporal types it counts distinct rules. */
  condition: CorrelationCondition;
  /** `condition.field` for value_* types: several fields make a tuple. */
  valueFields: string[];
  /** Percentile rank for value_percentile (pySigma's `percentile` key), default 50. */
  percentile: number;
  /** alias → (referenced rule id → field name in that rule's events). */
  aliases: Record<string, Record<string, string>>;
  generate: boolean;
}

export interface FilterIR {
  kind: 'filter';
  file: string;
  id: string | undefined;
  name: string | undefined;
  title: string;
  logsource: LogSource;
  /** Rule ids or names; empty = `any` (every rule whose logsource the filter contains). */
  rules: string[];
  detections: Record<string, DetectionIR>;
  condition: ConditionIR;
}
