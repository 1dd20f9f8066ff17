/**
 * Field resolution in SQL, reproducing rules/engine/fields.ts exactly.
 *
 * Representation: a field resolves to `Array(String)` of JSON texts ("values"), in the
 * evaluator's order. Why JSON texts over the `raw` column rather than the JSON type:
 * - the JSON type merges `{"a.b":1}` and `{"a":{"b":1}}` into one path, drops JSON
 *   nulls (so `exists` could not tell `null` from absent), and types leaves;
 * - `JSONHas`/`JSONExtractRaw` with the key as a *parameter* lets us try every split of
 *   `a.b.c` into literal dotted keys, and `JSONExtractArrayRaw` walks arrays.
 * The walk is an `arrayFold` over a list of (json text, segments consumed) states; each
 * round expands every unfinished state in place (arrays into elements, objects into the
 * keys that start at its position), so the finished states come out in the depth-first
 * order of the evaluator (its first value is what correlations group by). Rounds are
 * bounded (`MAX_ARRAY_DEPTH` nested arrays on the way); a deeper event raises a query
 * error instead of a silent miss.
 *
 * From the values, `leaves` flattens arrays (any-match, same bound) and `strings` gives
 * each non-null leaf's string form as the evaluator's `stringForm` does.
 */
import type { Params } from './params.js';

/** Nested arrays crossed along one path (or at its end) before the query refuses the event. */
export const MAX_ARRAY_DEPTH = 8;

const DEPTH_ERROR = 'glasswatch: a field path crosses more nested arrays than the SQL back end unrolls';

export interface FieldSql {
  /** Array(String): JSON texts of the values found (empty = absent). */
  values: string;
  /** Array(String): JSON texts with arrays flattened: every scalar or object leaf. */
  leaves: string;
  /** Array(String): string forms of the non-null leaves (strings decoded, numbers as JS prints them). */
  strings: string;
}

/**
 * JS `String(number)` from ClickHouse's re-serialised number text: ClickHouse prints the
 * same shortest digits and the same notation thresholds, but writes `1e21` for `1e+21`.
 */
export const jsNumberText = (t: string): string => `replaceRegexpOne(${t}, 'e([0-9])', 'e+\\\\1')`;

/** First character of a JSON text (ClickHouse writes no leading whitespace). */
const head = (t: string): string => `substring(${t}, 1, 1)`;

/** String form of a non-null, non-array leaf: decoded string, JS number text, or the text itself. */
export function stringFormSql(t: string): string {
  return `multiIf(${head(t)} = '"', JSONExtractString(${t}), ${head(t)} IN ('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'), ${jsNumberText(t)}, ${t})`;
}

/** Flattens arrays inside a list of JSON texts (bounded depth, error beyond). */
export function flattenSql(values: string): string {
  const step = `arrayFlatten(arrayMap(t -> if(${head('t')} = '[', JSONExtractArrayRaw(t), [t]), acc))`;
  const folded = `arrayFold((acc, _) -> ${step}, range(${MAX_ARRAY_DEPTH}), ${values})`;
  return `arrayMap(t -> if(throwIf(${head('t')} = '[', '${DEPTH_ERROR}') = 0, t, ''), ${folded})`;
}

export class FieldResolver {
  private readonly cache = new Map<string, FieldSql>();
  private keywordCache: FieldSql | undefined;

  constructor(
    private readonly params: Params,
    /** Column or expression holding the event's JSON text. */
    readonly raw = 'raw',
  ) {}

  field(name: string): FieldSql {
    let f = this.cache.get(name);
    if (!f) {
      f = this.build(this.valuesSql(name));
      this.cache.set(name, f);
    }
    return f;
  }

  /**
   * Keyword searches look at every scalar leaf (strings, numbers, booleans). The stored
   * `raw` is JS `JSON.stringify` output, so a left-to-right token scan is exact: a string
   * token followed by `:` is a key; numbers keep the very text JS printed.
   */
  keywords(): FieldSql {
    if (!this.keywordCache) {
      const tokens = `arrayFilter(t -> NOT endsWith(t, ':'), extractAll(${this.raw}, '"(?:[^"\\\\\\\\]|\\\\\\\\.)*":?|-?[0-9][0-9.eE+-]*|true|false'))`;
      const strings = `arrayMap(t -> if(${head('t')} = '"', JSONExtractString(t), t), ${tokens})`;
      this.keywordCache = { values: tokens, leaves: tokens, strings };
    }
    return this.keywordCache;
  }

  /** Values of `name` as Array(String) of JSON texts, in the evaluator's order. */
  valuesSql(name: string): string {
    const segments = name.split('.');
    if (segments.length === 1) {
      const key = this.params.str(name);
      return `if(JSONHas(${this.raw}, ${key}), [JSONExtractRaw(${this.raw}, ${key})], CAST([], 'Array(String)'))`;
    }
    const segs = this.params.strs(segments);
    const n = segments.length;
    // key(i, j) = segments i+1..j joined (1-based), i.e. the literal key covering them.
    const key = (i: string, j: string): string => `arrayStringConcat(arraySlice(${segs}, ${i} + 1, ${j} - ${i}), '.')`;
    const expand = [
      `if(s.2 >= ${n}, [s],`,
      ` if(${head('s.1')} = '[', arrayMap(e -> (e, s.2), JSONExtractArrayRaw(s.1)),`,
      `  arrayMap(j -> (JSONExtractRaw(s.1, ${key('s.2', 'j')}), j),`,
      `   arrayFilter(j -> JSONHas(s.1, ${key('s.2', 'j')}), range(s.2 + 1, ${n + 1})))))`,
    ].join('');
    const init = `[(${this.raw}, toUInt64(0))]`;
    const folded = `arrayFold((acc, _) -> arrayFlatten(arrayMap(s -> ${expand}, acc)), range(${n + MAX_ARRAY_DEPTH}), ${init})`;
    return `arrayMap(s -> if(throwIf(s.2 < ${n}, '${DEPTH_ERROR}') = 0, s.1, ''), ${folded})`;
  }

  private build(values: string): FieldSql {
    const leaves = flattenSql(values);
    const strings = `arrayMap(t -> ${stringFormSql('t')}, arrayFilter(t -> t != 'null', ${leaves}))`;
    return { values, leaves, strings };
  }
}
