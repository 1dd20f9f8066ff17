/**
 * Sigma rule IR → one parameterized ClickHouse SELECT over the `events` table with the
 * evaluator's semantics (rules/engine/compile.ts): conditions, map = AND, list = OR,
 * `neq` negates the item, keyword items search every scalar leaf.
 */

import { plainEquality } from '../engine/compile.js';
import type { ConditionIR, DetectionIR, ItemIR, RuleIR } from '../engine/ir.js';
import { SOURCE_NAMES, SOURCE_PROFILES, type SourceName } from '../engine/logsources.js';
import { columnPrefilterSql, columnTestSql, decidedOnColumnsSql, fieldColumns } from './columns.js';
import { FieldResolver } from './fields.js';
import { Params } from './params.js';
import { prefilterSql } from './prefilter.js';
import { ValueCompiler } from './values.js';

export interface SqlOptions {
  /** Table holding the events. @default "events" */
  table?: string;
  /** Inclusive lower bound on `time` (ISO 8601 or epoch ms). */
  from?: string | number;
  /** Exclusive upper bound on `time` (ISO 8601 or epoch ms). */
  to?: string | number;
}

export interface CompiledSql {
  sql: string;
  /** Query parameters for `client.query({ query: sql, query_params: params })`. */
  params: Record<string, unknown>;
}

/** The rule's condition as a SQL boolean over the `raw` column (building block for correlations). */
export interface RulePredicate {
  predicate: string;
  sources: SourceName[];
}

/** Sources whose logsource the rule selects: the routing of SOURCE_PROFILES / ruleAppliesTo. */
export function ruleSources(rule: Pick<RuleIR, 'logsource'>): SourceName[] {
  return SOURCE_NAMES.filter((s) => {
    const stream = SOURCE_PROFILES[s].logsource;
    return (['category', 'product', 'service'] as const).every((k) => rule.logsource[k] === undefined || rule.logsource[k] === stream[k]);
  });
}

function toMs(value: string | number, name: string): number {
  const ms = typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms)) throw new Error(`${name}: not a timestamp: ${String(value)}`);
  return Math.trunc(ms);
}

export class RuleSqlBuilder {
  readonly fields: FieldResolver;
  private readonly values: ValueCompiler;

  constructor(
    readonly params: Params,
    raw = 'raw',
    /**
     * Field → materialized column of the `events` table (columns.ts). Given, an equality item reads
     * the column when it holds the value and walks the JSON only when it is ''.
     */
    private readonly columns?: Map<string, string>,
  ) {
    this.fields = new FieldResolver(params, raw);
    this.values = new ValueCompiler(params, this.fields);
  }

  item(item: ItemIR): string {
    const field = item.field === null ? this.fields.keywords() : this.fields.field(item.field);
    let tests: string[];
    const equalities = item.values.map(plainEquality);
    if (item.linking === 'or' && item.values.length > 1 && equalities.every((e) => e !== null)) {
      tests = [this.values.equalitySet(field, equalities as string[])];
    } else tests = item.values.map((v) => this.values.value(v, field));
    let linked = tests.length === 1 ? (tests[0] as string) : `(${tests.join(item.linking === 'and' ? ' AND ' : ' OR ')})`;
    const exact = this.columns ? columnTestSql(item, this.params, this.columns) : null;
    if (exact) linked = `if(${exact.column} != '', ${exact.test}, ${linked})`;
    return item.negated ? `NOT ${linked}` : linked;
  }

  detection(det: DetectionIR): string {
    if (det.kind === 'item') return this.item(det);
    const parts = det.items.map((d) => this.detection(d));
    if (parts.length === 1) return parts[0] as string;
    return `(${parts.join(det.kind === 'allOf' ? ' AND ' : ' OR ')})`;
  }

  condition(cond: ConditionIR, detections: Record<string, string>): string {
    switch (cond.kind) {
      case 'ref': {
        const d = detections[cond.name];
        if (d === undefined) throw new Error(`undefined search-identifier ${cond.name}`);
        return d;
      }
      case 'not':
        return `NOT ${this.condition(cond.arg, detections)}`;
      default: {
        const args =
          cond.kind === 'of'
            ? cond.names.map((n) => this.condition({ kind: 'ref', name: n }, detections))
            : cond.args.map((a) => this.condition(a, detections));
        const all = cond.kind === 'and' || (cond.kind === 'of' && cond.quantifier === 'all');
        return args.length === 1 ? (args[0] as string) : `(${args.join(all ? ' AND ' : ' OR ')})`;
      }
    }
  }

  /**
   * The whole rule (condition alternatives OR-ed, cheap pre-filter first) as one boolean.
   * `prefilter: false` when the rows were already narrowed by it (compileRuleSql's candidates).
   */
  rule(rule: RuleIR, prefilter = true): string {
    const detections: Record<string, string> = {};
    // Only the identifiers a condition uses are compiled: unused ones would cost for nothing.
    const used = new Set<string>();
    const collect = (c: ConditionIR): void => {
      if (c.kind === 'ref') used.add(c.name);
      else if (c.kind === 'of') for (const n of c.names) used.add(n);
      else if (c.kind === 'not') collect(c.arg);
      else for (const a of c.args) collect(a);
    };
    for (const c of rule.conditions) collect(c);
    for (const name of used) {
      const det = rule.detections[name];
      if (det) detections[name] = this.detection(det);
    }
    const alternatives = rule.conditions.map((c) => this.condition(c, detections));
    const body = alternatives.length === 1 ? (alternatives[0] as string) : `(${alternatives.join(' OR ')})`;
    const pre = prefilter ? prefilterSql(rule, this.params, this.fields.raw) : null;
    return pre ? `(${pre} AND ${body})` : body;
  }
}

/** Sources and time range of a query, on the sort key (source, toDate(time)) and the time min-max index. */
function rangeSql(params: Params, options: SqlOptions, sources: readonly string[]): string {
  // `source IN` (not `has`): the primary key (source, toDate(time), id) prunes the other sources' ranges.
  const where = [`source IN ${params.strs(sources)}`];
  if (options.from !== undefined) where.push(`time >= fromUnixTimestamp64Milli(${params.add(toMs(options.from, 'from'), 'Int64')}, 'UTC')`);
  if (options.to !== undefined) where.push(`time < fromUnixTimestamp64Milli(${params.add(toMs(options.to, 'to'), 'Int64')}, 'UTC')`);
  return where.join(' AND ');
}

/**
 * Ids of the stored rows that pass the rule's necessary conditions: the field columns (small,
 * read first) and the literal pre-filter on `raw`, or null when the rule has neither. Only rows
 * with these ids are deduplicated and evaluated. That is exact: the latest version of a key can
 * match only if it passes the necessary conditions, so a key none of whose versions passes has
 * no match, and for a candidate key every version is still read, so the same version wins the
 * deduplication as without the filter. (An id of another source in the set only adds work: a
 * single key is several times cheaper than a `(source, id)` tuple set.) Only on the store's own
 * `events` table, which has the field columns and `id_hash`.
 */
function candidatesSql(
  rule: RuleIR,
  params: Params,
  options: SqlOptions,
  sources: readonly SourceName[],
): { sql: string; literals: boolean; columns: string | null } | null {
  const columns = columnPrefilterSql(rule, params, sources);
  // With a column condition the literals are left to the evaluation: reading `raw` here as well
  // would read it twice (10M events: ~0.8 s for nothing when the columns hold the values).
  const literals = columns ? null : prefilterSql(rule, params, 'raw');
  if (!columns && !literals) return null;
  const table = params.add(options.table ?? 'events', 'Identifier');
  // On the id's stored hash (migration 17): every version of a key shares it, so the set holds whole
  // keys, and a colliding key only adds rows that are evaluated exactly. 10M events: 165 ms against
  // 310 ms for `id IN` with 333k candidates; 28 ms against 12 ms with none.
  const sql = columns
    ? `id_hash IN (SELECT id_hash FROM ${table} PREWHERE ${columns} WHERE ${rangeSql(params, options, sources)})`
    : `id_hash IN (SELECT id_hash FROM ${table} WHERE ${rangeSql(params, options, sources)} AND ${literals})`;
  return { sql, literals: literals !== null, columns };
}

/**
 * `FROM` clause of the latest stored version of each (source, id) among `sources` in the
 * time range, with `columns` computed per row before deduplication (so only small
 * columns are sorted). Readers dedupe with LIMIT 1 BY rather than FINAL; the order makes
 * the surviving version deterministic (newest ingest, then a hash of the text).
 */
export function latestEventsSql(
  params: Params,
  options: SqlOptions,
  sources: readonly string[],
  columns: string,
  /** A condition on small columns read before the others (PREWHERE), e.g. the candidate keys. */
  prewhere?: string,
): string {
  // The store's own table keeps cityHash64(raw) as `raw_hash` (migration 5): the tie-break then reads no raw.
  const own = options.table === undefined || options.table === 'events';
  return [
    `SELECT source, id, time, ${columns}`,
    `FROM ${params.add(options.table ?? 'events', 'Identifier')}`,
    ...(prewhere ? [`PREWHERE ${prewhere}`] : []),
    `WHERE ${rangeSql(params, options, sources)}`,
    `ORDER BY source, id, ingested_at DESC, ${own ? 'raw_hash' : 'cityHash64(raw)'} DESC`,
    'LIMIT 1 BY source, id',
  ].join('\n');
}

/**
 * Settings every compiled query needs: RapidJSON instead of simdjson, because simdjson
 * rejects a whole document holding an integer beyond 64 bits (which JSON.stringify writes
 * for 1e19..1e21) where the evaluator simply reads a number; lazy AND/OR so the
 * pre-filter spares the JSON work on rows that cannot match.
 */
export const QUERY_SETTINGS = "SETTINGS allow_simdjson = 0, short_circuit_function_evaluation = 'force_enable'";

/**
 * One SELECT returning `source, id, time_ms` (epoch milliseconds) of every
 * stored event the evaluator would match, ordered by time. Values, field paths and the
 * table name are parameters; only the query shape is SQL text.
 */
export function compileRuleSql(rule: RuleIR, options: SqlOptions = {}): CompiledSql {
  const params = new Params();
  const sources = ruleSources(rule);
  // The field columns exist on the store's own `events` table (migration 4), not on a table named by the caller.
  const own = options.table === undefined || options.table === 'events';
  const builder = new RuleSqlBuilder(params, 'raw', own ? fieldColumns(sources) : undefined);
  const candidates = own ? candidatesSql(rule, params, options, sources) : null;
  // Rows evaluated already passed the literal pre-filter when the candidates used it (or share an
  // id with one that did; the filters are only necessary conditions, so leaving them out cannot
  // change a result).
  const hit = builder.rule(rule, !candidates?.literals);
  const split = own ? decidedOnColumnsSql(rule, params, fieldColumns(sources)) : null;
  const rows = split
    ? decidedSplitSql(params, options, sources, candidates, split, hit)
    : latestEventsSql(params, options, sources, `${hit} AS hit`, candidates?.sql);
  // No `time` text: a hunt matching 300k events would format and ship 300k date strings it does not need.
  const sql = [
    'SELECT source, id, toUnixTimestamp64Milli(time) AS time_ms',
    'FROM (',
    rows,
    ')',
    'WHERE hit',
    'ORDER BY time, source, id',
    QUERY_SETTINGS,
  ].join('\n');
  return { sql, params: params.values };
}

/**
 * The latest version of each candidate row with its `hit`, in two halves that partition the rows:
 * those the field columns decide (columns.ts, decidedOnColumnsSql) get the hit on the columns (no
 * `raw` read: PREWHERE leaves its granules unread), the others the JSON evaluation. Deduplication then orders by
 * (newest ingest, raw_hash), the same order as latestEventsSql's cityHash64(raw), so the same
 * version wins.
 *
 * With candidates from the field columns, the candidate id set is built once: the JSON half is the
 * undecided rows passing the column pre-filter (their ids are candidates by definition), and the
 * column half every other version of a candidate key. An undecided version there fails the
 * pre-filter, a necessary condition, so its hit is false without reading raw. (Both halves looking up
 * the ids built the set twice: ~300 ms of 1.6 s at 10M events.)
 */
function decidedSplitSql(
  params: Params,
  options: SqlOptions,
  sources: readonly string[],
  candidates: { sql: string; columns: string | null } | null,
  split: { decided: string; onColumns: string; threeValued: boolean },
  hit: string,
): string {
  const { decided, onColumns } = split;
  const table = params.add(options.table ?? 'events', 'Identifier');
  const range = rangeSql(params, options, sources);
  const row = 'SELECT source, id, time, ingested_at, raw_hash';
  // The three-valued `decided` is long: in PREWHERE it is computed on every row of the table (trail
  // tampering, 10M events: ~250 ms). The keys of the undecided candidates are looked up first, a set
  // where it is computed only on the rows passing the column pre-filter (a WHERE after PREWHERE). The
  // rest of the condition implies that lookup, so it changes no row.
  const undecided = (columns: string) =>
    split.threeValued ? `id_hash IN (SELECT id_hash FROM ${table} PREWHERE ${columns} WHERE ${range} AND NOT ${decided}) AND ` : '';
  const halves = candidates?.columns
    ? [
        `${row}, if(${decided}, ${onColumns}, 0) AS hit FROM ${table} PREWHERE ${candidates.sql} AND NOT (${candidates.columns} AND NOT ${decided}) WHERE ${range}`,
        `${row}, ${hit} AS hit FROM ${table} PREWHERE ${undecided(candidates.columns)}${candidates.columns} AND NOT ${decided} WHERE ${range}`,
      ]
    : [
        // The split first: the candidate ids are looked up only in granules holding rows of that half.
        `${row}, ${onColumns} AS hit FROM ${table} PREWHERE ${candidates ? `${decided} AND ${candidates.sql}` : decided} WHERE ${range}`,
        `${row}, ${hit} AS hit FROM ${table} PREWHERE ${candidates ? `NOT ${decided} AND ${candidates.sql}` : `NOT ${decided}`} WHERE ${range}`,
      ];
  return [
    'SELECT source, id, time, hit FROM (',
    halves[0],
    'UNION ALL',
    halves[1],
    ')',
    'ORDER BY source, id, ingested_at DESC, raw_hash DESC',
    'LIMIT 1 BY source, id',
  ].join('\n');
}
