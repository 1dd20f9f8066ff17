/**
 * Loading rule files: YAML multi-document parsing (duplicate keys are errors), legacy
 * v1 rule collections, classification into rules / correlations / filters, then the
 * cross-document steps: correlation references, filter application and `generate`.
 * Every failure becomes a RuleRejection; loading never throws for a bad rule. Rule files
 * may come from the people the detector watches, so each file and each document loads
 * in isolation and parsing is bounded (size, aliases, nesting): one hostile document is
 * rejected with its reason and every other rule still loads.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isPair, isScalar, isSeq, parseAllDocuments } from 'yaml';
import { mapConditionNames } from './condition.js';
import { SIGMA_ERROR_CODES as C, type SigmaErrorCode, SigmaRuleError } from './errors.js';
import type { ConditionIR, CorrelationIR, FilterIR, LogSource, RuleIR } from './ir.js';
import { MAX_VALUES_PER_DOCUMENT } from './parse-detection.js';
import { type Doc, setOwn } from './parse-meta.js';
import { type DocumentOptions, documentKind, parseCorrelationDocument, parseFilterDocument, parseRuleDocument } from './parse-rule.js';

/** Largest rule file read (the biggest SigmaHQ file is ~300 KB). */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;
/** Largest single YAML document: 3x the biggest SigmaHQ rule. */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;
/** Alias expansions per document (`yaml`'s maxAliasCount): stops "billion laughs" bombs. */
export const MAX_ALIAS_COUNT = 100;
/** Deepest map/list nesting of a document (real rules: ~5); also catches cyclic aliases. */
export const MAX_YAML_DEPTH = 64;
/** Correlations feeding correlations: the engine follows a chain recursively at match time. */
export const MAX_CORRELATION_CHAIN = 32;
/** Nodes visited when checking the depth: bounds the walk over alias-shared subtrees. */
const MAX_YAML_NODES = 1_000_000;

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
    // Regular files only: reading a FIFO or device named `x.yml` would block or never end.
    else if (entry.isFile() && /\.ya?ml$/i.test(entry.name)) out.push(full);
  }
  return out;
}

export function loadRules(sources: RuleSource[], options: LoadOptions = {}): LoadedRules {
  const result: LoadedRules = { warnings: [], rules: [], correlations: [], filters: [], rejected: [], files: 0 };
  /** `shown`: the file holds several documents, so the message names the document. */
  const reject = (err: unknown, file: string, doc?: Doc, document?: number, shown = false): void => {
    const docId = typeof doc?.id === 'string' ? doc.id : undefined;
    const where = { file, ruleId: docId, document: shown ? document : undefined };
    const e = err instanceof SigmaRuleError ? err.locate(where) : new SigmaRuleError(...unexpected(err), where, err);
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
        const st = statSync(file);
        if (!st.isFile()) {
          reject(new SigmaRuleError(C.io, 'not a regular file'), file);
          continue;
        }
        const size = st.size;
        if (size > MAX_FILE_BYTES) {
          reject(new SigmaRuleError(C.limit, `the file is larger than ${MAX_FILE_BYTES} bytes (${size})`), file);
          continue;
        }
        inputs.push({ file, text: readFileSync(file, 'utf8') });
      } catch (err) {
        reject(new SigmaRuleError(C.io, `cannot read: ${(err as Error).message}`), file);
      }
    }
  }
  for (const { text, file } of inputs) {
    result.files++;
    if (text.length > MAX_FILE_BYTES) {
      reject(new SigmaRuleError(C.limit, `the file is larger than ${MAX_FILE_BYTES} bytes`), file);
      continue;
    }
    let documents: ReadDocument[];
    try {
      documents = readDocuments(text, options);
    } catch (err) {
      reject(err, file);
      continue;
    }
    const shown = documents.length > 1 || documents.some((d) => d.index > 0);
    for (const { doc, index, error } of documents) {
      if (error) {
        reject(error, file, doc, index, shown);
        continue;
      }
      try {
        const d = doc as Doc;
        const ruleId = typeof d.id === 'string' ? d.id : undefined;
        const warn = (reason: string, path: string): void => {
          result.warnings.push({ reason, file, ruleId, path });
        };
        const kind = documentKind(d);
        const docOptions: LoadOptions = { ...options, valueBudget: { left: MAX_VALUES_PER_DOCUMENT } };
        if (kind === 'rule') {
          const rule = parseRuleDocument(d, file, docOptions, warn);
          result.rules.push({ ...rule, key: ruleKey(rule, index) });
        } else if (kind === 'filter') result.filters.push(parseFilterDocument(d, file, docOptions, warn));
        else {
          const corr = parseCorrelationDocument(d, file, docOptions, warn);
          result.correlations.push({ ...corr, key: ruleKey(corr, index) });
        }
      } catch (err) {
        reject(err, file, doc, index, shown);
      }
    }
  }
  resolveCorrelations(result, reject);
  applyFilters(result, reject);
  return result;
}

/** Code and reason for an error that is not a SigmaRuleError (a bug or an exhausted stack). */
function unexpected(err: unknown): [SigmaErrorCode, string] {
  if (err instanceof RangeError) return [C.limit, `the document is too complex to load (${err.message})`];
  return [C.internal, `the document could not be loaded: ${err instanceof Error ? err.message : String(err)}`];
}

/** The first nesting problem of a parsed document: too deep (or cyclic through aliases), or too large. */
function nestingProblem(value: unknown): string | undefined {
  const stack: [unknown, number][] = [[value, 0]];
  let visited = 0;
  while (stack.length) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (node === null || typeof node !== 'object') continue;
    if (depth >= MAX_YAML_DEPTH) return `the document is nested deeper than ${MAX_YAML_DEPTH} levels (or its aliases form a cycle)`;
    const children = Array.isArray(node) ? node : Object.values(node);
    visited += children.length;
    if (visited > MAX_YAML_NODES) return `the document expands to more than ${MAX_YAML_NODES} values`;
    for (const child of children) stack.push([child, depth + 1]);
  }
  return undefined;
}

interface ReadDocument {
  doc: Doc | undefined;
  index: number;
  error?: SigmaRuleError;
}

/** YAML documents of one file, with v1 collection actions applied when enabled. */
function readDocuments(text: string, options: LoadOptions): ReadDocument[] {
  // Line starts computed once: per-error slicing was quadratic in a file of many bad documents.
  let lineStarts: number[] | undefined;
  const lineOf = (offset: number): number => {
    if (!lineStarts) {
      lineStarts = [0];
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
    }
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((lineStarts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const out: ReadDocument[] = [];
  // yaml's own uniqueKeys compares each key with every key before it (40,000 keys: 130 s);
  // duplicates are found below with one Set per map instead.
  const docs = parseAllDocuments(text, { uniqueKeys: false, prettyErrors: false });
  let template: Doc | undefined;
  let previous: Doc | undefined;
  docs.forEach((yamlDoc, index) => {
    const [start, , end] = yamlDoc.range;
    if (end - start > MAX_DOCUMENT_BYTES / 4 && Buffer.byteLength(text.slice(start, end)) > MAX_DOCUMENT_BYTES) {
      out.push({ doc: undefined, index, error: new SigmaRuleError(C.limit, `the document is larger than ${MAX_DOCUMENT_BYTES} bytes`) });
      return;
    }
    const yamlError = yamlDoc.errors[0];
    if (yamlError) {
      const msg = `${yamlError.message.split('\n')[0]} (line ${lineOf(yamlError.pos[0])})`;
      out.push({ doc: undefined, index, error: new SigmaRuleError(C.yaml, msg) });
      return;
    }
    const duplicate = firstDuplicateKey(yamlDoc.contents);
    if (duplicate) {
      const msg = `duplicate key '${duplicate.key}' (line ${lineOf(duplicate.offset)})`;
      out.push({ doc: undefined, index, error: new SigmaRuleError(C.duplicateKey, msg) });
      return;
    }
    let value: unknown;
    try {
      value = yamlDoc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const bomb = /excessive alias count/i.test(message);
      const reason = bomb ? `YAML aliases expand more than ${MAX_ALIAS_COUNT} times (an alias bomb)` : `YAML: ${message}`;
      out.push({ doc: undefined, index, error: new SigmaRuleError(bomb ? C.limit : C.yaml, reason) });
      return;
    }
    const problem = nestingProblem(value);
    if (problem) {
      out.push({ doc: undefined, index, error: new SigmaRuleError(C.limit, problem) });
      return;
    }
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

/**
 * The first map key repeated in its map (the last one silently winning would change
 * detection logic), by an iterative walk with one Set per map: linear in the document.
 * Scalar keys compare by value, as yaml's uniqueKeys does; aliases are not followed.
 */
function firstDuplicateKey(root: unknown): { key: string; offset: number } | undefined {
  const stack: unknown[] = [root];
  while (stack.length) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        if (isScalar(pair.key)) {
          if (seen.has(pair.key.value)) return { key: String(pair.key.value), offset: pair.key.range?.[0] ?? 0 };
          seen.add(pair.key.value);
        }
        stack.push(pair.key, pair.value);
      }
    } else if (isSeq(node)) for (const item of node.items) stack.push(item);
    else if (isPair(node)) stack.push(node.key, node.value);
  }
  return undefined;
}

/** Deep merge where `winner`'s scalars and lists replace `base`'s, and maps merge. */
export function deepMerge(base: Doc, winner: Doc): Doc {
  const out: Doc = { ...base };
  for (const [k, v] of Object.entries(winner)) {
    const prev = Object.hasOwn(out, k) ? out[k] : undefined;
    const bothMaps = [prev, v].every((x) => x !== null && typeof x === 'object' && !Array.isArray(x));
    setOwn(out, k, bothMaps ? deepMerge(prev as Doc, v as Doc) : v);
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
        setOwn(aliases, alias, {});
        for (const [ref, field] of Object.entries(mapping)) {
          const key = resolve(ref);
          if (!key)
            throw new SigmaRuleError(C.reference, `alias '${alias}' references unknown rule '${ref}'`, {
              path: `correlation.aliases.${alias}.${ref}`,
            });
          setOwn(aliases[alias] as Record<string, string>, key, field);
        }
      }
      valid.push({ ...corr, rules, aliases });
    } catch (err) {
      reject(err, corr.file, { id: corr.id });
    }
  }
  // Chains must be acyclic: a correlation may not (indirectly) reach a cycle.
  const problems = chainProblems(valid);
  result.correlations = valid.filter((c) => {
    const problem = problems.get(c.key);
    if (!problem) return true;
    const error =
      problem === 'cycle'
        ? new SigmaRuleError(C.reference, 'correlation chain references itself', { path: 'correlation.rules' })
        : new SigmaRuleError(C.limit, `correlation chain is more than ${MAX_CORRELATION_CHAIN} correlations deep`, {
            path: 'correlation.rules',
          });
    reject(error, c.file, { id: c.id });
    return false;
  });
}

/**
 * Correlations that cannot run: a reference cycle is reachable from them, or they sit
 * more than MAX_CORRELATION_CHAIN correlations deep (the engine feeds a firing
 * correlation to the next one recursively). Iterative DFS with memoised results: linear
 * in the references, whatever the depth or sharing of the chains.
 */
function chainProblems(correlations: CorrelationIR[]): Map<string, 'cycle' | 'deep'> {
  const byKey = new Map(correlations.map((c) => [c.key, c] as const));
  const state = new Map<string, 'active' | 'ok' | 'cycle'>();
  const depth = new Map<string, number>();
  interface Frame {
    key: string;
    next: number;
    cycle: boolean;
    below: number;
  }
  for (const root of correlations) {
    if (state.has(root.key)) continue;
    state.set(root.key, 'active');
    const stack: Frame[] = [{ key: root.key, next: 0, cycle: false, below: 0 }];
    while (stack.length) {
      const top = stack[stack.length - 1] as Frame;
      const refs = (byKey.get(top.key) as CorrelationIR).rules;
      if (top.next < refs.length) {
        const ref = refs[top.next++] as string;
        if (!byKey.has(ref)) continue;
        const seen = state.get(ref);
        if (seen === 'active' || seen === 'cycle') top.cycle = true;
        else if (seen === 'ok') top.below = Math.max(top.below, depth.get(ref) as number);
        else {
          state.set(ref, 'active');
          stack.push({ key: ref, next: 0, cycle: false, below: 0 });
        }
        continue;
      }
      stack.pop();
      state.set(top.key, top.cycle ? 'cycle' : 'ok');
      depth.set(top.key, top.below + 1);
      const parent = stack[stack.length - 1];
      if (parent) {
        if (top.cycle) parent.cycle = true;
        parent.below = Math.max(parent.below, top.below + 1);
      }
    }
  }
  const out = new Map<string, 'cycle' | 'deep'>();
  for (const [key, s] of state) {
    if (s === 'cycle') out.set(key, 'cycle');
    else if ((depth.get(key) as number) > MAX_CORRELATION_CHAIN) out.set(key, 'deep');
  }
  return out;
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
      // Appended to a flat AND: nesting one level per filter overflowed the stack at ~5,000 filters.
      rule.conditions = rule.conditions.map((c) =>
        c.kind === 'and' ? { kind: 'and', args: [...c.args, condition] } : { kind: 'and', args: [c, condition] },
      );
      rule.filters.push(filter.id ?? filter.name ?? filter.title);
    }
  });
}
