import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DEMO_SERVE_FLAGS, DEMO_SERVE_HELP, parseServeFlags, serveDemo } from '../console/demo.js';
import { Fields, loadConfig } from '../core/config.js';
import { createLogger } from '../core/log.js';
import { packageRoot } from '../core/paths.js';
import { replayFiles } from '../core/pipeline/replay.js';
import { StoreSink } from '../core/pipeline/sinks.js';
import { connectStore, migrate } from '../core/store/index.js';
import { buildDetector } from '../detectors/build.js';
import { k8sStandIn, oktaStandIn } from '../detectors/revoke/standins.js';
import { startEvidence } from '../evidence/start.js';
import { buildReport } from '../reports/registry.js';
import { renderReport } from '../reports/render/index.js';
import { EXIT_CODES, parseFlags } from './args.js';
import { untilSignal } from './live.js';
import { fail, printDetectorSummary, printReplaySummary, progress, say } from './output.js';

/** The Okta user id of emergency-admin@example.com in the demo data (see demo/generate.ts). */
const EMERGENCY_ADMIN_OKTA_ID = `00u${createHash('md5').update('emergency-admin@example.com').digest('hex').slice(0, 17)}`;

function demoFolder(): string {
  return join(packageRoot(), 'demo');
}

/**
 * `npm start`: the whole pipeline on its embedded default (chDB, in-process bus, no
 * Kafka) over the bundled demo incident.
 */
export async function demoCommand(argv: string[]): Promise<number> {
  let values: {
    store?: string | undefined;
    help?: boolean | undefined;
    serve?: boolean | undefined;
    speed?: string | undefined;
    port?: string | undefined;
  };
  let serve: { speed: number; port: number } | null = null;
  try {
    values = parseFlags('demo', argv, { store: { type: 'string' }, ...DEMO_SERVE_FLAGS }, false).values;
    serve = parseServeFlags(values);
  } catch (err) {
    return fail(err);
  }
  if (values.help) {
    say(
      `glasswatch demo [--store PATH] [--serve [--speed N] [--port N]]\n\nRuns the pipeline over the bundled demo incident (demo/data) into an embedded store (default .glasswatch/demo-store).\n\nOptions:\n  --store PATH   the embedded store (created if missing)\n${DEMO_SERVE_HELP}\n  -h, --help     this help\n\n${EXIT_CODES}`,
    );
    return 0;
  }
  const demo = demoFolder();
  // Local stand-ins of the Okta and Kubernetes APIs receive the revocation calls.
  const okta = await oktaStandIn({ token: 'demo-okta-token', users: [EMERGENCY_ADMIN_OKTA_ID] });
  const k8s = await k8sStandIn({
    token: 'demo-k8s-token',
    bindings: [
      {
        kind: 'ClusterRoleBinding',
        name: 'breakglass-admin-cluster-admin',
        role: 'cluster-admin',
        subjects: [{ kind: 'User', name: 'breakglass-admin' }],
      },
      {
        kind: 'ClusterRoleBinding',
        name: 'metrics-helper-admin',
        role: 'cluster-admin',
        subjects: [{ kind: 'ServiceAccount', name: 'metrics-helper', namespace: 'kube-system' }],
      },
    ],
  });
  process.env.GLASSWATCH_OKTA_URL = okta.url;
  process.env.GLASSWATCH_OKTA_TOKEN = 'demo-okta-token';
  process.env.GLASSWATCH_K8S_API = k8s.url;
  process.env.GLASSWATCH_K8S_TOKEN = 'demo-k8s-token';
  try {
    if (serve) return await serveDemo(demo, { ...serve, storePath: values.store ?? null, say, until: untilSignal() });
    return await runDemo(demo, values.store);
  } finally {
    await okta.close();
    await k8s.close();
  }
}

async function runDemo(demo: string, storePath: string | undefined): Promise<number> {
  const config = loadConfig(join(demo, 'glasswatch.yml'), storePath ? { storePath } : {});
  say('glasswatch demo: one day at example.com — CloudTrail, Okta and Kubernetes audit, with a break-glass incident at 22:41 UTC');
  say(
    `  store: ${config.store.kind === 'chdb' ? `embedded chDB at ${config.store.path}` : 'ClickHouse server'}; bus: in-process (no Kafka needed)`,
  );
  let store: Awaited<ReturnType<typeof connectStore>>;
  try {
    store = await connectStore(config.store);
  } catch (err) {
    return fail(err);
  }
  try {
    const migrated = await migrate(store, { retentionDays: config.retentionDays, evidenceRetentionDays: config.evidenceRetentionDays });
    say(`  schema version ${migrated.current}${migrated.applied.length ? ' (created)' : ''}`);
    await startEvidence(store, config, { command: 'demo' });
    const sink = new StoreSink(store, { retentionDays: config.retentionDays });
    const alertsFile = Fields.of(config.file, 'alerts', config.sections.alerts).optionalString('jsonl');
    if (alertsFile) mkdirSync(dirname(alertsFile), { recursive: true });
    const detector = await buildDetector({
      config,
      store,
      log: createLogger({ level: 'warn' }),
      clock: 'replay',
      ticketFiles: [join(demo, 'tickets.jsonl')],
    });
    const summary = await replayFiles({
      paths: [join(demo, 'data')],
      normalize: {
        ...(config.ingest.k8s.cluster ? { cluster: config.ingest.k8s.cluster } : {}),
        ...(config.ingest.okta.org ? { oktaOrg: config.ingest.okta.org } : {}),
      },
      stages: [sink, detector.detector],
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
    say();
    printDetectorSummary(detector);
    // The compliance view of the same night, from the store.
    const period = { fromMs: Date.parse('2026-11-20T00:00:00Z'), toMs: Date.parse('2026-11-21T00:00:00Z') };
    const report = await buildReport('breakglass-activity', { store, period });
    const htmlFile = join(dirname(alertsFile ?? '.glasswatch/x'), 'demo-breakglass-activity.html');
    writeFileSync(htmlFile, renderReport(report, 'html').text);
    const t = report.totals as unknown as Record<string, number>;
    say();
    say(
      `compliance report breakglass-activity 2026-11-20: ${t.sessions} sessions, ${t.authorized} authorized, ${t.unauthorized} unauthorized, ${t.attempts} attempts, ${t.revocations} revocations`,
    );
    say(`  digest ${report.digest}; HTML in ${htmlFile}`);
    const sent = detector.detector.options.alerts.totals;
    if (alertsFile)
      say(
        `  alerts in ${alertsFile}: ${sent.delivered} delivered now, ${sent.skipped} already delivered by an earlier run (each alert goes out once)`,
      );
    const storeArg = config.store.kind === 'chdb' ? config.store.path : '<url>';
    say(
      `next: npx glasswatch report run unauthorized-use --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z --store ${storeArg} --format csv`,
    );
    say(`      npx glasswatch hunt rules/breakglass --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z --store ${storeArg}`);
    say('      npx glasswatch demo --serve   # watch the day live in the console (replayed at 60x)');
    return 0;
  } catch (err) {
    return fail(err);
  } finally {
    await store.close();
  }
}
