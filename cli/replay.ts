import { rename, writeFile } from 'node:fs/promises';
import type { Bus } from '../core/bus/index.js';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/log.js';
import { privateWriteStream, writePrivateFile } from '../core/paths.js';
import { type ReplaySummary, replayFiles } from '../core/pipeline/replay.js';
import { JsonLinesSink, StoreSink } from '../core/pipeline/sinks.js';
import type { DeadLetterStage, EventStage } from '../core/pipeline/stage.js';
import { connectStore, migrate, type Store } from '../core/store/index.js';
import type { DeadLetter } from '../core/store/writer.js';
import type { Alert } from '../detectors/alerts/alert.js';
import { buildDetector, type DetectorBuild } from '../detectors/build.js';
import { startEvidence } from '../evidence/start.js';
import { EXIT_CODES, parseFlags, usageError } from './args.js';
import { requireIdentities } from './checks.js';
import { busOf } from './live.js';
import { fail, printDetectorSummary, printReplaySummary, ReplayProgressPrinter, say } from './output.js';

export const REPLAY_HELP = `glasswatch replay <files or dirs...> [options]

Reads CloudTrail, Okta and Kubernetes audit files (any supported shape, gzip or not),
normalizes them with the live pipeline's code, and writes normalized events as JSON lines.
With identities in the config (or --tickets / --alerts-out) the break-glass detector runs too.
A replay never pages anyone: alerts go to --alerts-out only, unless --deliver is given.

Options:
  --config FILE         glasswatch config (YAML)
  --store PATH          also persist events and dead letters in the embedded store at PATH
  --out FILE            normalized events as JSON lines (default: stdout; "-" for stdout, "none" to discard)
  --dead-letters FILE   records that could not be normalized, as JSON lines with file, line and reason
  --summary-json FILE   the summary as JSON, with counts per input file
  --tickets FILE        approved-access tickets (JSON array or JSON lines); repeatable
  --alerts-out FILE     every alert as one JSON line, in detection order (rewritten, never appended)
  --deliver             also send alerts to the config's outputs (alerts: jsonl, webhooks, email, kafka);
                        with --store, an alert already delivered by an earlier run is not sent again
  --quiet               no progress output
  -h, --help            this help

${EXIT_CODES}`;

/** Keeps the dead letters of a replay as JSON lines. */
class DeadLetterFile implements DeadLetterStage {
  constructor(readonly path: string) {}
  async handleDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    const out = privateWriteStream(this.path);
    for (const d of letters) out.write(`${JSON.stringify(d)}\n`);
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

/** Writes the whole alerts file at once (temp file, rename): a re-run replaces it, never appends to it. */
async function writeAlertsFile(path: string, alerts: readonly Alert[]): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  await writePrivateFile(temp, alerts.map((a) => `${JSON.stringify(a)}\n`).join(''));
  await rename(temp, path);
}

export async function replayCommand(argv: string[]): Promise<number> {
  let store: Store | null = null;
  let storeSink: StoreSink | null = null;
  let bus: Bus | null = null;
  const stages: EventStage[] = [];
  try {
    const { values, positionals } = parseFlags('replay', argv, {
      config: { type: 'string' },
      store: { type: 'string' },
      out: { type: 'string' },
      'dead-letters': { type: 'string' },
      'summary-json': { type: 'string' },
      tickets: { type: 'string', multiple: true },
      'alerts-out': { type: 'string' },
      deliver: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    });
    if (values.help) {
      say(REPLAY_HELP);
      return 0;
    }
    if (positionals.length === 0) throw usageError('replay needs at least one file or folder', 'replay');
    const config = loadConfig(values.config, values.store ? { storePath: values.store } : {});
    const runDetector = config.sections.identities !== undefined || values.tickets || values['alerts-out'] || values.deliver;
    if (runDetector) requireIdentities(config, 'replay');
    const deadLetterStages: DeadLetterStage[] = [];
    if (values.out !== 'none') stages.push(new JsonLinesSink(values.out && values.out !== '-' ? values.out : null));
    if (values.store) {
      store = await connectStore(config.store);
      await migrate(store, { retentionDays: config.retentionDays, evidenceRetentionDays: config.evidenceRetentionDays });
      await startEvidence(store, config, { command: 'replay' });
      const sink = new StoreSink(store, { retentionDays: config.retentionDays });
      storeSink = sink;
      stages.push(sink);
      deadLetterStages.push(sink);
    }
    if (values['dead-letters']) deadLetterStages.push(new DeadLetterFile(values['dead-letters']));
    let detector: DetectorBuild | null = null;
    const alerts: Alert[] = [];
    if (runDetector) {
      const log = createLogger();
      // Only an explicit --deliver reaches a Kafka alerts topic: the bus is opened for nothing else.
      if (values.deliver && config.bus.kind === 'kafka') bus = busOf(config, log);
      detector = await buildDetector({
        config,
        store,
        bus,
        log,
        clock: 'replay',
        ticketFiles: values.tickets ?? [],
        deliver: values.deliver,
        onAlert: (a) => alerts.push(a),
      });
      stages.push(detector.detector);
    }
    const label = [values.store ? 'store' : null, detector ? 'detect' : null, values.out !== 'none' ? 'write' : null]
      .filter(Boolean)
      .join(' + ');
    const printer = values.quiet ? null : new ReplayProgressPrinter(label || 'process');
    const summary = await replayFiles({
      paths: positionals,
      normalize: {
        ...(config.ingest.k8s.cluster ? { cluster: config.ingest.k8s.cluster } : {}),
        ...(config.ingest.okta.org ? { oktaOrg: config.ingest.okta.org } : {}),
      },
      stages,
      deadLetterStages,
      ...(printer ? { onProgress: (p) => printer.update(p) } : {}),
    });
    for (const stage of stages) await stage.close?.();
    if (values['alerts-out']) await writeAlertsFile(values['alerts-out'], alerts);
    if (values['summary-json']) await writeFile(values['summary-json'], `${JSON.stringify(summary, null, 2)}\n`);
    if (!values.quiet) {
      printReplaySummary(summary);
      if (store) say(`  stored in    ${store.describe}`);
      const expired = storeSink?.expired ?? 0;
      if (expired > 0) {
        say(`  warning: ${expired} events are older than store.retentionDays (${config.retentionDays}); the store's TTL drops them.`);
        say('           next: raise store.retentionDays in the config to keep historical replays');
      }
      if (detector) {
        printDetectorSummary(detector, { more: values['alerts-out'] ? `see ${values['alerts-out']}` : 'see --alerts-out' });
        const sent = detector.detector.options.alerts.totals;
        if (values.deliver)
          say(`  delivered    ${sent.delivered} to the configured outputs (${sent.skipped} already delivered, ${sent.failed} failed)`);
        else say(`  delivered    none: a replay sends alerts to the configured outputs only with --deliver`);
        if (values['alerts-out']) say(`  alerts in    ${values['alerts-out']} (${alerts.length})`);
      }
    }
    if (values.deliver && detector && detector.detector.options.alerts.totals.failed > 0) return 1;
    return exitStatus(summary);
  } catch (err) {
    return fail(err);
  } finally {
    await bus?.close();
    await store?.close();
  }
}

export function exitStatus(summary: ReplaySummary): number {
  return summary.deadLetterTotal > 0 ? 3 : 0;
}
