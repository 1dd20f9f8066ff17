import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config.js';
import { GlasswatchError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { privateWriteStream, writePrivateFile } from '../core/paths.js';
import { type ReplaySummary, replayFiles } from '../core/pipeline/replay.js';
import { JsonLinesSink, StoreSink } from '../core/pipeline/sinks.js';
import type { DeadLetterStage, EventStage } from '../core/pipeline/stage.js';
import { migrate, openStore, type Store } from '../core/store/index.js';
import type { DeadLetter } from '../core/store/writer.js';
import { buildDetector, type DetectorBuild } from '../detectors/build.js';
import { fail, printDetectorSummary, printReplaySummary, progress, say } from './output.js';

export const REPLAY_HELP = `glasswatch replay <files or dirs...> [options]

Reads CloudTrail, Okta and Kubernetes audit files (any supported shape, gzip or not),
normalizes them with the live pipeline's code, and writes normalized events as JSON lines.

Options:
  --config FILE         glasswatch config (YAML)
  --store PATH          also persist events and dead letters in the embedded store at PATH
  --out FILE            normalized events as JSON lines (default: stdout; "-" for stdout, "none" to discard)
  --dead-letters FILE   records that could not be normalized, as JSON lines with file, line and reason
  --summary-json FILE   the summary as JSON, with counts per input file
  --tickets FILE        approved-access tickets (JSON array or JSON lines); repeatable
  --alerts-out FILE     every alert as one JSON line (with --config identities: the break-glass detector runs)
  --quiet               no progress output

Exit status: 0 when every record was normalized or deliberately skipped,
3 when some records were dead-lettered (the summary says how many and why), 1 or 2 on errors.`;

/** Keeps the dead letters of a replay as JSON lines. */
class DeadLetterFile implements DeadLetterStage {
  constructor(readonly path: string) {}
  async handleDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    const out = privateWriteStream(this.path);
    for (const d of letters) out.write(`${JSON.stringify(d)}\n`);
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

export async function replayCommand(argv: string[]): Promise<number> {
  let store: Store | null = null;
  let storeSink: StoreSink | null = null;
  const stages: EventStage[] = [];
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        store: { type: 'string' },
        out: { type: 'string' },
        'dead-letters': { type: 'string' },
        'summary-json': { type: 'string' },
        tickets: { type: 'string', multiple: true },
        'alerts-out': { type: 'string' },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      say(REPLAY_HELP);
      return 0;
    }
    if (positionals.length === 0)
      throw new GlasswatchError('BG_CLI_USAGE', 'replay needs at least one file or folder', {
        stage: 'config',
        hint: 'glasswatch replay --help',
      });
    const config = loadConfig(values.config, values.store ? { storePath: values.store } : {});
    const deadLetterStages: DeadLetterStage[] = [];
    if (values.out !== 'none') stages.push(new JsonLinesSink(values.out && values.out !== '-' ? values.out : null));
    if (values.store) {
      store = openStore(config.store);
      await migrate(store, { retentionDays: config.retentionDays });
      const sink = new StoreSink(store, { retentionDays: config.retentionDays });
      storeSink = sink;
      stages.push(sink);
      deadLetterStages.push(sink);
    }
    if (values['dead-letters']) deadLetterStages.push(new DeadLetterFile(values['dead-letters']));
    let detector: DetectorBuild | null = null;
    if (config.sections.identities !== undefined || values.tickets || values['alerts-out']) {
      if (values['alerts-out']) await writePrivateFile(values['alerts-out'], '');
      detector = await buildDetector({
        config,
        store,
        log: createLogger(),
        clock: 'replay',
        ticketFiles: values.tickets ?? [],
        alertsOut: values['alerts-out'] ?? null,
      });
      stages.push(detector.detector);
    }
    const summary = await replayFiles({
      paths: positionals,
      normalize: config.ingest.k8s.cluster ? { cluster: config.ingest.k8s.cluster } : {},
      stages,
      deadLetterStages,
      ...(values.quiet ? {} : { onFile: (_f: string, done: number, total: number) => progress('reading', done, total) }),
    });
    for (const stage of stages) await stage.close?.();
    if (values['summary-json']) await writeFile(values['summary-json'], `${JSON.stringify(summary, null, 2)}\n`);
    if (!values.quiet) {
      printReplaySummary(summary);
      if (store) say(`  stored in    ${store.describe}`);
      const expired = storeSink?.expired ?? 0;
      if (expired > 0) {
        say(`  warning: ${expired} events are older than store.retentionDays (${config.retentionDays}); the store's TTL drops them.`);
        say('           next: raise store.retentionDays in the config to keep historical replays');
      }
      if (detector) printDetectorSummary(detector);
    }
    return exitStatus(summary);
  } catch (err) {
    return fail(err);
  } finally {
    await store?.close();
  }
}

export function exitStatus(summary: ReplaySummary): number {
  return summary.deadLetterTotal > 0 ? 3 : 0;
}
