import type { Store } from '../core/store/client.js';
import { EVIDENCE_TTL, migrations, RAW_TTL } from '../core/store/migrations.js';
import { canonicalJson } from '../evidence/canonical.js';
import { settleChain } from '../evidence/journal.js';
import { ReportError } from './errors.js';
import type { Period } from './types.js';

const DAY_MS = 86_400_000;

/** Days each kind of data is kept, as the store's TTLs say (not the config: the TTL is what purges). */
export interface StoreRetention {
  /** `events` (raw audit records); null: no TTL. */
  rawDays: number | null;
  /** `sessions` (verdicts and the other evidence tables); null: no TTL. */
  evidenceDays: number | null;
}

/**
 * What a report says when its period reaches before a retention horizon. Part of the report's
 * content (and digest): a report over a purged period must not read as a quiet "No rows".
 */
export interface RetentionNotice {
  /** First UTC day whose raw events are still kept (TTL purges whole rows older than this). */
  rawEventsFrom: string;
  evidenceFrom: string | null;
  note: string;
}

/** Per table, the day count of its `TTL toDateTime(col) + toIntervalDay(N)` from the engine's own DDL (null: no TTL); absent: no such table. */
async function ttlDays(store: Store, tables: string[]): Promise<Map<string, number | null>> {
  try {
    const rows = await (
      await store.client.query({
        query:
          'SELECT name, create_table_query AS ddl FROM system.tables WHERE database = currentDatabase() AND name IN {tables:Array(String)}',
        query_params: { tables },
        format: 'JSONEachRow',
      })
    ).json<{ name: string; ddl: string }>();
    return new Map(
      rows.map((r) => {
        const match = /\bTTL\b.*?toIntervalDay\((\d+)\)/.exec(r.ddl);
        return [r.name, match ? Number(match[1]) : null];
      }),
    );
  } catch (cause) {
    throw new ReportError(
      'BG_REPORT_QUERY',
      `cannot read the retention of ${tables.join(' and ')} on ${store.describe}: ${(cause as Error).message}`,
      {
        stage: 'storing',
        cause,
        retriable: store.config.kind === 'clickhouse',
      },
    );
  }
}

export async function storeRetention(store: Store): Promise<StoreRetention> {
  const days = await ttlDays(store, ['events', 'sessions']);
  return { rawDays: days.get('events') ?? null, evidenceDays: days.get('sessions') ?? null };
}

/**
 * Migrations set the TTLs once, with the retention configured then. A changed `store.retentionDays`
 * or `evidenceRetentionDays` is applied here, table by table where the store's TTL differs, so the
 * store keeps what the config says. Returns the tables changed.
 */
export async function reconcileRetention(
  store: Store,
  options: { retentionDays: number; evidenceRetentionDays: number },
): Promise<string[]> {
  migrations(options); // validates both numbers (TTL is DDL: they are written into it, never as text from input)
  const wanted = [
    ...RAW_TTL.map((t) => ({ ...t, days: options.retentionDays })),
    ...[...EVIDENCE_TTL, { table: 'session_detections', column: 'start' }].map((t) => ({ ...t, days: options.evidenceRetentionDays })),
  ];
  const changed: string[] = [];
  const days = await ttlDays(
    store,
    wanted.map((t) => t.table),
  );
  for (const t of wanted) {
    const current = days.get(t.table);
    if (current === undefined || current === t.days) continue;
    try {
      await store.client.command({
        query: `ALTER TABLE ${t.table} MODIFY TTL toDateTime(${t.column}) + INTERVAL ${Math.trunc(t.days)} DAY`,
      });
    } catch (cause) {
      throw new ReportError(
        'BG_REPORT_RETENTION',
        `cannot apply the retention of ${t.table} on ${store.describe}: ${(cause as Error).message}`,
        {
          stage: 'storing',
          cause,
          retriable: store.config.kind === 'clickhouse',
        },
      );
    }
    changed.push(t.table);
  }
  return changed;
}

/**
 * The first kept UTC day for a retention of `days` at `nowMs`. A row expires when
 * `toDateTime(time) + days` has passed; the horizon is rounded up to a whole day so the notice (and
 * the digest that covers it) changes once a day, not at every run.
 */
export function horizonMs(days: number, nowMs: number): number {
  return Math.ceil((nowMs - days * DAY_MS) / DAY_MS) * DAY_MS;
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The notice for a period, or null when the whole period is within both retentions. */
export function retentionNotice(period: Period, retention: StoreRetention, nowMs: number): RetentionNotice | null {
  if (retention.rawDays === null) return null;
  const raw = horizonMs(retention.rawDays, nowMs);
  if (period.fromMs >= raw) return null;
  const evidence = retention.evidenceDays === null ? null : horizonMs(retention.evidenceDays, nowMs);
  const evidenceCut = evidence !== null && period.fromMs < evidence;
  const note = evidenceCut
    ? `raw events before ${day(raw)} removed by retention; verdicts and sessions before ${day(evidence)} removed too (evidence retention ${retention.evidenceDays} days)`
    : `raw events before ${day(raw)} removed by retention; verdicts and sessions kept`;
  return { rawEventsFrom: day(raw), evidenceFrom: evidenceCut ? day(evidence) : null, note };
}

/** Whole days of the period that lie before a horizon: the numeric form the report's totals carry. */
export function daysBefore(period: Period, horizon: string | null): number {
  if (horizon === null) return 0;
  const h = Date.parse(`${horizon}T00:00:00Z`);
  return Math.max(0, Math.ceil((Math.min(h, period.toMs) - period.fromMs) / DAY_MS));
}

/** What recording a horizon needs of the audit chain (evidence/chain.ts's AuditChain). */
export interface ChainAppender {
  append(entries: Array<{ kind: string; table: string; key: string; content: string }>): Promise<void>;
}

/**
 * ClickHouse purges expired rows in background merges, at no moment anyone sees. So the horizon
 * in force is written to the audit chain, once per day it changes (any writer's record counts):
 * a verifier then knows what was removed on purpose, and from when. Returns true when recorded now.
 */
export async function recordRetentionHorizon(
  store: Store,
  chain: ChainAppender,
  retention: StoreRetention,
  nowMs: number,
): Promise<boolean> {
  if (retention.rawDays === null && retention.evidenceDays === null) return false;
  const content = {
    rawEventsFrom: retention.rawDays === null ? null : day(horizonMs(retention.rawDays, nowMs)),
    rawDays: retention.rawDays,
    rawTables: RAW_TTL.map((t) => t.table),
    evidenceFrom: retention.evidenceDays === null ? null : day(horizonMs(retention.evidenceDays, nowMs)),
    evidenceDays: retention.evidenceDays,
    evidenceTables: EVIDENCE_TTL.map((t) => t.table),
  };
  const key = `raw<${content.rawEventsFrom ?? 'never'};evidence<${content.evidenceFrom ?? 'never'}`;
  await settleChain(store); // a record still in a journal counts as written
  const known = await (
    await store.client.query({
      query: "SELECT count() AS n FROM audit_log WHERE kind = 'retention' AND key = {key:String}",
      query_params: { key },
      format: 'JSONEachRow',
    })
  ).json<{ n: string | number }>();
  if (Number(known[0]?.n ?? 0) > 0) return false;
  await chain.append([{ kind: 'retention', table: '', key, content: canonicalJson(content) }]);
  return true;
}
