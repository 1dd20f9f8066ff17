import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config.js';
import { openStore, type Store } from '../../core/store/client.js';
import { onCluster } from '../../core/store/cluster.js';
import { migrations } from '../../core/store/migrations.js';

/**
 * `store.cluster` cannot be run here (no ClickHouse server or Keeper): what is checked is the SQL.
 * Every migration statement, rewritten for a cluster, must run ON CLUSTER, use a Replicated engine
 * with its own Keeper path, and parse in the real engine (chDB's `formatQuery`).
 */
describe('store.cluster: the schema ON CLUSTER on Replicated tables', () => {
  let store: Store;
  let dir: string;
  beforeAll(() => {
    // A folder of its own (':memory:' made chDB create a folder of that name in the working directory).
    dir = mkdtempSync(join(tmpdir(), 'gw-cluster-'));
    store = openStore({ kind: 'chdb', path: dir });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const statements = migrations().flatMap((m) => m.statements.map((s) => ({ version: m.version, s })));

  it('rewrites every migration statement, each parsing in the engine', async () => {
    const paths = new Set<string>();
    for (const { version, s } of statements) {
      const out = onCluster(s, 'glasswatch_cluster');
      if (/^\s*INSERT INTO/.test(s)) {
        // A backfill runs once; the Replicated tables copy its rows to every replica.
        expect(out).toBe(s);
        continue;
      }
      expect(out, `migration ${version}: ${s.slice(0, 80)}`).toMatch(/ ON CLUSTER glasswatch_cluster[\s(]/);
      if (/CREATE TABLE/.test(s) && !/ENGINE = Null/.test(s)) {
        const m = /ENGINE = Replicated\w*MergeTree\('(\/clickhouse\/tables\/\{shard\}\/\{database\}\/\w+)', '\{replica\}'/.exec(out);
        expect(m, out).not.toBeNull();
        expect(paths.has(m![1]!), `one Keeper path per table: ${m![1]}`).toBe(false);
        paths.add(m![1]!);
      }
      const r = await store.client.query({ query: 'SELECT formatQuery({q:String}) AS f', query_params: { q: out }, format: 'JSONEachRow' });
      const [row] = (await r.json()) as { f: string }[];
      expect(row!.f).toContain('ON CLUSTER glasswatch_cluster');
    }
    expect(paths.size).toBeGreaterThanOrEqual(6);
  });

  it('keeps the engine arguments (the version column of a ReplacingMergeTree)', () => {
    const out = onCluster('CREATE TABLE IF NOT EXISTS t (a String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY a', 'c1');
    expect(out).toContain("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/t', '{replica}', v)");
    expect(onCluster('CREATE TABLE IF NOT EXISTS u (a String) ENGINE = MergeTree ORDER BY a', 'c1')).toContain(
      "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/u', '{replica}')",
    );
  });

  it('refuses what it does not know, and names that would inject SQL', () => {
    expect(() => onCluster('DROP TABLE events', 'c1')).toThrow(/cannot run on a cluster/);
    expect(() => onCluster('CREATE TABLE IF NOT EXISTS t (a String) ENGINE = Log', 'c1')).toThrow(/engine/);
    expect(() => onCluster('ALTER TABLE events ADD COLUMN x String', 'c1; DROP TABLE events')).toThrow(/cluster name/);
  });

  it('is validated in the config: a name, and only with a ClickHouse server', () => {
    const withUrl = (cluster: unknown) => parseConfig({ store: { url: 'https://ch.example:8443', cluster } }, 'gw.yml');
    const ok = withUrl('prod_replicas').store;
    expect(ok.kind === 'clickhouse' && ok.cluster).toBe('prod_replicas');
    expect(() => withUrl("x' ON CLUSTER y")).toThrow(/gw\.yml.*store\.cluster/);
    expect(() => parseConfig({ store: { path: '/tmp/x', cluster: 'c' } }, 'gw.yml')).toThrow(/store\.cluster.*needs store\.url/);
  });
});
