/**
 * Validation of the descriptive fields shared by rules, correlations and filters
 * (sigma-rules-specification.md §Components, json-schema/sigma-detection-rule-schema.json).
 */
import { SIGMA_ERROR_CODES as C, fail } from './errors.js';
import type { LogSource, RuleMeta, SigmaLevel, SigmaStatus } from './ir.js';

export const LEVELS: readonly SigmaLevel[] = ['informational', 'low', 'medium', 'high', 'critical'];
export const STATUSES: readonly SigmaStatus[] = ['stable', 'test', 'experimental', 'deprecated', 'unsupported'];
const RELATED_TYPES = new Set(['derived', 'obsolete', 'merged', 'renamed', 'similar']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TAG = /^[a-z0-9_-]+\.[a-z0-9._-]+$/;

/** Keys with a meaning in the spec; everything else is a custom attribute. */
const META_KEYS = new Set([
  'title',
  'id',
  'name',
  'related',
  'taxonomy',
  'status',
  'description',
  'license',
  'author',
  'references',
  'date',
  'modified',
  'logsource',
  'detection',
  'fields',
  'falsepositives',
  'level',
  'tags',
  'scope',
  'correlation',
  'filter',
  'generate',
]);

export type Doc = Record<string, unknown>;

/** `obj[key] = value` that stays an own property even for `__proto__` (YAML keys are untrusted). */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

export function optionalString(doc: Doc, key: string, max = 65_535): string | undefined {
  const v = doc[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(C.field, `'${key}' must be a string`, key);
  if (v.length > max) fail(C.field, `'${key}' is longer than ${max} characters`, key);
  return v;
}

/** A list of strings; a lone string is accepted as a one-element list (pySigma does the same). */
export function stringList(doc: Doc, key: string, prefix = ''): string[] {
  const v = doc[key];
  const path = prefix + key;
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) fail(C.field, `'${key}' must be a list of strings`, path);
  return v.map((x, i) => {
    if (typeof x === 'string') return x;
    if (typeof x === 'number' || typeof x === 'boolean') return String(x);
    return fail(C.field, `'${key}' must contain strings only`, `${path}[${i}]`);
  });
}

/** Receives non-fatal findings (legacy forms accepted for compatibility). */
export type Warn = (reason: string, path: string) => void;

/**
 * `YYYY-MM-DD` with a plausible year (pySigma rejects `4000-01-01`). The v1 form
 * `YYYY/MM/DD` only changes metadata, never detection, so it is accepted with a
 * warning unless `strict` is set (the deprecated SigmaHQ rules still use it).
 */
function date(doc: Doc, key: string, warn: Warn, strict: boolean): string | undefined {
  const v = optionalString(doc, key);
  if (v === undefined) return undefined;
  const legacy = /^(\d{4})\/(\d{2})\/(\d{2})$/.exec(v);
  const m = legacy ?? /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  const iso = m ? `${m[1]}-${m[2]}-${m[3]}` : '';
  const d = m ? new Date(`${iso}T00:00:00Z`) : null;
  if (!m || !d || Number.isNaN(d.getTime()) || d.getUTCDate() !== Number(m[3]) || !/^(19|20)/.test(iso))
    fail(C.field, `'${key}' must be a date in the form YYYY-MM-DD, got '${v}'`, key);
  if (legacy) {
    if (strict) fail(C.deprecated, `'${key}' uses the v1 form YYYY/MM/DD; Sigma v2 requires YYYY-MM-DD`, key);
    warn(`'${key}' uses the v1 form YYYY/MM/DD (accepted as YYYY-MM-DD)`, key);
  }
  return iso;
}

export function parseMeta(doc: Doc, warn: Warn = () => {}, strict = false): RuleMeta {
  const title = doc.title;
  if (typeof title !== 'string' || title.trim() === '') fail(C.field, "the mandatory 'title' is missing or not a string", 'title');
  if (title.length > 256) fail(C.field, "'title' is longer than 256 characters", 'title');
  const id = optionalString(doc, 'id');
  if (id !== undefined && !UUID.test(id)) fail(C.field, `'id' must be a UUID, got '${id}'`, 'id');
  const status = optionalString(doc, 'status');
  if (status !== undefined && !STATUSES.includes(status as SigmaStatus)) fail(C.field, `unknown status '${status}'`, 'status');
  const level = optionalString(doc, 'level');
  if (level !== undefined && !LEVELS.includes(level as SigmaLevel)) fail(C.field, `unknown level '${level}'`, 'level');
  const tags = stringList(doc, 'tags');
  tags.forEach((t, i) => {
    if (!TAG.test(t)) fail(C.field, `tag '${t}' is not of the form namespace.name`, `tags[${i}]`);
  });
  const custom: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (!META_KEYS.has(k)) setOwn(custom, k, v);
  return {
    id,
    name: optionalString(doc, 'name', 256),
    title,
    status: status as SigmaStatus | undefined,
    level: level as SigmaLevel | undefined,
    description: optionalString(doc, 'description'),
    author: optionalString(doc, 'author'),
    license: optionalString(doc, 'license'),
    references: stringList(doc, 'references'),
    tags,
    falsepositives: stringList(doc, 'falsepositives'),
    fields: stringList(doc, 'fields'),
    scope: stringList(doc, 'scope'),
    related: parseRelated(doc.related),
    taxonomy: optionalString(doc, 'taxonomy') ?? 'sigma',
    date: date(doc, 'date', warn, strict),
    modified: date(doc, 'modified', warn, strict),
    custom,
  };
}

function parseRelated(v: unknown): { id: string; type: string }[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(C.field, "'related' must be a list of {id, type}", 'related');
  return v.map((r, i) => {
    const path = `related[${i}]`;
    if (r === null || typeof r !== 'object') return fail(C.field, 'a related entry must be a map with id and type', path);
    const { id, type } = r as Record<string, unknown>;
    if (typeof id !== 'string' || !UUID.test(id)) fail(C.field, 'related id must be a UUID', `${path}.id`);
    if (typeof type !== 'string' || !RELATED_TYPES.has(type))
      fail(C.field, `related type '${String(type)}' is not one of ${[...RELATED_TYPES].join(', ')}`, `${path}.type`);
    return { id, type };
  });
}

export function parseLogsource(v: unknown, path = 'logsource'): LogSource {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(C.field, "the mandatory 'logsource' is missing or not a map", path);
  const out: LogSource = {};
  for (const [k, value] of Object.entries(v)) {
    if (value === null || value === undefined) continue;
    if (typeof value !== 'string') fail(C.field, `logsource '${k}' must be a string`, `${path}.${k}`);
    setOwn(out, k, value);
  }
  if (!out.category && !out.product && !out.service) fail(C.field, 'logsource needs at least one of category, product, service', path);
  return out;
}
