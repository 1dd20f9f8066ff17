/**
 * One YAML document into a RuleIR, FilterIR or (unresolved) CorrelationIR.
 */
import { MAX_CONDITIONS, parseCondition } from './condition.js';
import { SIGMA_ERROR_CODES as C, fail } from './errors.js';
import type { ConditionIR, CorrelationCondition, CorrelationIR, CorrelationType, DetectionIR, FilterIR, RuleIR } from './ir.js';
import { type DetectionOptions, parseDetection } from './parse-detection.js';
import { type Doc, parseLogsource, parseMeta, setOwn, stringList, type Warn } from './parse-meta.js';

export type DocumentKind = 'rule' | 'correlation' | 'filter';

export function documentKind(doc: Doc): DocumentKind {
  if ('correlation' in doc) return 'correlation';
  if ('filter' in doc) return 'filter';
  return 'rule';
}

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function parseDetections(
  block: Record<string, unknown>,
  path: string,
  options: DetectionOptions,
  skip: string[],
): Record<string, DetectionIR> {
  const detections: Record<string, DetectionIR> = {};
  for (const [name, body] of Object.entries(block)) {
    if (skip.includes(name)) continue;
    // Names are free-form (SigmaHQ has `filter_main_mdadm.conf`), but a `|` means a modifier
    // was put on the identifier instead of on a field, which would silently be ignored.
    // `__proto__` would replace the prototype of the detections map instead of adding a key.
    if (name === '__proto__') fail(C.field, "'__proto__' cannot be a search-identifier", `${path}.${name}`);
    if (/[|\s()]/.test(name))
      fail(
        C.field,
        `search-identifier '${name}' contains '|', whitespace or parentheses (a modifier belongs on a field)`,
        `${path}.${name}`,
      );
    detections[name] = parseDetection(body, `${path}.${name}`, options);
  }
  return detections;
}

export interface DocumentOptions extends DetectionOptions, CorrelationParseOptions {
  /** Reject legacy forms that only affect metadata (v1 dates) instead of warning. */
  strict?: boolean;
}

export function parseRuleDocument(doc: Doc, file: string, options: DocumentOptions, warn?: Warn): RuleIR {
  const meta = parseMeta(doc, warn, options.strict);
  const logsource = parseLogsource(doc.logsource);
  const detection = doc.detection;
  if (!isMap(detection)) fail(C.field, "the mandatory 'detection' is missing or not a map", 'detection');
  if ('timeframe' in detection)
    fail(C.deprecated, "'detection.timeframe' was removed in Sigma v2 (use a correlation rule)", 'detection.timeframe');
  const detections = parseDetections(detection, 'detection', options, ['condition']);
  const conditions = parseConditions(detection.condition, Object.keys(detections), 'detection.condition');
  return { kind: 'rule', ...meta, key: '', file, logsource, detections, conditions, filters: [] };
}

function parseConditions(raw: unknown, identifiers: string[], path: string): ConditionIR[] {
  if (raw === undefined || raw === null) fail(C.condition, "the mandatory 'condition' is missing", path);
  // Spec: a list of conditions is OR-linked (one query each); the JSON schema disagrees, we accept both.
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) fail(C.condition, 'the condition list is empty', path);
  if (list.length > MAX_CONDITIONS) fail(C.limit, `the condition list has more than ${MAX_CONDITIONS} conditions`, path);
  return list.map((c, i) => {
    const p = Array.isArray(raw) ? `${path}[${i}]` : path;
    if (typeof c !== 'string') fail(C.condition, 'a condition must be a string', p);
    return parseCondition(c, identifiers, p);
  });
}

export function parseFilterDocument(doc: Doc, file: string, options: DocumentOptions, warn?: Warn): FilterIR {
  const meta = parseMeta(doc, warn, options.strict);
  const logsource = parseLogsource(doc.logsource);
  const block = doc.filter;
  if (!isMap(block)) fail(C.filter, "'filter' must be a map with rules, selections and condition", 'filter');
  const rulesRaw = block.rules;
  let rules: string[];
  if (rulesRaw === 'any' || rulesRaw === undefined || (Array.isArray(rulesRaw) && rulesRaw.length === 0)) {
    if (rulesRaw === undefined) fail(C.filter, "'filter.rules' is missing (use a list of rule ids, or 'any')", 'filter.rules');
    rules = [];
  } else if (typeof rulesRaw === 'string') rules = [rulesRaw];
  else if (Array.isArray(rulesRaw) && rulesRaw.every((r) => typeof r === 'string')) rules = rulesRaw as string[];
  else return fail(C.filter, "'filter.rules' must be a list of rule ids or names, or 'any'", 'filter.rules');
  if (typeof block.condition !== 'string') fail(C.filter, "'filter.condition' must be a single string", 'filter.condition');
  const detections = parseDetections(block, 'filter', options, ['rules', 'condition']);
  if (Object.keys(detections).length === 0) fail(C.filter, 'a filter needs at least one selection', 'filter');
  const condition = parseCondition(block.condition, Object.keys(detections), 'filter.condition');
  return { kind: 'filter', file, id: meta.id, name: meta.name, title: meta.title, logsource, rules, detections, condition };
}

const CORRELATION_TYPES: readonly CorrelationType[] = [
  'event_count',
  'value_count',
  'temporal',
  'temporal_ordered',
  'value_sum',
  'value_avg',
  'value_percentile',
  'value_median',
];
const VALUE_TYPES = new Set<CorrelationType>(['value_count', 'value_sum', 'value_avg', 'value_percentile', 'value_median']);
const TIMESPAN_UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export interface CorrelationParseOptions {
  /** pySigma's `value_median` extension; off by default because it is not in the spec. */
  allowValueMedian?: boolean;
}

/** Parses a correlation; `rules` and alias keys still hold names/ids as written. */
export function parseCorrelationDocument(doc: Doc, file: string, options: DocumentOptions = {}, warn?: Warn): CorrelationIR {
  const meta = parseMeta(doc, warn, options.strict);
  const body = doc.correlation;
  if (!isMap(body)) fail(C.correlation, "'correlation' must be a map", 'correlation');
  const type = body.type as CorrelationType;
  if (typeof type !== 'string' || !CORRELATION_TYPES.includes(type) || (type === 'value_median' && !options.allowValueMedian))
    fail(
      C.correlation,
      `correlation type must be one of ${CORRELATION_TYPES.slice(0, 7).join(', ')}; got '${String(type)}'`,
      'correlation.type',
    );
  const rules = stringList(body, 'rules', 'correlation.');
  if (rules.length === 0) fail(C.correlation, "'correlation.rules' must name at least one rule", 'correlation.rules');
  const groupBy = stringList(body, 'group-by', 'correlation.');
  const timespanMs = parseTimespan(body.timespan);
  const { condition, fields, percentile } = parseCorrelationCondition(body.condition, type, rules.length);
  const aliases: Record<string, Record<string, string>> = {};
  if (body.aliases !== undefined) {
    if (!isMap(body.aliases)) fail(C.correlation, "'aliases' must be a map", 'correlation.aliases');
    for (const [alias, mapping] of Object.entries(body.aliases)) {
      if (!isMap(mapping) || !Object.values(mapping).every((f) => typeof f === 'string'))
        fail(C.correlation, 'an alias maps rule names to field names', `correlation.aliases.${alias}`);
      setOwn(aliases, alias, mapping as Record<string, string>);
    }
  }
  const generate = doc.generate ?? body.generate ?? false;
  if (typeof generate !== 'boolean') fail(C.correlation, "'generate' must be a boolean", 'generate');
  return {
    kind: 'correlation',
    ...meta,
    key: '',
    file,
    type,
    rules,
    groupBy,
    timespanMs,
    condition,
    valueFields: fields,
    percentile,
    aliases,
    generate,
  };
}

function parseTimespan(v: unknown): number {
  const m = typeof v === 'string' ? /^(\d+)([smhdw])$/.exec(v) : null;
  if (!m) fail(C.correlation, `'timespan' must look like 90s, 10m, 1h or 2d; got '${String(v)}'`, 'correlation.timespan');
  const ms = Number(m[1]) * (TIMESPAN_UNITS[m[2] as string] as number);
  if (ms <= 0) fail(C.correlation, "'timespan' must be positive", 'correlation.timespan');
  return ms;
}

function parseCorrelationCondition(v: unknown, type: CorrelationType, ruleCount: number) {
  const path = 'correlation.condition';
  const temporal = type === 'temporal' || type === 'temporal_ordered';
  if (v === undefined || v === null) {
    if (!temporal) fail(C.correlation, `'condition' is mandatory for ${type}`, path);
    return { condition: { gte: ruleCount }, fields: [] as string[], percentile: 50 };
  }
  if (!isMap(v)) fail(C.correlation, "'condition' must be a map such as {gte: 10}", path);
  const condition: CorrelationCondition = {};
  let fields: string[] = [];
  let percentile = 50;
  for (const [key, value] of Object.entries(v)) {
    if (key === 'field') {
      fields = stringList(v, 'field', `${path}.`);
      continue;
    }
    if (key === 'percentile') {
      if (typeof value !== 'number' || value < 0 || value > 100)
        fail(C.correlation, "'percentile' must be a number 0..100", `${path}.percentile`);
      percentile = value;
      continue;
    }
    if (!['gt', 'gte', 'lt', 'lte', 'eq', 'neq'].includes(key))
      fail(C.correlation, `unknown condition operator '${key}'`, `${path}.${key}`);
    if (typeof value !== 'number' || !Number.isFinite(value)) fail(C.correlation, `'${key}' needs a number`, `${path}.${key}`);
    if (!type.startsWith('value_') || type === 'value_count') {
      if (!Number.isInteger(value)) fail(C.correlation, `a count threshold must be an integer`, `${path}.${key}`);
    }
    condition[key as keyof CorrelationCondition] = value;
  }
  if (Object.keys(condition).length === 0) fail(C.correlation, "'condition' needs an operator (gt, gte, lt, lte, eq, neq)", path);
  if (VALUE_TYPES.has(type) && fields.length === 0) fail(C.correlation, `'condition.field' is mandatory for ${type}`, `${path}.field`);
  return { condition, fields, percentile };
}
