import { loadConfig } from '../core/config.js';
import { connectStore, migrate } from '../core/store/index.js';
import { EXIT_CODES, parseFlags, usageError } from './args.js';
import { fail, say } from './output.js';

const HELP = `glasswatch store <migrate|status> [--config FILE] [--store PATH]

  migrate   create or upgrade the audit store schema (idempotent)
  status    schema version and row counts per table (never creates a store: a missing one is an error)

Options:
  --config FILE   glasswatch config (YAML): store.path or store.url
  --store PATH    the embedded store at PATH
  -h, --help      this help

${EXIT_CODES}`;

export async function storeCommand(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseFlags('store', argv, { config: { type: 'string' }, store: { type: 'string' } });
    const action = positionals[0];
    if (values.help || !action) {
      say(HELP);
      return values.help ? 0 : 2;
    }
    if (!['migrate', 'status'].includes(action)) throw usageError(`unknown action "${action}" (migrate, status)`, 'store');
    if (positionals.length > 1) throw usageError(`unexpected argument ${positionals[1]}`, 'store');
    const config = loadConfig(values.config, values.store ? { storePath: values.store } : {});
    const store = await connectStore(config.store, { create: action === 'migrate' });
    try {
      const result = await migrate(store, { retentionDays: config.retentionDays, evidenceRetentionDays: config.evidenceRetentionDays });
      if (action === 'migrate') {
        say(
          `${store.describe}: schema version ${result.current}${result.applied.length ? ` (applied ${result.applied.join(', ')})` : ' (up to date)'}`,
        );
        return 0;
      }
      const rows = await (
        await store.client.query({
          query: `SELECT table, sum(rows) AS rows FROM system.parts WHERE active AND database = currentDatabase() GROUP BY table ORDER BY table`,
          format: 'JSONEachRow',
        })
      ).json<{ table: string; rows: string }>();
      say(`${store.describe}: schema version ${result.current}`);
      say('  stored rows per table (a re-inserted duplicate counts until ClickHouse merges it away; readers see one)');
      for (const r of rows) say(`  ${r.table.padEnd(20)} ${Number(r.rows).toLocaleString('en-US')} rows`);
      return 0;
    } finally {
      await store.close();
    }
  } catch (err) {
    return fail(err);
  }
}
