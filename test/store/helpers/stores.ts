/** Store and rule set-up shared by the store tests that hunt raw events. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { migrate, migrations, openStore, type Store } from '../../../core/store/index.js';
import { type LoadedRules, loadRules, type RuleIR, type SigmaEngine } from '../../../rules/engine/index.js';
import { compileRuleSql } from '../../../rules/sql/index.js';

/** A store as it was before migration `version`: every earlier migration applied and recorded. */
export async function migrateBefore(store: Store, version: number): Promise<void> {
  await store.client.command({
    query: `CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version`,
  });
  for (const m of migrations({ retentionDays: 20_000 }).filter((x) => x.version < version)) {
    for (const statement of m.statements) await store.client.command({ query: statement });
    await store.client.insert({ table: 'schema_migrations', values: [{ version: m.version, name: m.name }], format: 'JSONEachRow' });
  }
}

/** Raw events stored as the writer stores them (`raw` exactly `JSON.stringify` of the event), all at one time. */
export function insertRaw(store: Store, events: readonly { source: string; id: string; raw: unknown }[]): Promise<unknown> {
  return store.client.insert({
    table: 'events',
    values: events.map((e) => ({ source: e.source, id: e.id, time: '2026-03-01T10:00:00.000Z', raw: JSON.stringify(e.raw) })),
    format: 'JSONEachRow',
    clickhouse_settings: { date_time_input_format: 'best_effort' },
  });
}

/** Rules from YAML text (one or more documents). */
export function rulesFromText(yaml: string): LoadedRules {
  return loadRules([{ text: yaml, file: 'rules.yml' }]);
}

/** Generated CloudTrail records as stored and as the evaluator reads them: JSON text, so an absent option is no key at all. */
export function sampled<T extends object>(arb: fc.Arbitrary<T>, numRuns: number): { id: string; raw: Record<string, unknown> }[] {
  return fc
    .sample(arb, { numRuns, seed: 20261202 })
    .map((r, i) => ({ id: `g${i}`, raw: JSON.parse(JSON.stringify({ eventVersion: '1.08', ...r })) as Record<string, unknown> }));
}

/** A migrated store in a fresh temp folder holding `events` (CloudTrail); `close` removes it. */
export async function storeHolding(
  prefix: string,
  events: readonly { id: string; raw: unknown }[],
): Promise<{ store: Store; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrate(store, { retentionDays: 20_000 });
  await insertRaw(
    store,
    events.map((e) => ({ source: 'cloudtrail', ...e })),
  );
  return {
    store,
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The ids a rule's SQL hunt returns and the ids the evaluator matches among `events` (CloudTrail), both sorted. */
export async function huntAndEvaluator(
  store: Store,
  engine: SigmaEngine,
  rule: RuleIR,
  events: readonly { id: string; raw: Record<string, unknown> }[],
): Promise<{ sql: string; got: string[]; expected: string[] }> {
  const expected = events
    .filter((e) => engine.match('cloudtrail', e.raw).some((m) => m.rule === rule.key))
    .map((e) => e.id)
    .sort();
  const { sql, params } = compileRuleSql(rule);
  const result = await store.client.query({ query: sql, query_params: params, format: 'JSONEachRow' });
  const got = (await result.json<{ id: string }>()).map((r) => r.id).sort();
  return { sql, got, expected };
}
