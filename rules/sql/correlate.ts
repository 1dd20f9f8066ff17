/**
 * Correlation IR → one SELECT reproducing rules/engine/correlate.ts.
 *
 * What "the same semantics" means here: the evaluator is a state machine (sliding window
 * on event time, fire once, then clear the group), not a set of windows. A GROUP BY over
 * `toStartOfInterval` buckets or a window function would count different things (fixed
 * boundaries miss bursts that straddle them; a pure sliding count fires on every event
 * past the threshold). So the SQL replays the state machine itself: the matching events
 * of each group are collected in time order and folded with `arrayFold`, carrying the
 * window entries, the running sum and the fires, exactly as CorrelationState.observe.
 *
 * Equal inputs give equal fires when the evaluator sees the events in time order, which
 * is what `glasswatch replay` does. Documented differences:
 * - ties: events with the same millisecond are taken in (source, id, rule load order)
 *   order; live processing takes arrival order;
 * - time is the stored `time` column (the normalizer's event time);
 * - value_sum/value_avg keep the evaluator's running sum (add on entry, subtract on
 *   eviction), but not its periodic sweep, which resets an idle group's floating-point
 *   residue to 0; the figures can differ in the last bits for non-integer values;
 * - correlations over correlations (chains) are not compiled (an error says so).
 */
import type { CorrelationIR, RuleIR } from '../engine/ir.js';
import { type CompiledSql, latestEventsSql, QUERY_SETTINGS, RuleSqlBuilder, ruleSources, type SqlOptions } from './compile.js';
import { jsNumberText } from './fields.js';
import { Params } from './params.js';
import { bind, numericSql } from './values.js';

/** Columns of a correlation query's rows. */
export interface CorrelationRow {
  /** JSON texts of the group-by values, in `groupBy` order (`null` for an absent field). */
  group_values: string[];
  /** Event time (ms) of the event that completed the condition. */
  time_ms: number;
  window_start_ms: number;
  /** The aggregated figure the condition was checked against. */
  value: number;
  /** Observations in the window. */
  events: number;
}

const ENTRY = 'Tuple(Int64, String, Float64, Array(Nullable(String)))';

/** String form of a first value (NULL for absent or JSON null), as the evaluator's stringForm. */
const firstStringForm = (values: string): string =>
  bind(
    't',
    `if(empty(${values}), 'null', ${values}[1])`,
    `multiIf(t = 'null', NULL, substring(t, 1, 1) = '"', JSONExtractString(t), substring(t, 1, 1) IN ('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'), ${jsNumberText('t')}, t)`,
  );

function figureSql(ir: CorrelationIR, params: Params, entries: string, sum: string): string {
  const n = `length(${entries})`;
  switch (ir.type) {
    case 'event_count':
      return `toFloat64(${n})`;
    case 'value_count':
      return `toFloat64(length(arrayDistinct(arrayMap(e -> e.4, ${entries}))))`;
    case 'temporal':
      return `toFloat64(length(arrayDistinct(arrayMap(e -> e.2, ${entries}))))`;
    case 'temporal_ordered': {
      // Longest prefix of `rules` seen in order: best[q] = latest start of a chain ending at rule q-2.
      const rules = params.strs(ir.rules);
      const size = ir.rules.length + 1;
      const step = `arrayMap(q -> if(q = 1, b[1], if(${rules}[q - 1] = e.2 AND if(q = 2, toFloat64(e.1), b[q - 1]) > b[q], if(q = 2, toFloat64(e.1), b[q - 1]), b[q])), range(1, ${size + 1}))`;
      const init = `arrayConcat([inf], arrayMap(_ -> -inf, range(${ir.rules.length})))`;
      return `toFloat64(length(arrayFilter(x -> x > -inf, arrayFold((b, e) -> ${step}, ${entries}, ${init}))) - 1)`;
    }
    case 'value_sum':
      return sum;
    case 'value_avg':
      return `if(${n} > 0, ${sum} / ${n}, 0)`;
    default: {
      const rank = ir.type === 'value_median' ? 50 : ir.percentile;
      return `arraySort(arrayMap(e -> e.3, ${entries}))[toUInt64(greatest(0, ceil((${params.num(rank)} / 100) * ${n}) - 1)) + 1]`;
    }
  }
}

function conditionSql(ir: CorrelationIR, params: Params, figure: string): string {
  const ops = { gt: '>', gte: '>=', lt: '<', lte: '<=', eq: '=', neq: '!=' } as const;
  const parts: string[] = [];
  for (const [k, op] of Object.entries(ops)) {
    const bound = ir.condition[k as keyof typeof ops];
    if (bound !== undefined) parts.push(`${figure} ${op} ${params.num(bound)}`);
  }
  return parts.length ? parts.join(' AND ') : '1';
}

/**
 * One SELECT returning a row per correlation match (CorrelationRow) over the stored events
 * in the time range. `rulesById` maps rule keys to rules in load order (the order breaks
 * ties between rules matching the same event, as in the evaluator).
 */
export function compileCorrelationSql(corr: CorrelationIR, rulesById: ReadonlyMap<string, RuleIR>, options: SqlOptions = {}): CompiledSql {
  const params = new Params();
  const builder = new RuleSqlBuilder(params);
  const ordinals = new Map([...rulesById.keys()].map((k, i) => [k, i]));
  const branches = [...new Set(corr.rules)].map((key) => {
    const rule = rulesById.get(key);
    if (!rule) throw new Error(`correlation ${corr.key}: '${key}' is not a rule (correlation chains are not compiled to SQL)`);
    const fieldFor = (name: string): string => corr.aliases[name]?.[key] ?? name;
    const group = corr.groupBy.map((g) => bind('v', builder.fields.field(fieldFor(g)).values, `if(empty(v), 'null', v[1])`));
    let num = 'toFloat64(0)';
    let str = "CAST([], 'Array(Nullable(String))')";
    let usable = '1';
    if (corr.type === 'value_count') {
      str = `[${corr.valueFields.map((f) => firstStringForm(builder.fields.field(fieldFor(f)).values)).join(', ')}]`;
      usable = 'NOT arrayAll(x -> x IS NULL, str)';
    } else if (corr.type.startsWith('value_')) {
      const values = builder.fields.field(fieldFor(corr.valueFields[0] as string)).values;
      num = `coalesce(if(empty(${values}), NULL, ${numericSql(`${values}[1]`)}), nan)`;
      usable = 'isFinite(num)';
    }
    const columns = [
      `${builder.rule(rule)} AS hit`,
      `CAST([${group.join(', ')}], 'Array(String)') AS gkey`,
      `toFloat64(${num}) AS num`,
      `CAST(${str}, 'Array(Nullable(String))') AS str`,
    ].join(',\n');
    return [
      `SELECT toUnixTimestamp64Milli(time) AS t, toString(source) AS src, id, toUInt32(${ordinals.get(key)}) AS ord, ${params.str(key)} AS rule, gkey, num, str`,
      `FROM (${latestEventsSql(params, options, ruleSources(rule), columns)})`,
      `WHERE hit AND ${usable}`,
    ].join('\n');
  });

  const o = 'o';
  const step = bind(
    'ws',
    `${o}.1 - ${params.add(corr.timespanMs, 'Int64')}`,
    bind(
      'kept',
      `arrayFilter(e -> e.1 > ws, acc.1)`,
      bind(
        'sum',
        `arrayFold((s, e) -> s - e.3, arrayFilter(e -> e.1 <= ws, acc.1), acc.2) + ${o}.6`,
        bind(
          'entries',
          `arrayPushBack(kept, CAST((${o}.1, ${o}.5, ${o}.6, ${o}.7), '${ENTRY}'))`,
          bind(
            'figure',
            figureSql(corr, params, 'entries', 'sum'),
            `if(${conditionSql(corr, params, 'figure')}, (CAST([], 'Array(${ENTRY})'), toFloat64(0), arrayPushBack(acc.3, (${o}.1, greatest(ws, entries[1].1), figure, toUInt64(length(entries))))), (entries, sum, acc.3))`,
          ),
        ),
      ),
    ),
  );
  const init = `(CAST([], 'Array(${ENTRY})'), toFloat64(0), CAST([], 'Array(Tuple(Int64, Int64, Float64, UInt64))'))`;
  const sql = [
    'SELECT gkey AS group_values, fire.1 AS time_ms, fire.2 AS window_start_ms, fire.3 AS value, fire.4 AS events',
    'FROM (',
    // Evaluation order: time, then (source, id), then rule load order for one event's matches.
    `  SELECT gkey, arraySort(x -> (x.1, x.2, x.3, x.4), groupArray((t, src, id, ord, rule, num, str))) AS obs`,
    `  FROM (${branches.join('\nUNION ALL\n')})`,
    '  GROUP BY gkey',
    ')',
    `ARRAY JOIN arrayFold((acc, ${o}) -> ${step}, obs, ${init}).3 AS fire`,
    'ORDER BY time_ms, group_values',
    QUERY_SETTINGS,
  ].join('\n');
  return { sql, params: params.values };
}
