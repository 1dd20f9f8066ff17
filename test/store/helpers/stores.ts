/** Store and rule set-up shared by the store tests that hunt raw events. */
import { migrations, type Store } from '../../../core/store/index.js';
import { type LoadedRules, loadRules } from '../../../rules/engine/index.js';

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
