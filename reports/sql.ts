import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../core/paths.js';
import type { Store } from '../core/store/client.js';
import { ReportError } from './errors.js';

/** The report queries, shipped as `.sql` files so they can be read, reviewed and run by hand. */
export const QUERY_NAMES = [
  'sessions',
  'session-actions',
  'attempts',
  'ticket-versions',
  'ticket-coverage',
  'ticket-count',
  'rotation-credentials',
  'rotation-evidence',
  'rotation-uses',
  'history-start',
  'delivery-status',
] as const;
export type QueryName = (typeof QUERY_NAMES)[number];

const cache = new Map<QueryName, string>();

export function queriesDir(): string {
  return join(packageRoot(), 'reports', 'queries');
}

export function querySql(name: QueryName): string {
  let sql = cache.get(name);
  if (sql === undefined) {
    sql = readFileSync(join(queriesDir(), `${name}.sql`), 'utf8');
    cache.set(name, sql);
  }
  return sql;
}

/**
 * Runs one report query with typed `{name:Type}` parameters (values never enter the SQL text).
 * chDB and the HTTP client are both asynchronous, so a report never holds the event loop while
 * the engine works; rows come back as JSON, with 64-bit integers as numbers (chDB) or strings
 * (server), which the builders pass through `Number()`.
 */
export async function runQuery<T = Record<string, unknown>>(store: Store, name: QueryName, params: Record<string, unknown>): Promise<T[]> {
  try {
    // Names once, then value arrays: less than half the bytes of JSONEachRow for wide report rows
    // (16,667 sessions: 5 MB instead of 12 MB), which chDB must write and Node must parse.
    const result = await store.client.query({ query: querySql(name), query_params: params, format: 'JSONCompactEachRowWithNames' });
    const [names, ...rows] = await result.json<unknown[]>();
    if (!names) return [];
    return rows.map((values) => {
      const row: Record<string, unknown> = {};
      for (let i = 0; i < names.length; i++) row[names[i] as string] = values[i];
      return row as T;
    });
  } catch (cause) {
    throw new ReportError('BG_REPORT_QUERY', `report query ${name} failed on ${store.describe}: ${(cause as Error).message}`, {
      stage: 'storing',
      cause,
      retriable: store.config.kind === 'clickhouse',
    });
  }
}

/** Epoch milliseconds as a string or number from either engine; -1 (our "none" sentinel) becomes null. */
export function msOrNull(v: unknown): number | null {
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : null;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function isoOrNull(v: unknown): string | null {
  const ms = msOrNull(v);
  return ms === null ? null : iso(ms);
}

export function textOrNull(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

export function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : [];
}
