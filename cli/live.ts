import { serveConsoleIfAsked } from '../console/serve.js';
import { type Bus, createBus } from '../core/bus/index.js';
import { type GlasswatchConfig, loadConfig } from '../core/config.js';
import { GlasswatchError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';
import { startStoreSink } from '../core/pipeline/live.js';
import { connectStore, migrate, type Store } from '../core/store/index.js';
import { ProcessMetrics } from '../detectors/metrics.js';
import { startDetectorService } from '../detectors/service.js';
import { evidenceConfig } from '../evidence/config.js';
import { loadEvidenceKeys } from '../evidence/keys.js';
import { startEvidence } from '../evidence/start.js';
import { parseCloudTrailSection, runCloudTrailCollector } from '../ingest/cloudtrail/collector.js';
import { startMetricsServer } from '../ingest/collector/http.js';
import { CollectorMetrics } from '../ingest/collector/metrics.js';
import { collectorsFields, parseCollectorsCommon } from '../ingest/collector/options.js';
import type { RunningCollector } from '../ingest/collector/run.js';
import { parseK8sSection, runK8sCollector } from '../ingest/k8s/collector.js';
import { parseOktaSection, runOktaCollector } from '../ingest/okta/collector.js';
import { parseReportsConfig, parseSchedules } from '../reports/options.js';
import { type ReportAlertSink, ReportScheduler } from '../reports/schedule.js';
import { reportSigner } from '../reports/signing.js';
import { EXIT_CODES, parseFlags, usageError } from './args.js';
import { requireIdentities } from './checks.js';
import { fail, say } from './output.js';
import { acquireSinkLock, instanceId, roleGroup } from './roles.js';

type CollectorName = 'cloudtrail' | 'okta' | 'k8s';
const COLLECTORS: CollectorName[] = ['cloudtrail', 'okta', 'k8s'];

export function busOf(config: GlasswatchConfig, log: Logger): Bus {
  const b = config.bus;
  if (b.kind === 'memory') return createBus({ kind: 'memory' });
  return createBus({
    kind: 'kafka',
    brokers: b.brokers,
    clientId: b.clientId,
    ssl: b.ssl,
    ...(b.sasl ? { sasl: { mechanism: b.sasl.mechanism, username: b.sasl.username, password: b.sasl.password } as never } : {}),
    logger: log.child({ component: 'bus' }),
  });
}

/** Starts one configured collector (validated first: a config error stops before anything runs). */
async function startCollector(
  name: CollectorName,
  config: GlasswatchConfig,
  bus: Bus,
  log: Logger,
  metrics: CollectorMetrics,
  /** Where CloudTrail log-file validation statuses go (log_validation); null: alerts only. */
  validationStore: Promise<Store> | null = null,
): Promise<RunningCollector> {
  const deps = { bus, topics: config.topics, logger: log, metrics };
  switch (name) {
    case 'cloudtrail':
      return runCloudTrailCollector(parseCloudTrailSection(config), { ...deps, validationStore });
    case 'okta':
      return runOktaCollector(parseOktaSection(config), deps);
    case 'k8s':
      return runK8sCollector(parseK8sSection(config), deps);
  }
}

function configured(config: GlasswatchConfig): CollectorName[] {
  const f = collectorsFields(config);
  return COLLECTORS.filter((c) => f.value[c] !== undefined);
}

/** Resolves on SIGINT/SIGTERM. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => resolve(sig);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
  });
}

const COLLECT_HELP = `glasswatch collect <cloudtrail|okta|k8s> --config FILE

Runs one collector from the config's collectors.<name> section and publishes normalized events to
the bus (Kafka: bus.kind kafka). Checkpoints advance only after Kafka acknowledged; /metrics is
served on collectors.metrics. Stops cleanly on SIGINT/SIGTERM.

Options:
  --config FILE   glasswatch config (YAML), required
  -h, --help      this help

${EXIT_CODES}`;

export async function collectCommand(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseFlags('collect', argv, { config: { type: 'string' } });
    const name = positionals[0] as CollectorName | undefined;
    if (values.help || !name) {
      say(COLLECT_HELP);
      return values.help ? 0 : 2;
    }
    if (!COLLECTORS.includes(name)) throw usageError(`unknown collector "${name}" (cloudtrail, okta, k8s)`, 'collect');
    if (positionals.length > 1) throw usageError(`unexpected argument ${positionals[1]}`, 'collect');
    if (!values.config) throw usageError('collect needs --config FILE', 'collect');
    const config = loadConfig(values.config);
    if (config.bus.kind !== 'kafka') {
      throw new GlasswatchError(
        'BG_CLI_USAGE',
        `${config.file}: bus.kind is memory: a standalone collector would publish into its own process`,
        {
          stage: 'config',
          hint: 'set bus.kind: kafka (and bus.brokers), or run everything in one process with glasswatch start',
        },
      );
    }
    const log = createLogger();
    const bus = busOf(config, log);
    const metrics = new CollectorMetrics();
    const common = parseCollectorsCommon(collectorsFields(config));
    const server = common.metrics ? await startMetricsServer(metrics, { ...common.metrics, logger: log }) : null;
    // A ClickHouse server store takes CloudTrail validation statuses; a chDB store is the sink's alone.
    const validationStore =
      name === 'cloudtrail' && config.store.kind === 'clickhouse'
        ? connectStore(config.store).then(async (s) => {
            await migrate(s, { retentionDays: config.retentionDays, evidenceRetentionDays: config.evidenceRetentionDays });
            return s;
          })
        : null;
    validationStore?.catch(() => {});
    const running = await startCollector(name, config, bus, log, metrics, validationStore);
    say(`glasswatch collect ${name}: running (Ctrl-C to stop)`);
    const outcome = await Promise.race([untilSignal().then((s) => ({ signal: s })), running.done.then(() => ({ signal: null }))]);
    if (outcome.signal) say(`glasswatch collect ${name}: ${outcome.signal}, stopping after the batch in flight ...`);
    await running.stop();
    await server?.close();
    await bus.close();
    await (await validationStore?.catch(() => null))?.close();
    return 0;
  } catch (err) {
    return fail(err);
  }
}

const START_HELP = `glasswatch start --config FILE

Runs the live pipeline in one process: every configured collector (collectors.cloudtrail|okta|k8s),
the store sink (events and dead letters into the audit store), the break-glass detector (tickets
endpoint, alerts, revocation), and the scheduled reports. With bus.kind memory everything stays in
this process; with bus.kind kafka the same components can also run as separate processes
(glasswatch collect ..., glasswatch detect, glasswatch sink). Collectors start first, so
receivers accept as soon as the process can publish. Prints a status line every --status-seconds (default 60).

It refuses to start (exit 2) with nothing to run (bus.kind memory and no collectors: no event could
arrive) or without break-glass identities (the detector would judge nothing).

Options:
  --config FILE            glasswatch config (YAML), required
  --status-seconds N       seconds between status lines (default 60)
  --instance ID            names this process's own consumer groups (default: GLASSWATCH_INSTANCE, else host-pid)
  --console                serve the console (also when the config has a console: section; without tokens a one-time login token is printed)
  -h, --help               this help

${EXIT_CODES}`;

export async function startCommand(argv: string[]): Promise<number> {
  const stops: { name: string; stop: () => Promise<void> }[] = [];
  let store: Store | null = null;
  let bus: Bus | null = null;
  try {
    const { values } = parseFlags(
      'start',
      argv,
      { config: { type: 'string' }, 'status-seconds': { type: 'string' }, instance: { type: 'string' }, console: { type: 'boolean' } },
      false,
    );
    if (values.help) {
      say(START_HELP);
      return 0;
    }
    if (!values.config) throw usageError('start needs --config FILE', 'start');
    const statusSeconds = Number(values['status-seconds'] ?? 60);
    if (!Number.isFinite(statusSeconds) || statusSeconds <= 0) throw usageError('--status-seconds must be a positive number', 'start');
    const instance = instanceId(values.instance);
    const config = loadConfig(values.config);
    const log = createLogger();
    const collectors = configured(config);
    // With the in-process bus only this process's collectors can bring events: none means a
    // pipeline that would wait forever for nothing (Node used to end it with a silent exit 13).
    if (collectors.length === 0 && config.bus.kind === 'memory')
      throw new GlasswatchError('BG_START_NOTHING', `${config.file}: nothing to run: no collectors are configured and bus.kind is memory`, {
        stage: 'config',
        hint: 'configure collectors.cloudtrail|okta|k8s, or set bus.kind: kafka and run glasswatch collect <source> separately; for files use glasswatch replay',
      });
    requireIdentities(config, 'start');
    // Validate every component's config before starting any of them.
    for (const c of collectors) {
      if (c === 'cloudtrail') parseCloudTrailSection(config);
      if (c === 'okta') parseOktaSection(config);
      if (c === 'k8s') parseK8sSection(config);
    }
    const common = parseCollectorsCommon(collectorsFields(config));
    bus = busOf(config, log);
    // Collectors first: they need only the producer, so ingest is back within seconds of a crash
    // instead of waiting for the store and the consumer-group joins (~27 s). What they publish
    // meanwhile waits in the topic (or the in-process bus's log) for the consumers below.
    const metrics = new CollectorMetrics();
    // One /metrics for the process: the collectors' (they do not start their own), the detector's once it runs.
    const processMetrics = new ProcessMetrics().with(metrics);
    if (common.metrics) {
      const server = await processMetrics.listen({ ...common.metrics, logger: log });
      stops.push({ name: 'metrics', stop: () => server.close() });
    }
    // The store opens after the collectors start: CloudTrail validation statuses wait for it (never publishing).
    let storeReady: (s: Store) => void = () => {};
    let storeFailed: (e: unknown) => void = () => {};
    const validationStore = new Promise<Store>((resolve, reject) => {
      storeReady = resolve;
      storeFailed = reject;
    });
    validationStore.catch(() => {});
    for (const c of collectors) {
      const running = await startCollector(c, config, bus, log, metrics, validationStore);
      stops.unshift({ name: `collector ${c}`, stop: running.stop });
    }
    say(`glasswatch start: collectors serving after ${Math.round(performance.now())} ms: ${collectors.join(', ') || 'none'}`);
    const unlock = acquireSinkLock(config);
    stops.push({ name: 'sink lock', stop: async () => unlock() });
    try {
      store = await connectStore(config.store);
      await migrate(store, { retentionDays: config.retentionDays, evidenceRetentionDays: config.evidenceRetentionDays });
    } catch (err) {
      storeFailed(err);
      throw err;
    }
    storeReady(store);
    await startEvidence(store, config, { command: 'start', instance });
    const sink = await startStoreSink({ bus, store, topics: config.topics, log, groupId: roleGroup('sink', config) });
    stops.splice(stops.length - 1, 0, { name: 'store sink', stop: sink.stop });
    const detector = await startDetectorService({
      config,
      bus,
      store,
      log,
      groupId: roleGroup('detect', config),
      instanceId: instance,
      metricsServer: null,
    });
    processMetrics.add(detector.metrics);
    stops.splice(stops.length - 2, 0, { name: 'detector', stop: detector.stop });
    // A rotation_missing alert of a scheduled report takes the detector's alert path (stored, chained, appended).
    const reports = await startReportSchedules(config, store, log, { dispatch: (a) => detector.build.detector.raisePipelineAlert(a) });
    if (reports) stops.unshift({ name: 'report schedules', stop: reports.stop });
    const detectorEvents = () => detector.build.detector.totals.events;
    const served = await serveConsoleIfAsked({
      config,
      asked: values.console === true,
      store,
      bus,
      log,
      say,
      instance,
      collectorMetrics: metrics,
      detectorEvents,
    });
    if (served) stops.unshift({ name: 'console', stop: served.stop });
    say(
      `glasswatch start: ${store.describe}; bus ${config.bus.kind}; collectors ${collectors.join(', ') || 'none'}; detector with ${detector.build.registry.identities.length} identities${detector.ticketsUrl ? `, tickets endpoint ${detector.ticketsUrl}` : ''}${common.metrics ? `; metrics on ${common.metrics.host}:${common.metrics.port}` : ''}`,
    );
    // Rules that did not load (allowRuleErrors) or the pack switched off: said at start and in every status line.
    const ruleWarnings = detector.build.ruleWarnings;
    for (const w of ruleWarnings) say(w);
    const every = statusSeconds * 1000;
    const status = setInterval(() => {
      const t = detector.build.detector.totals;
      say(
        `status: stored ${sink.stored.events} events, ${sink.stored.deadLetters} dead letters; detector ${t.events} events, ${t.alerts['breakglass.unauthorized']} unauthorized, ${t.alerts['breakglass.authorized']} authorized, ${t.alerts['breakglass.attempt']} attempts${ruleWarnings.length ? `; ${ruleWarnings.join('; ')}` : ''}`,
      );
    }, every);
    status.unref();
    const signal = await untilSignal();
    clearInterval(status);
    say(`glasswatch start: ${signal}, stopping ...`);
    return 0;
  } catch (err) {
    return fail(err);
  } finally {
    for (const s of stops) await s.stop().catch((err: unknown) => say(`stopping ${s.name} failed: ${(err as Error).message}`));
    await bus?.close();
    await store?.close();
  }
}

/** The scheduled compliance reports of the `schedules:` section (node-cron), when there are any. */
async function startReportSchedules(
  config: GlasswatchConfig,
  store: Store,
  log: Logger,
  alerts: ReportAlertSink,
): Promise<{ stop(): Promise<void> } | null> {
  if (parseSchedules(config).length === 0) return null;
  // Mailed reports are signed like `glasswatch report run`: an auditor verifies the attachment.
  const keys = await loadEvidenceKeys({ signingKeyFile: evidenceConfig(config).signingKey, store });
  const signer = reportSigner({ store, config, organisation: parseReportsConfig(config).organisation, keys });
  const scheduler = new ReportScheduler({ config, store, log: log.child({ component: 'reports' }), alerts, signer });
  scheduler.start();
  return { stop: () => scheduler.stop() };
}
