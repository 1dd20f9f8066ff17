import { resolve } from 'node:path';
import { type ClickHouseClient, createClient } from '@clickhouse/client';
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
    };

export interface Store {
  readonly client: ClickHouseClient;
  readonly config: StoreConfig;
  /** Human description for summaries, never containing credentials. */
  readonly describe: string;
  close(): Promise<void>;
}

/**
 * chDB allows one data directory per process, so embedded stores are shared per
 * path and reference-counted: every component of a process gets the same session.
 */
const embedded = new Map<string, { store: Store; refs: number }>();

export function openStore(config: StoreConfig): Store {
  if (config.kind === 'chdb') return openEmbedded(resolve(config.path));
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
  });
  return { client, config, describe: `ClickHouse ${url.origin}/${config.database ?? 'glasswatch'}`, close: () => client.close() };
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
  const entry = {
    refs: 1,
    store: {
      client,
      config: { kind: 'chdb', path } as StoreConfig,
      describe: `chDB ${path}`,
      close: async () => {
        if (--entry.refs > 0) return;
        embedded.delete(path);
        await client.close();
        releasePrivateUmask();
      },
    },
  };
  embedded.set(path, entry);
  return entry.store;
}
