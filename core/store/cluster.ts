import { GlasswatchError } from '../errors.js';

/**
 * `store.cluster`: the schema on a ClickHouse cluster of one shard and N replicas. Every DDL
 * statement of the migrations runs `ON CLUSTER`, and every MergeTree-family table becomes its
 * Replicated twin, keyed in Keeper by `{shard}/{database}/<table>` with the server's `{replica}`
 * macro, so each replica holds every row and any replica answers every query. (Several shards would
 * need Distributed tables in front: not supported; one shard scales reads with replicas.)
 *
 * DDL cannot take query parameters: the cluster name is a validated identifier, and a statement this
 * rewriter does not recognize is refused rather than run on one replica only.
 */
const CLUSTER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

export function validClusterName(name: string): boolean {
  return CLUSTER_NAME.test(name);
}

const CREATE_TABLE = /^(\s*CREATE TABLE IF NOT EXISTS\s+)([A-Za-z_][A-Za-z0-9_]*)(\s*\()/;
const CREATE_VIEW = /^(\s*CREATE MATERIALIZED VIEW IF NOT EXISTS\s+)([A-Za-z_][A-Za-z0-9_]*)(\s+TO\s)/;
const ALTER_TABLE = /^(\s*ALTER TABLE\s+)([A-Za-z_][A-Za-z0-9_]*)(\s)/;
const CREATE_DATABASE = /^(\s*CREATE DATABASE IF NOT EXISTS\s+)([A-Za-z_][A-Za-z0-9_]*|\{db:Identifier\})(\s*)$/;
/** `ENGINE = ReplacingMergeTree(version)`, `ENGINE = MergeTree`, …: the family, and its arguments if any. */
const ENGINE = /ENGINE\s*=\s*((?:Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing)?MergeTree)\b(\s*\(([^)]*)\))?/;

export function onCluster(statement: string, cluster: string): string {
  if (!validClusterName(cluster)) {
    throw new GlasswatchError('BG_STORE_CLUSTER', `store.cluster must be a cluster name (letters, digits, _ . -), got "${cluster}"`, {
      stage: 'config',
    });
  }
  const table = CREATE_TABLE.exec(statement);
  if (table) {
    const name = table[2]!;
    const created = statement.replace(CREATE_TABLE, `$1$2 ON CLUSTER ${cluster}$3`);
    const engine = ENGINE.exec(created);
    if (!engine) {
      if (/ENGINE\s*=\s*Null\b/.test(created)) return created;
      throw unknownDdl(statement, 'a table engine other than the MergeTree family or Null');
    }
    const args = engine[3]?.trim();
    const replicated = `ENGINE = Replicated${engine[1]}('/clickhouse/tables/{shard}/{database}/${name}', '{replica}'${args ? `, ${args}` : ''})`;
    return created.replace(ENGINE, replicated);
  }
  if (CREATE_VIEW.test(statement)) return statement.replace(CREATE_VIEW, `$1$2 ON CLUSTER ${cluster}$3`);
  if (ALTER_TABLE.test(statement)) return statement.replace(ALTER_TABLE, `$1$2 ON CLUSTER ${cluster}$3`);
  if (CREATE_DATABASE.test(statement)) return statement.replace(CREATE_DATABASE, `$1$2 ON CLUSTER ${cluster}$3`);
  // A backfill runs once, on the replica the migration runs on: Replicated tables copy its rows.
  if (/^\s*INSERT INTO\s/.test(statement)) return statement;
  throw unknownDdl(statement, 'a statement this rewriter does not know');
}

function unknownDdl(statement: string, what: string): GlasswatchError {
  return new GlasswatchError('BG_STORE_CLUSTER', `cannot run on a cluster: ${what}: ${statement.trim().slice(0, 120)}`, {
    stage: 'storing',
    hint: 'teach core/store/cluster.ts this statement, or apply it on every replica by hand',
  });
}
