import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { GlasswatchError } from '../errors.js';
import { redactText } from '../log.js';
import { ensurePrivateStoreDirSync, holdPrivateUmask, releasePrivateUmask } from '../paths.js';

/** Where the audit store lives: an embedded chDB data folder (default) or a ClickHouse server. */
export type StoreConfig =
  | {
      kind: 'chdb';
      /** Data folder of the embedded engine. @default ".glasswatch/store" */
      path: string;
    }
  | {
      kind: 'clickhouse';
      /** e.g. https://clickhouse.example.com:8443 */
      url: string;
      /** @default "default" */
      username?: string;
      /** Secret: never logged. */
      password?: string;
      /** @default "glasswatch" */
      database?: string;
      /** PEM CA certificate (and optional client cert/key for mutual TLS). */
      tls?: { caCert: Buffer; cert?: Buffer; key?: Buffer };
      /** A cluster of one shard and N replicas: schema ON CLUSTER on Replicated tables (core/store/cluster.ts). */
      cluster?: string;
    };

export interface Store {
  readonly client: ClickHouseClient;
  readonly config: StoreConfig;
  /** Human description for summaries, never containing credentials. */
  readonly describe: string;
  /** The audit chain of this process (evidence/chain.ts), attached at start: it records every evidence row before its insert. */
  evidence?: EvidenceHook | null;
  close(): Promise<void>;
}

/** What insertRows calls before an insert, so evidence rows are chained in the same flush (see evidence/chain.ts). */
export interface EvidenceHook {
  beforeInsert(table: string, rows: Record<string, unknown>[]): Promise<void>;
  /** The same for the rows of several tables, in one chain append. */
  beforeInsertTables(batches: Array<{ table: string; rows: Record<string, unknown>[] }>): Promise<void>;
  /**
   * The same, in two steps: resolves once the rows' content is fixed (their DEFAULT now() columns
   * set), with `appended` settling when the chain records are stored, so the rows can be inserted
   * meanwhile.
   */
  prepareTables?(batches: Array<{ table: string; rows: Record<string, unknown>[] }>): Promise<{ appended: Promise<void> }>;
  /** Moves journaled chain records into audit_log now (evidence/journal.ts); absent: appends are stored at once. */
  drain?(): Promise<void>;
  /** Signs the last checkpoint; called when the store closes. */
  close(): Promise<void>;
}

/**
 * chDB allows one data directory per process, so embedded stores are shared per
 * path and reference-counted: every component of a process gets the same session.
 */
const embedded = new Map<string, { store: Store; refs: number }>();

export interface OpenOptions {
  /** false for read commands (report, hunt, store status): a missing store is an error, never created. @default true */
  create?: boolean;
}

export function openStore(config: StoreConfig, options: OpenOptions = {}): Store {
  if (config.kind === 'chdb') {
    const path = resolve(config.path);
    // chDB writes `metadata/` into every data folder it opens: without it there is no store to read.
    if (options.create === false && !embedded.has(path) && !existsSync(join(path, 'metadata'))) throw missingStore(`chDB ${path}`, path);
    return openEmbedded(path);
  }
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new GlasswatchError('BG_STORE_URL', `store.url is not a URL: "${redactText(config.url)}"`, { stage: 'config' });
  }
  url.username = '';
  url.password = '';
  const client = createClient({
    url: config.url,
    username: config.username ?? 'default',
    password: config.password ?? '',
    database: config.database ?? 'glasswatch',
    ...(config.tls
      ? {
          tls:
            config.tls.cert && config.tls.key
              ? { ca_cert: config.tls.caCert, cert: config.tls.cert, key: config.tls.key }
              : { ca_cert: config.tls.caCert },
        }
      : {}),
    clickhouse_settings: { date_time_input_format: 'best_effort' },
    // Failures reach the operator as one GlasswatchError; the client's own multi-line dumps would bury it.
    log: { level: ClickHouseLogLevel.OFF },
  });
  const store: Store = {
    client,
    config,
    describe: `ClickHouse ${url.origin}/${config.database ?? 'glasswatch'}`,
    close: async () => {
      await closeEvidence(store);
      await client.close();
    },
  };
  return store;
}

function openEmbedded(path: string): Store {
  const shared = embedded.get(path);
  if (shared) {
    shared.refs++;
    return shared.store;
  }
  if (embedded.size > 0) {
    const open = [...embedded.keys()][0];
    throw new GlasswatchError('BG_STORE_CHDB_PATH', `chDB allows one data folder per process: "${open}" is open, "${path}" was asked for`, {
      stage: 'config',
      hint: 'Use one --store path per process, or close the other store first.',
    });
  }
  // Audit data: the folder is 0700 before chDB opens it, and what chDB writes is owner-only.
  ensurePrivateStoreDirSync(path);
  holdPrivateUmask();
  let client: ClickHouseClient;
  try {
    // chdb ships its own copy of @clickhouse/client-common's types; the runtime contract is the same.
    const connection = createChdbConnection({ path }) as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection'];
    client = createClient({ connection });
  } catch (cause) {
    releasePrivateUmask();
    throw new GlasswatchError('BG_STORE_CHDB_OPEN', `cannot open the embedded store at "${path}"`, {
      stage: 'config',
      cause,
      hint: 'Another glasswatch process may hold this folder; chDB locks its data directory.',
    });
  }
  const entry: { refs: number; store: Store } = {
    refs: 1,
    store: {
      client,
      config: { kind: 'chdb', path } as StoreConfig,
      describe: `chDB ${path}`,
      close: async () => {
        if (--entry.refs > 0) return;
        await closeEvidence(entry.store);
        embedded.delete(path);
        await client.close();
        releasePrivateUmask();
      },
    },
  };
  embedded.set(path, entry);
  return entry.store;
}

/** The chain's closing checkpoint is signed before the store goes; the chain is detached whatever happens. */
async function closeEvidence(store: Store): Promise<void> {
  const chain = store.evidence;
  if (!chain) return;
  store.evidence = null;
  await chain.close();
}

function missingStore(describe: string, path: string | null): GlasswatchError {
  return new GlasswatchError('BG_STORE_MISSING', `no glasswatch store at ${describe}`, {
    stage: 'config',
    context: { path },
    hint: `check --store / store.path; a store is created by glasswatch replay --store PATH, glasswatch store migrate or glasswatch start`,
  });
}

/**
 * Opens the store and proves it is there before any command runs on it: a ClickHouse server
 * that does not answer is one clear error (exit 2) instead of a client dump, and with
 * `create: false` a store without the glasswatch schema is an error instead of an empty,
 * clean-looking report.
 */
export async function connectStore(config: StoreConfig, options: OpenOptions = {}): Promise<Store> {
  const store = openStore(config, options);
  try {
    if (config.kind === 'clickhouse') {
      const ping = await store.client.ping();
      if (!ping.success) {
        const cause = ping.error as Error & { code?: string };
        throw new GlasswatchError(
          'BG_STORE_UNREACHABLE',
          `cannot reach the ClickHouse server at ${store.describe.replace(/^ClickHouse /, '')}: ${cause.message || cause.code}`,
          {
            stage: 'config',
            cause,
            hint: 'check store.url and that the server is running (curl <url>/ping), or drop store.url to use the embedded store',
          },
        );
      }
    }
    if (options.create === false && !(await hasSchema(store)))
      throw missingStore(store.describe, config.kind === 'chdb' ? config.path : null);
    return store;
  } catch (err) {
    await store.close();
    throw err;
  }
}

async function hasSchema(store: Store): Promise<boolean> {
  try {
    const rows = await (await store.client.query({ query: 'EXISTS TABLE schema_migrations', format: 'JSONEachRow' })).json<{
      result: number | string;
    }>();
    return Number(rows[0]?.result ?? 0) === 1;
  } catch (err) {
    // UNKNOWN_DATABASE (81): the server is there, the glasswatch database is not.
    if (/UNKNOWN_DATABASE|Code: 81|does not exist/i.test((err as Error).message)) return false;
    throw err;
  }
}
