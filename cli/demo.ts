import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config.js';
import { packageRoot } from '../core/paths.js';
import { replayFiles } from '../core/pipeline/replay.js';
import { StoreSink } from '../core/pipeline/sinks.js';
import { migrate, openStore } from '../core/store/index.js';
import { fail, printReplaySummary, progress, say } from './output.js';

function demoFolder(): string {
  return join(packageRoot(), 'demo');
}

/**
 * `npm start`: the whole pipeline on its embedded default (chDB, in-process bus, no
 * Kafka) over the bundled demo incident.
 */
export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { store: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help) {
    say(
      'glasswatch demo [--store PATH]\n\nRuns the pipeline over the bundled demo incident (demo/data) into an embedded store (default .glasswatch/demo-store).',
    );
    return 0;
  }
  const demo = demoFolder();
  const config = loadConfig(join(demo, 'glasswatch.yml'), values.store ? { storePath: values.store } : {});
  say('glasswatch demo: one day at example.com — CloudTrail, Okta and Kubernetes audit, with a break-glass incident at 22:41 UTC');
  say(
    `  store: ${config.store.kind === 'chdb' ? `embedded chDB at ${config.store.path}` : 'ClickHouse server'}; bus: in-process (no Kafka needed)`,
  );
  const store = openStore(config.store);
  try {
    const migrated = await migrate(store, { retentionDays: config.retentionDays });
    say(`  schema version ${migrated.current}${migrated.applied.length ? ' (created)' : ''}`);
    const sink = new StoreSink(store);
    const summary = await replayFiles({
      paths: [join(demo, 'data')],
      normalize: config.ingest.k8s.cluster ? { cluster: config.ingest.k8s.cluster } : {},
      stages: [sink],
      deadLetterStages: [sink],
      onFile: (_f, done, total) => progress('  reading files', done, total),
    });
    say();
    printReplaySummary(summary);
    const rows = await (
      await store.client.query({
        query: 'SELECT source, count() AS n FROM (SELECT source, id FROM events LIMIT 1 BY source, id) GROUP BY source ORDER BY source',
        format: 'JSONEachRow',
      })
    ).json<{ source: string; n: string }>();
    say(`  in the store: ${rows.map((r) => `${r.source} ${r.n}`).join(', ')} distinct events (re-running the demo adds no duplicates)`);
    return 0;
  } catch (err) {
    return fail(err);
  } finally {
    await store.close();
  }
}
