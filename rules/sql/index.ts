/**
 * Sigma rules and correlations → parameterized ClickHouse SQL over the audit store's
 * `events` table, with the streaming evaluator's semantics (rules/engine/ir.ts).
 *
 * Public API
 * ----------
 *   compileRuleSql(rule, { table?, from?, to? }): { sql, params }
 *     One SELECT returning `source, id, time_ms` of every stored event the evaluator
 *     matches, ordered by time. Run it with
 *     `client.query({ query: sql, query_params: params, format: 'JSONEachRow' })`.
 *     `from` is inclusive, `to` exclusive (ISO 8601 or epoch ms); the source is restricted
 *     to the streams the rule's logsource selects (SOURCE_PROFILES routing). This is what
 *     `glasswatch hunt <rules> --from --to --store PATH` needs, one query per rule.
 *   compileCorrelationSql(corr, rulesById, options): { sql, params }
 *     One SELECT returning a CorrelationRow per correlation match (see correlate.ts).
 *   ruleSources(rule)          the sources a rule runs on
 *   latestEventsSql(...)       the deduplicated event rows both back ends must read
 *
 * Strategy and semantics (details in each module):
 * - Only the query shape is SQL text. Values, field path segments, regexes, time bounds
 *   and the table name are typed `{pN:Type}` parameters.
 * - Deduplication: the latest stored version of each (source, id) (LIMIT 1 BY, newest
 *   ingest first, no FINAL); the rule predicate is computed per row before it, so only
 *   small columns are sorted. The time range is applied before deduplication.
 * - Fields (fields.ts): the `raw` JSON text is walked with JSONHas/JSONExtractRaw using
 *   every split of `a.b.c` into literal dotted keys, arrays searched element-wise, values
 *   kept in the evaluator's order; `null` = absent or JSON null, `exists` = present.
 * - Strings: `lowerUTF8` (ICU full lower-casing, which agrees with JS `toLowerCase` incl.
 *   final sigma and U+0130) against the JS-lower-cased rule text; wildcards as LIKE with
 *   `\ % _` escaped; numbers compare by JS `Number()` rules; booleans also as text.
 * - Regexes (regex.ts): RE2 `match()` with i/m/s always stated (ClickHouse turns
 *   dot-matches-newline on by default).
 * - CIDR and timeparts follow the evaluator's parsers (IPv4-mapped IPv6, zones; UTC).
 * - A literal pre-filter on `lowerUTF8(raw)` (prefilter.ts) skips rows that cannot match.
 *
 * Residual differences, all outside the sample data (tested where they can be):
 * - strings matched against an *object* value use ClickHouse's re-serialised JSON, which
 *   writes `1e21` for `1e+21`, `\u001F` for `\u001f` and escapes U+2028/2029;
 * - regex case folding is RE2's Unicode folding; characters outside the BMP count as one
 *   character in SQL, two UTF-16 units in the evaluator (`?`, `.`);
 * - timepart on strings: ISO 8601 forms only (not V8's legacy Date.parse formats);
 *   DateTime64 covers 1900..2299;
 * - 0x/0o/0b numeric strings above 2^53 may round differently;
 * - paths crossing more than MAX_ARRAY_DEPTH nested arrays make the query fail loudly.
 * The stored `raw` must be JS `JSON.stringify` output (what StoreWriter writes): keyword
 * search and the pre-filter rely on it.
 */
export { type CompiledSql, compileRuleSql, latestEventsSql, QUERY_SETTINGS, ruleSources, type SqlOptions } from './compile.js';
export { type CorrelationRow, compileCorrelationSql } from './correlate.js';
export { MAX_ARRAY_DEPTH } from './fields.js';
export { Params } from './params.js';
export { re2Pattern } from './regex.js';

import { SOURCE_NAMES } from '../engine/logsources.js';

/** Every source name, for `latestEventsSql` over the whole store. */
export const SOURCE_LIST: readonly string[] = SOURCE_NAMES;
