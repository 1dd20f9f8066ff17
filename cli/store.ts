import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config.js';
import { migrate, openStore } from '../core/store/index.js';
import { fail, say } from './output.js';

const HELP = `glasswatch store <migrate|status> [--config FILE] [--store PATH]

  migrate   create or upgrade the audit store schema (idempotent)
  status    schema version and row counts per table`;

export async function storeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string' }, store: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
  });
  const action = positionals[0];
  if (values.help || !action || !['migrate', 'status'].includes(action)) {
    say(HELP);
    return values.help ? 0 : 2;
  }
  const config = loadConfig(values.config, values.store ? { storePath: values.store } : {});
  const store = openStore(config.store);
  try {
    const result = await migrate(store, { retentionDays: config.retentionDays });
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
  } catch (err) {
    return fail(err);
  } finally {
    await store.close();
  }
}
