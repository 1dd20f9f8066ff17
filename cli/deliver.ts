import type { Bus } from '../core/bus/index.js';
import { loadConfig } from '../core/config.js';
import { GlasswatchError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { connectStore, migrate, type Store } from '../core/store/index.js';
import { startStages } from '../detectors/stages/index.js';
import { startEvidence } from '../evidence/start.js';
import { EXIT_CODES, parseFlags, usageError } from './args.js';
import { busOf, untilSignal } from './live.js';
import { fail, say } from './output.js';

const HELP = {
  deliver: `glasswatch deliver --config FILE

Runs only alert delivery: one worker per configured output, each in its own consumer group
(glasswatch-deliver-<output>) on the alerts topic (topics.alerts) the detector appends to. A failing
output is retried with exponential backoff and full jitter until the alert is alerts.delivery
maxAgeMinutes old (default 1440), then dead-lettered with a pipeline.delivery_failed alert; a down
output delays only itself. Offsets are committed only after the output answered; the delivery
ledger in the store (alert_deliveries) keeps a restart from delivering twice. Needs bus.kind kafka.

Options:
  --config FILE    glasswatch config (YAML), required
  -h, --help       this help

${EXIT_CODES}`,
  revoke: `glasswatch revoke --config FILE

Runs only revocation: one worker per revocation target kind in use (glasswatch-revoke-<target>) on
the revocations topic (topics.revocations) the detector appends to. A failing target is retried
with exponential backoff and full jitter until the order is revocation.retry maxAgeMinutes old
(default 720), then recorded failed with a breakglass.revocation alert. Every outcome is recorded
(revocations) and raised as a breakglass.revocation alert; a finished revocation is never sent
again. Needs bus.kind kafka.

Options:
  --config FILE    glasswatch config (YAML), required
  -h, --help       this help

${EXIT_CODES}`,
};

/** `glasswatch deliver` and `glasswatch revoke`: one durable stage alone, scaled by adding processes. */
export async function runStage(role: 'deliver' | 'revoke', argv: string[]): Promise<number> {
  let bus: Bus | null = null;
  let store: Store | null = null;
  let stop: (() => Promise<void>) | null = null;
  try {
    const { values } = parseFlags(role, argv, { config: { type: 'string' } }, false);
    if (values.help) {
      say(HELP[role]);
      return 0;
    }
    if (!values.config) throw usageError(`${role} needs --config FILE`, role);
    const config = loadConfig(values.config);
    if (config.bus.kind !== 'kafka')
      throw new GlasswatchError(
        'BG_CLI_USAGE',
        `${config.file}: bus.kind is memory: glasswatch ${role} alone would read its own empty bus`,
        {
          stage: 'config',
          hint: 'set bus.kind: kafka (and bus.brokers), or run every stage in one process with glasswatch start',
        },
      );
    const log = createLogger().child({ role });
    store = await connectStore(config.store);
    await migrate(store, { retentionDays: config.retentionDays, evidenceRetentionDays: config.evidenceRetentionDays });
    await startEvidence(store, config, { command: role });
    bus = busOf(config, log);
    const stages = await startStages({ config, bus, store, log, deliver: role === 'deliver', revoke: role === 'revoke' });
    stop = stages.stop;
    const workers = role === 'deliver' ? stages.delivery.map((w) => w.name) : stages.revocation.map((w) => w.o.target);
    say(`glasswatch ${role}: ${workers.length} worker(s): ${workers.join(', ') || 'none configured'} (Ctrl-C to stop)`);
    const signal = await untilSignal();
    say(`glasswatch ${role}: ${signal}, stopping (anything in retry stays uncommitted for the next worker)`);
    return 0;
  } catch (err) {
    return fail(err);
  } finally {
    await stop?.().catch((err: unknown) => say(`stopping failed: ${(err as Error).message}`));
    await bus?.close();
    await store?.close();
  }
}

export function deliverCommand(argv: string[]): Promise<number> {
  return runStage('deliver', argv);
}
