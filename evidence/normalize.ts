import { GlasswatchError } from '../core/errors.js';
import type { Store } from '../core/store/client.js';
import { canonicalJson } from './canonical.js';

/**
 * One form for a row whether it is the object a writer inserts or what ClickHouse returns when
 * it is read back: a row is chained as the writer hands it over and checked as the store holds
 * it, so both sides go through `normalizeValue` with the column's type. Times become epoch
 * milliseconds (the store answers `2026-11-20 09:00:00.000`, writers give ISO with a zone),
 * 64-bit integers decimal strings (JSON output quotes them), an object given for a String column
 * its JSON text (what the insert stores, see core/store/writer.ts).
 */
export interface Column {
  name: string;
  type: string;
  /** '' | DEFAULT | MATERIALIZED | ALIAS | EPHEMERAL */
  defaultKind: string;
  defaultExpression: string;
}

const cache = new WeakMap<Store, Map<string, Promise<Column[]>>>();

/** The stored columns of `table` (MATERIALIZED and ALIAS columns are computed, not evidence), cached per store. */
export function tableColumns(store: Store, table: string): Promise<Column[]> {
  let tables = cache.get(store);
  if (!tables) {
    tables = new Map();
    cache.set(store, tables);
  }
  let columns = tables.get(table);
  if (!columns) {
    columns = describe(store, table);
    tables.set(table, columns);
    columns.catch(() => tables.delete(table));
  }
  return columns;
}

/** Forgets cached columns (after a migration added some). */
export function forgetColumns(store: Store): void {
  cache.delete(store);
}

async function describe(store: Store, table: string): Promise<Column[]> {
  const rows = await (
    await store.client.query({ query: 'DESCRIBE TABLE {table:Identifier}', query_params: { table }, format: 'JSONEachRow' })
  ).json<{ name: string; type: string; default_type: string; default_expression: string }>();
  return rows
    .map((r) => ({ name: r.name, type: r.type, defaultKind: r.default_type, defaultExpression: r.default_expression }))
    .filter((c) => c.defaultKind === '' || c.defaultKind === 'DEFAULT');
}

/**
 * The content of a row as chained: every stored column, normalized. A column the writer left out
 * takes its type's zero (what ClickHouse stores), except a `DEFAULT now…()` column, which is set in
 * the row itself so the stored and the chained value are the same; a column with another default
 * expression that the writer left out is not part of the content.
 */
export function rowContent(columns: Column[], row: Record<string, unknown>, nowIso: string): Record<string, unknown> {
  const content: Record<string, unknown> = {};
  for (const c of sortedByName(columns)) {
    let value = row[c.name];
    if (value === undefined) {
      if (c.defaultKind === 'DEFAULT' && /^now(64)?\(/.test(c.defaultExpression)) {
        value = nowIso;
        row[c.name] = nowIso;
      } else if (c.defaultKind === 'DEFAULT') continue;
      else value = null;
    }
    content[c.name] = normalizeValue(c.type, value);
  }
  return content;
}

const sorted = new WeakMap<Column[], Column[]>();
/** Content keys in sorted order, so canonicalJson finds them sorted and skips its sort. */
function sortedByName(columns: Column[]): Column[] {
  let s = sorted.get(columns);
  if (!s) {
    s = [...columns].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    sorted.set(columns, s);
  }
  return s;
}

/** The stored row read back (SELECT *), normalized over the columns a chained content names. */
export function storedContent(
  columns: Map<string, Column>,
  row: Record<string, unknown>,
  names: readonly string[],
): Record<string, unknown> | null {
  const content: Record<string, unknown> = {};
  for (const name of names) {
    const c = columns.get(name);
    // A column the chain recorded is gone from the table: the row is not what was chained.
    if (!c || !(name in row)) return null;
    content[name] = normalizeValue(c.type, row[name]);
  }
  return content;
}

export function keyOf(key: readonly string[], content: Record<string, unknown>): string {
  return canonicalJson(key.map((k) => content[k] ?? null));
}

const normalizers = new Map<string, (value: unknown) => unknown>();

/** normalizeValue with the type's parsing done once per column type (the chain runs it per row and column). */
export function normalizeValue(type: string, value: unknown): unknown {
  let f = normalizers.get(type);
  if (!f) {
    f = normalizerOf(type);
    normalizers.set(type, f);
  }
  return f(value);
}

function normalizerOf(type: string): (value: unknown) => unknown {
  const t = unwrap(type, 'LowCardinality');
  if (t === 'String')
    return (value) => (value === null || value === undefined ? '' : typeof value === 'string' ? value : normalizeSlow(type, value));
  if (/^U?Int(8|16|32)$/.test(t)) return (value) => (value === null || value === undefined ? 0 : Number(value));
  if (t.startsWith('DateTime64')) return (value) => (value === null || value === undefined ? 0 : epochMs(value, type));
  if (t.startsWith('Nullable(')) {
    const inner = t.slice(9, -1);
    return (value) => (value === null || value === undefined ? null : normalizeValue(inner, value));
  }
  if (t.startsWith('Array(')) {
    const inner = t.slice(6, -1);
    return (value) => {
      if (value === null || value === undefined) return [];
      if (!Array.isArray(value)) throw unsupported(type, value);
      return value.map((v) => normalizeValue(inner, v));
    };
  }
  return (value) => normalizeSlow(type, value);
}

function normalizeSlow(type: string, value: unknown): unknown {
  const t = unwrap(type, 'LowCardinality');
  if (t.startsWith('Nullable(')) return value === null || value === undefined ? null : normalizeValue(t.slice(9, -1), value);
  if (t.startsWith('Array(')) {
    const inner = t.slice(6, -1);
    if (value === null || value === undefined) return [];
    if (!Array.isArray(value)) throw unsupported(type, value);
    return value.map((v) => normalizeValue(inner, v));
  }
  if (t.startsWith('DateTime64')) return value === null || value === undefined ? 0 : epochMs(value, type);
  if (t.startsWith('DateTime')) return value === null || value === undefined ? 0 : Math.floor(epochMs(value, type) / 1000) * 1000;
  if (t === 'Date' || t === 'Date32') return value === null || value === undefined ? '1970-01-01' : String(value).slice(0, 10);
  if (/^U?Int(8|16|32)$/.test(t) || /^Float(32|64)$/.test(t)) return value === null || value === undefined ? 0 : Number(value);
  if (/^U?Int(64|128|256)$/.test(t)) return value === null || value === undefined ? '0' : BigInt(value as string | number).toString();
  if (t === 'Bool') return value === true || value === 1 || value === 'true';
  if (t === 'String' || t.startsWith('FixedString') || t.startsWith('Enum') || t === 'UUID') {
    if (value === null || value === undefined) return '';
    if (typeof value === 'object') return JSON.stringify(value);
    return String(value);
  }
  throw unsupported(type, value);
}

function unwrap(type: string, wrapper: string): string {
  return type.startsWith(`${wrapper}(`) ? type.slice(wrapper.length + 1, -1) : type;
}

function epochMs(value: unknown, type: string): number {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') throw unsupported(type, value);
  // The store answers in the column's zone (UTC) without a suffix; writers give ISO with a zone.
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(value) ? value : `${value.replace(' ', 'T')}Z`;
  const ms = Date.parse(zoned);
  if (Number.isNaN(ms)) throw unsupported(type, value);
  return ms;
}

function unsupported(type: string, value: unknown): GlasswatchError {
  return new GlasswatchError('BG_EVIDENCE_TYPE', `the audit chain cannot record a ${typeof value} for a ${type} column`, {
    stage: 'storing',
    hint: 'a new evidence column type needs a normalization in evidence/normalize.ts',
  });
}
