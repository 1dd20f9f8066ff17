/**
 * Loading rule files: YAML multi-document parsing (duplicate keys are errors), legacy
 * v1 rule collections, classification into rules / correlations / filters, then the
 * cross-document steps: correlation references, filter application and `generate`.
 * Every failure becomes a RuleRejection; loading never throws for a bad rule.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { mapConditionNames } from './condition.js';
import { SIGMA_ERROR_CODES as C, type SigmaErrorCode, SigmaRuleError } from './errors.js';
import type { ConditionIR, CorrelationIR, FilterIR, LogSource, RuleIR } from './ir.js';
import type { Doc } from './parse-meta.js';
import { type DocumentOptions, documentKind, parseCorrelationDocument, parseFilterDocument, parseRuleDocument } from './parse-rule.js';

export interface LoadOptions extends DocumentOptions {
  /**
   * Accept v1 rule collections (`action: global|reset|repeat`). Not part of Sigma v2,
   * so off by default: such documents are rejected with BG_RULES_COLLECTION.
   * @default false
   */
  legacyCollections?: boolean;
}

export interface RuleRejection {
  code: SigmaErrorCode;
  /** The message without location, for histograms. */
  reason: string;
  /** Full message naming file, rule id and path. */
  message: string;
  file: string;
  ruleId: string | undefined;
  path: string | undefined;
  /** 0-based index of the YAML document inside the file. */
  document: number | undefined;
}

/** A finding that did not stop the document from loading. */
export interface RuleWarning {
  reason: string;
  file: string;
  ruleId: string | undefined;
  path: string;
}

export interface LoadedRules {
  warnings: RuleWarning[];
  rules: RuleIR[];
  correlations: CorrelationIR[];
  filters: FilterIR[];
  rejected: RuleRejection[];
  files: number;
}

export type RuleSource = string | { text: string; file: string };

/** A stable key for a rule: its id, else its name, else file#document. */
export function ruleKey(rule: { id: string | undefined; name: string | undefined; file: string }, document = 0): string {
  return rule.id ?? (rule.name ? `name:${rule.name}` : `${rule.file}#${document}`);
}

export function listRuleFiles(path: string): string[] {
  const st = statSync(path);
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  for (const entry of readdirSync(path, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) out.push(...listRuleFiles(full));
    else if (/\.ya?ml$/i.test(entry.name)) out.push(full);
  }
  return out;
}

export function loadRules(sources: RuleSource[], options: LoadOptions = {}): LoadedRules {
  const result: LoadedRules = { warnings: [], rules: [], correlations: [], filters: [], rejected: [], files: 0 };
  const reject = (err: unknown, file: string, doc?: Doc, document?: number): void => {
    const docId = typeof doc?.id === 'string' ? doc.id : undefined;
    const e =
      err instanceof SigmaRuleError
        ? err.locate({ file, ruleId: docId })
        : new SigmaRuleError(C.field, String(err), { file, ruleId: docId });
    result.rejected.push({
      code: e.code as SigmaErrorCode,
      reason: e.reason,
      message: e.message,
      file,
      ruleId: e.ruleId,
      path: e.path,
      document,
    });
  };
  const inputs: { text: string; file: string }[] = [];
  for (const source of sources) {
    if (typeof source !== 'string') {
      inputs.push(source);
      continue;
    }
    let files: string[];
    try {
      files = listRuleFiles(source);
    } catch (err) {
      reject(new SigmaRuleError(C.io, `cannot read: ${(err as Error).message}`), source);
      continue;
    }
    for (const file of files) {
      try {
        inputs.push({ file, text: readFileSync(file, 'utf8') });
      } catch (err) {
        reject(new SigmaRuleError(C.io, `cannot read: ${(err as Error).message}`), file);
      }
    }
  }
  for (const { text, file } of inputs) {
    result.files++;
    for (const { doc, index, error } of readDocuments(text, options)) {
      if (error) {
        reject(error, file, doc, index);
        continue;
      }
      try {
        const d = doc as Doc;
        const ruleId = typeof d.id === 'string' ? d.id : undefined;
        const warn = (reason: string, path: string): void => {
          result.warnings.push({ reason, file, ruleId, path });
        };
        const kind = documentKind(d);
        if (kind === 'rule') {
          const rule = parseRuleDocument(d, file, options, warn);
          result.rules.push({ ...rule, key: ruleKey(rule, index) });
        } else if (kind === 'filter') result.filters.push(parseFilterDocument(d, file, options, warn));
        else {
          const corr = parseCorrelationDocument(d, file, options, warn);
          result.correlations.push({ ...corr, key: ruleKey(corr, index) });
        }
      } catch (err) {
        if (!(err instanceof SigmaRuleError)) throw err;
        reject(err, file, doc, index);
      }
    }
  }
  resolveCorrelations(result, reject);
  applyFilters(result, reject);
  return result;
}

interface ReadDocument {
  doc: Doc | undefined;
  index: number;
  error?: SigmaRuleError;
}

/** YAML documents of one file, with v1 collection actions applied when enabled. */
function readDocuments(text: string, options: LoadOptions): ReadDocument[] {
  const lineOf = (offset: number): number => text.slice(0, offset).split('\n').length;
  const out: ReadDocument[] = [];
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: false });
  let template: Doc | undefined;
  let previous: Doc | undefined;
  docs.forEach((yamlDoc, index) => {
    const yamlError = yamlDoc.errors[0];
    if (yamlError) {
      const code = yamlError.code === 'DUPLICATE_KEY' ? C.duplicateKey : C.yaml;
      const where = ` (line ${lineOf(yamlError.pos[0])})`;
      const msg =
        yamlError.code === 'DUPLICATE_KEY'
          ? `duplicate key '${/^[^:\n]*/.exec(text.slice(yamlError.pos[0]))?.[0].trim() ?? ''}'${where}`
          : `${yamlError.message.split('\n')[0]}${where}`;
      out.push({ doc: undefined, index, error: new SigmaRuleError(code, msg) });
      return;
    }
    const value: unknown = yamlDoc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) {
      // A trailing `---` is an editor artefact; any other empty document is an error.
      if (index === docs.length - 1 && index > 0) return;
      out.push({ doc: undefined, index, error: new SigmaRuleError(C.emptyDocument, 'the YAML document is empty') });
      return;
    }
    if (typeof value !== 'object' || Array.isArray(value)) {
      out.push({ doc: undefined, index, error: new SigmaRuleError(C.field, 'a Sigma document must be a YAML map') });
      return;
    }
    let doc = value as Doc;
    if ('action' in doc) {
      const action = doc.action;
      if (!options.legacyCollections) {
        out.push({
          doc,
          index,
          error: new SigmaRuleError(
            C.collection,
            `'action: ${String(action)}' is v1 rule-collection syntax, not Sigma v2 (enable legacyCollections to load it)`,
            { path: 'action' },
          ),
        });
        return;
      }
      const { action: _drop, ...rest } = doc;
      if (action === 'global') template = rest;
      else if (action === 'reset') template = undefined;
      else if (action === 'repeat') {
        if (!previous) {
          out.push({ doc, index, error: new SigmaRuleError(C.collection, "'action: repeat' without a previous rule", { path: 'action' }) });
          return;
        }
        previous = deepMerge(previous, rest);
        out.push({ doc: previous, index });
      } else {
        out.push({
          doc,
          index,
          error: new SigmaRuleError(C.collection, `unknown collection action '${String(action)}'`, { path: 'action' }),
        });
      }
      return;
    }
    if (template && documentKind(doc) === 'rule') doc = deepMerge(doc, template); // global values win (pySigma)
    if (documentKind(doc) === 'rule') previous = doc;
    out.push({ doc, index });
  });
  if (docs.length === 0)
    out.push({ doc: undefined, index: 0, error: new SigmaRuleError(C.emptyDocument, 'the file holds no YAML document') });
  return out;
}

/** Deep merge where `winner`'s scalars and lists replace `base`'s, and maps merge. */
export function deepMerge(base: Doc, winner: Doc): Doc {
  const out: Doc = { ...base };
  for (const [k, v] of Object.entries(winner)) {
    const prev = out[k];
    const bothMaps = [prev, v].every((x) => x !== null && typeof x === 'object' && !Array.isArray(x));
    out[k] = bothMaps ? deepMerge(prev as Doc, v as Doc) : v;
  }
  return out;
}

type Reject = (err: unknown, file: string, doc?: Doc) => void;

/** Resolves rule references (id first, then name) to rule keys; drops broken correlations. */
function resolveCorrelations(result: LoadedRules, reject: Reject): void {
  const byId = new Map<string, string>();
  const byName = new Map<string, string>();
  const index = (x: { id: string | undefined; name: string | undefined; key: string }): void => {
    if (x.id) byId.set(x.id, x.key);
    if (x.name && !byName.has(x.name)) byName.set(x.name, x.key);
  };
  result.rules.forEach(index);
  result.correlations.forEach(index);
  const resolve = (ref: string): string | undefined => byId.get(ref) ?? byName.get(ref);
  const valid: CorrelationIR[] = [];
  for (const corr of result.correlations) {
    try {
      const rules = corr.rules.map((ref, i) => {
        const key = resolve(ref);
        if (!key)
          throw new SigmaRuleError(C.reference, `correlation references unknown rule '${ref}'`, { path: `correlation.rules[${i}]` });
        return key;
      });
      const aliases: Record<string, Record<string, string>> = {};
      for (const [alias, mapping] of Object.entries(corr.aliases)) {
        aliases[alias] = {};
        for (const [ref, field] of Object.entries(mapping)) {
          const key = resolve(ref);
          if (!key)
            throw new SigmaRuleError(C.reference, `alias '${alias}' references unknown rule '${ref}'`, {
              path: `correlation.aliases.${alias}.${ref}`,
            });
          (aliases[alias] as Record<string, string>)[key] = field;
        }
      }
      valid.push({ ...corr, rules, aliases });
    } catch (err) {
      reject(err, corr.file, { id: corr.id });
    }
  }
  // Chains must be acyclic: a correlation may not (indirectly) reference itself.
  const byKey = new Map(valid.map((c) => [c.key, c] as const));
  const cyclic = (key: string, seen: Set<string>): boolean => {
    if (seen.has(key)) return true;
    const c = byKey.get(key);
    if (!c) return false;
    return c.rules.some((r) => cyclic(r, new Set([...seen, key])));
  };
  result.correlations = valid.filter((c) => {
    if (!cyclic(c.key, new Set())) return true;
    reject(new SigmaRuleError(C.reference, 'correlation chain references itself', { path: 'correlation.rules' }), c.file, { id: c.id });
    return false;
  });
}

/** pySigma: a selector logsource contains a rule logsource when every field it sets is equal. */
export function logsourceContains(selector: LogSource, rule: LogSource): boolean {
  for (const key of ['category', 'product', 'service'] as const) {
    if (selector[key] !== undefined && selector[key] !== rule[key]) return false;
  }
  return true;
}

/** ANDs each filter into the rules it targets (pySigma semantics, see sigma-spec-notes §7). */
function applyFilters(result: LoadedRules, reject: Reject): void {
  result.filters.forEach((filter, n) => {
    const targets: RuleIR[] = [];
    if (filter.rules.length === 0) targets.push(...result.rules);
    else {
      for (const ref of filter.rules) {
        const found = result.rules.filter((r) => r.id === ref || r.name === ref);
        if (found.length === 0) {
          reject(new SigmaRuleError(C.reference, `filter references unknown rule '${ref}'`, { path: 'filter.rules' }), filter.file, {
            id: filter.id,
          });
          return;
        }
        targets.push(...found);
      }
    }
    const prefix = `_filt${n}_`;
    const condition: ConditionIR = mapConditionNames(filter.condition, (name) => prefix + name);
    for (const rule of targets) {
      if (!logsourceContains(filter.logsource, rule.logsource)) continue;
      for (const [name, det] of Object.entries(filter.detections)) rule.detections[prefix + name] = det;
      rule.conditions = rule.conditions.map((c) => ({ kind: 'and', args: [c, condition] }));
      rule.filters.push(filter.id ?? filter.name ?? filter.title);
    }
  });
}
