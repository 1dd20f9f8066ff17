/**
 * glasswatch Sigma engine (Sigma specification v2.1).
 *
 * Pipeline: parse (load.ts, parse-*.ts) → IR (ir.ts) → compile (compile.ts,
 * match-values.ts) → evaluate (engine.ts, correlate.ts). The IR is the contract for
 * other back ends such as the ClickHouse SQL compiler.
 *
 * Public API
 * ----------
 *   loadRules(sources: (string | {text, file})[], options?: LoadOptions): LoadedRules
 *     Files or directories (recursive *.yml/*.yaml) or in-memory texts. Never throws
 *     for a bad rule: `rejected` lists each with a stable code, file, rule id and path.
 *     options.placeholders: Record<string, string[]>   values for `%name%` under `expand`
 *     options.legacyCollections: boolean               accept v1 `action: global/reset/repeat`
 *     options.strict: boolean                          reject v1 dates instead of warning
 *
 *   new SigmaEngine(loaded, options?)
 *     .match(source, raw): RuleMatch[]                 rule matches (id, title, level, tags, author)
 *     .evaluate(source, raw, timeMs?): {matches, correlations}
 *                                                      output rule matches + correlation matches;
 *                                                      time defaults to the event's time field
 *     .observe(match, raw, timeMs): CorrelationMatch[] feed a match to correlations directly
 *     .advance(timeMs) / .stateSize()                  expire / measure correlation state
 *   source ∈ 'cloudtrail' | 'okta' | 'k8s' (mapping to logsources in logsources.ts)
 *
 *   compileSelection(selection, {path, placeholders?}): (raw) => boolean
 *     A bare Sigma selection (map = AND, list of maps = OR, modifiers allowed), e.g.
 *     { 'userIdentity.arn|contains': ':assumed-role/BreakGlass' }. Throws SigmaRuleError.
 *
 * Semantic decisions (beyond the spec; see /docs sigma-spec-notes):
 * - Field `a.b.c`: nested keys, and every grouping into literal dotted keys
 *   (`{"a.b": {"c": …}}`, `{"a.b.c": …}`); all values found are candidates (any-match);
 *   arrays on the way or at the leaf are searched element-wise.
 * - Strings compare case-insensitively via `toLowerCase()` on both sides (Unicode
 *   lower-casing, not ASCII-only); `cased` compares exactly. `*`/`?` count UTF-16 units.
 * - `null` matches an absent field or JSON null; `exists` checks presence only;
 *   `'*'` matches any present non-null value. `neq` negates the item (true when absent).
 * - Strings match numbers/booleans by their text, objects by compact JSON; numeric rule
 *   values match numeric strings. Keyword searches look at every scalar leaf.
 * - `re` is an unanchored search in RE2 syntax run by a linear-time automaton
 *   (regex/); lookaround and backreferences are rejected at load time.
 * - Filters are ANDed into the target rules' conditions (pySigma), never into correlations.
 * - Correlations: sliding windows on event time, fire once then reset the group.
 */

import { compileDetection, type Predicate } from './compile.js';
import { SIGMA_ERROR_CODES, SigmaRuleError } from './errors.js';
import { type DetectionOptions, parseDetection } from './parse-detection.js';

export type { CorrelationMatch } from './correlate.js';
export { type EngineOptions, type Evaluation, type RuleMatch, SigmaEngine } from './engine.js';
export { SIGMA_ERROR_CODES, type SigmaErrorCode, SigmaRuleError } from './errors.js';
export type * from './ir.js';
export {
  type LoadedRules,
  type LoadOptions,
  listRuleFiles,
  loadRules,
  type RuleRejection,
  type RuleSource,
  type RuleWarning,
} from './load.js';
export { eventTimeMs, SOURCE_NAMES, SOURCE_PROFILES, type SourceName, type SourceProfile } from './logsources.js';
export { compileLinearRegex, type LinearRegex } from './regex/automaton.js';

export interface SelectionOptions extends DetectionOptions {
  /** Where the selection comes from, for error messages (e.g. `identities.breakglass`). */
  path: string;
}

/** Compiles a bare Sigma selection into a predicate over raw events. */
export function compileSelection(selection: unknown, options: SelectionOptions): (raw: unknown) => boolean {
  try {
    const predicate: Predicate = compileDetection(parseDetection(selection, options.path, options));
    return predicate;
  } catch (err) {
    if (err instanceof SigmaRuleError) throw err;
    throw new SigmaRuleError(SIGMA_ERROR_CODES.value, String(err), { path: options.path });
  }
}
