import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Bus } from '../core/bus/index.js';
import { type GlasswatchConfig, loadConfig } from '../core/config.js';
import { GlasswatchError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { startStoreSink } from '../core/pipeline/live.js';
import { connectStore, migrate, type Store } from '../core/store/index.js';
import { startDetectorService } from '../detectors/service.js';
import { startEvidence } from '../evidence/start.js';
import { EXIT_CODES, parseFlags, usageError } from './args.js';
import { requireIdentities } from './checks.js';
import { busOf, untilSignal } from './live.js';
import { fail, say } from './output.js';

/**
 * Consumer groups by role. Members of one group share the partitions, so adding a `detect` or
 * (on a ClickHouse server) a `sink` process scales that stage; groups a process needs for itself
 * alone carry its instance id and are deleted at a clean stop.
 */
export const ROLE_GROUPS = {
  detect: 'glasswatch-detector',
  sink: 'glasswatch-sink',
} as const;

/**
 * The group of a role for this pipeline: `glasswatch-<role>` on the default events topic, and
 * `glasswatch-<role>.<events topic>` otherwise. Two pipelines on one cluster (staging and
 * production topics) must not share a group: kafkajs' assigner hands partitions to every member of
 * a group whatever it subscribed to, so a shared group silently starves one pipeline's detector.
 */
export function roleGroup(role: keyof typeof ROLE_GROUPS, config: GlasswatchConfig): string {
  const base = ROLE_GROUPS[role];
  return config.topics.events === 'glasswatch.events' ? base : `${base}.${config.topics.events}`;
}

/** This process's instance id: --instance, else GLASSWATCH_INSTANCE, else host-pid (unique per process). */
export function instanceId(flag: string | undefined): string {
  const id = flag ?? process.env.GLASSWATCH_INSTANCE ?? `${hostname()}-${process.pid}`;
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(id)) {
    throw usageError(`--instance must be 1-100 letters, digits, ".", "_" or "-", got "${id}"`, 'start');
  }
  return id;
}

const SINK_LOCK = 'glasswatch-sink.lock';

/**
 * With an embedded chDB store there is exactly one sink: the store is a directory of this host, and
 * a second sink in the group would take half the partitions into a store nobody reads. The lock file
 * in the store directory refuses a second sink on the same store; one whose pid is gone is stale.
 */
export function acquireSinkLock(config: GlasswatchConfig): () => void {
  if (config.store.kind !== 'chdb') return () => {};
  const dir = resolve(config.store.path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, SINK_LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new GlasswatchError(
          'BG_SINK_RUNNING',
          `${config.file}: a store sink (pid ${pid}) already writes the chDB store ${config.store.path}`,
          {
            stage: 'config',
            hint: 'with an embedded chDB store run exactly one sink (glasswatch sink, or glasswatch start); several sinks need store.url (a ClickHouse server)',
            context: { lock: file, pid },
          },
        );
      }
      rmSync(file, { force: true });
    }
  }
  throw new GlasswatchError('BG_SINK_LOCK', `cannot take the store sink lock ${file}`, { stage: 'config' });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function kafkaOnly(config: GlasswatchConfig, role: string): void {
  if (config.bus.kind === 'kafka') return;
  throw new GlasswatchError('BG_CLI_USAGE', `${config.file}: bus.kind is memory: glasswatch ${role} alone would read its own empty bus`, {
    stage: 'config',
    hint: `set bus.kind: kafka (and bus.brokers), or run every stage in one process with glasswatch start`,
  });
}

const DETECT_HELP = `glasswatch detect --config FILE [--instance ID]

Runs only the break-glass detector: it consumes glasswatch.events in the consumer group
${ROLE_GROUPS.detect} (several detect processes share the partitions), follows the tickets topic
in its own group (${ROLE_GROUPS.detect}-tickets-<instance>, deleted at a clean stop; with a
non-default topics.events every group name ends in .<events topic>), serves the
tickets endpoint when tickets.http is configured, and raises alerts. Needs bus.kind kafka.
Its session and alert rows go to its own store (store.path or store.url); events are stored by
glasswatch sink.

Options:
  --config FILE    glasswatch config (YAML), required
  --instance ID    names this process's own consumer groups (default: GLASSWATCH_INSTANCE, else host-pid)
  -h, --help       this help

${EXIT_CODES}`;

export async function detectCommand(argv: string[]): Promise<number> {
  let bus: Bus | null = null;
  let store: Store | null = null;
  let stop: (() => Promise<void>) | null = null;
  try {
    const { values } = parseFlags('detect', argv, { config: { type: 'string' }, instance: { type: 'string' } }, false);
    if (values.help) {
      say(DETECT_HELP);
      return 0;
    }
    if (!values.config) throw usageError('detect needs --config FILE', 'detect');
    const instance = instanceId(values.instance);
    const config = loadConfig(values.config);
    kafkaOnly(config, 'detect');
    requireIdentities(config, 'detect');
    const log = createLogger().child({ role: 'detect', instance });
    store = await connectStore(config.store);
    await migrate(store, { retentionDays: config.retentionDays, evidenceRetentionDays: config.evidenceRetentionDays });
    await startEvidence(store, config, { command: 'detect', instance });
    bus = busOf(config, log);
    const group = roleGroup('detect', config);
    const detector = await startDetectorService({ config, bus, store, log, groupId: group, instanceId: instance });
    stop = detector.stop;
    say(`glasswatch detect: ${instance}; group ${group}; ${detector.build.registry.identities.length} identities (Ctrl-C to stop)`);
    for (const w of detector.build.ruleWarnings) say(w);
    say(`glasswatch detect: ${await untilSignal()}, stopping ...`);
    return 0;
  } catch (err) {
    return fail(err);
  } finally {
    await stop?.().catch((err: unknown) => say(`stopping the detector failed: ${(err as Error).message}`));
    await bus?.close();
    await store?.close();
  }
}

const SINK_HELP = `glasswatch sink --config FILE

Runs only the store sink: the one writer of events and dead letters into the audit store. It
consumes glasswatch.events and glasswatch.dead-letters in the consumer group ${ROLE_GROUPS.sink}
and commits offsets only after the rows are stored. With an embedded chDB store (store.path) run
exactly one sink (a lock file in the store directory refuses a second one); with a ClickHouse
server (store.url) several sinks share the partitions. Needs bus.kind kafka.

Options:
  --config FILE          glasswatch config (YAML), required
  --status-seconds N     seconds between status lines (default 60)
  -h, --help             this help

${EXIT_CODES}`;

export async function sinkCommand(argv: string[]): Promise<number> {
  let bus: Bus | null = null;
  let store: Store | null = null;
  let stop: (() => Promise<void>) | null = null;
  let unlock: (() => void) | null = null;
  try {
    const { values } = parseFlags('sink', argv, { config: { type: 'string' }, 'status-seconds': { type: 'string' } }, false);
    if (values.help) {
      say(SINK_HELP);
      return 0;
    }
    if (!values.config) throw usageError('sink needs --config FILE', 'sink');
    const statusSeconds = Number(values['status-seconds'] ?? 60);
    if (!Number.isFinite(statusSeconds) || statusSeconds <= 0) throw usageError('--status-seconds must be a positive number', 'sink');
    const config = loadConfig(values.config);
    kafkaOnly(config, 'sink');
    const log = createLogger().child({ role: 'sink' });
    // Before opening the store: a second sink is refused with the reason, not chDB's directory lock error.
    unlock = acquireSinkLock(config);
    store = await connectStore(config.store);
    await migrate(store, { retentionDays: config.retentionDays, evidenceRetentionDays: config.evidenceRetentionDays });
    bus = busOf(config, log);
    const group = roleGroup('sink', config);
    const sink = await startStoreSink({ bus, store, topics: config.topics, log, groupId: group });
    stop = sink.stop;
    say(`glasswatch sink: ${store.describe}; group ${group} (Ctrl-C to stop)`);
    const status = setInterval(
      () => say(`status: stored ${sink.stored.events} events, ${sink.stored.deadLetters} dead letters`),
      statusSeconds * 1000,
    );
    status.unref();
    const signal = await untilSignal();
    clearInterval(status);
    say(`glasswatch sink: ${signal}, stopping; stored ${sink.stored.events} events, ${sink.stored.deadLetters} dead letters`);
    return 0;
  } catch (err) {
    return fail(err);
  } finally {
    await stop?.().catch((err: unknown) => say(`stopping the sink failed: ${(err as Error).message}`));
    await bus?.close();
    await store?.close();
    unlock?.();
  }
}
