import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { usageError } from '../cli/args.js';
import { createBus } from '../core/bus/index.js';
import { type GlasswatchConfig, loadConfig } from '../core/config.js';
import type { AuditEvent } from '../core/event.js';
import { createLogger } from '../core/log.js';
import { startStoreSink } from '../core/pipeline/live.js';
import { replayFiles } from '../core/pipeline/replay.js';
import { identityKey } from '../core/pipeline/stage.js';
import { connectStore, migrate, type Store } from '../core/store/index.js';
import { startDetectorService } from '../detectors/service.js';
import { loadTicketFile } from '../detectors/tickets/sources.js';
import type { TicketVersion } from '../detectors/tickets/ticket.js';
import { serveConsoleIfAsked } from './serve.js';

export interface DemoServeOptions {
  /** Event time runs this many times faster than the wall clock. @default 60 */
  speed: number;
  /** The store of the replayed day. @default .glasswatch/demo-live-store (emptied at start) */
  storePath: string | null;
  /** Console port. @default 8480 (0 = any free port) */
  port: number;
  say: (line: string) => void;
  /** Resolves when the operator stops the demo (SIGINT/SIGTERM). */
  until: Promise<unknown>;
}

/** A quiet stretch of the day is shortened to this much wall time, so the night's incident comes in minutes. */
const MAX_PAUSE_MS = 2000;
const DEFAULT_STORE = '.glasswatch/demo-live-store';

/**
 * `glasswatch demo --serve`: the demo day through the live pipeline (in-process bus, store sink,
 * detector with its delivery and revocation workers) at `speed`× event time, with the console open.
 * Events are published to the events topic as a collector publishes them, tickets are accepted by
 * the ticket service at their `updatedAt`, so the console shows the incident as it unfolds.
 */
export async function serveDemo(demo: string, o: DemoServeOptions): Promise<number> {
  const storePath = o.storePath ?? DEFAULT_STORE;
  // The default store holds only this replay: the day starts over on every run.
  if (o.storePath === null) rmSync(resolve(DEFAULT_STORE), { recursive: true, force: true });
  const loaded = loadConfig(join(demo, 'glasswatch.yml'), { storePath });
  const config = demoLiveConfig(loaded);
  const log = createLogger({ level: 'warn' });
  const bus = createBus({ kind: 'memory' });
  let store: Store | null = null;
  const stops: (() => Promise<void>)[] = [];
  try {
    store = await connectStore(config.store);
    await migrate(store, { retentionDays: config.retentionDays });
    const sink = await startStoreSink({ bus, store, topics: config.topics, log });
    stops.unshift(sink.stop);
    const detector = await startDetectorService({ config, bus, store, log, instanceId: 'demo' });
    stops.unshift(detector.stop);
    const served = await serveConsoleIfAsked({
      config,
      asked: true,
      store,
      bus,
      log,
      say: o.say,
      port: o.port,
      detectorEvents: () => detector.build.detector.totals.events,
    });
    if (served) stops.unshift(served.stop);
    const events: AuditEvent[] = [];
    await replayFiles({
      paths: [join(demo, 'data')],
      normalize: {
        ...(config.ingest.k8s.cluster ? { cluster: config.ingest.k8s.cluster } : {}),
        ...(config.ingest.okta.org ? { oktaOrg: config.ingest.okta.org } : {}),
      },
      stages: [{ name: 'collect', handle: async (batch) => void events.push(...batch), flush: async () => {} }],
    });
    const tickets = loadTicketFile(join(demo, 'tickets.jsonl'), { identities: detector.build.registry.identities.map((i) => i.id) });
    tickets.sort((a, b) => a.updatedAtMs - b.updatedAtMs);
    o.say(
      `demo: replaying ${events.length} events and ${tickets.length} ticket versions of 2026-11-20 at ${o.speed}x (quiet stretches shortened to ${MAX_PAUSE_MS / 1000} s); Ctrl-C to stop`,
    );
    const stopped = { value: false };
    void o.until.then(() => {
      stopped.value = true;
    });
    await play(events, tickets, o, stopped, async (batch, due) => {
      if (due.length) await detector.tickets.accept(due, 'demo tickets.jsonl');
      if (batch.length)
        await bus.publish(
          config.topics.events,
          batch.map((e) => ({ key: identityKey(e), value: JSON.stringify(e) })),
        );
    });
    if (!stopped.value) {
      // The detector reads the topic on its own: let it judge the last events before summing up.
      const judged = Date.now() + 30_000;
      while (detector.build.detector.totals.events < events.length && Date.now() < judged) await new Promise((r) => setTimeout(r, 100));
      const t = detector.build.detector.totals;
      o.say(
        `demo: the day is replayed: ${t.events} events judged, ${t.alerts['breakglass.unauthorized']} unauthorized and ${t.alerts['breakglass.authorized']} authorized sessions. The console stays open: Ctrl-C to stop.`,
      );
      await o.until;
    }
    return 0;
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
    await bus.close();
    await store?.close();
  }
}

/** The demo config for a live run: a random tickets secret (tickets are signed on the bus) and its own alerts file. */
function demoLiveConfig(config: GlasswatchConfig): GlasswatchConfig {
  const tickets = (config.sections.tickets ?? {}) as Record<string, unknown>;
  return {
    ...config,
    sections: {
      ...config.sections,
      tickets: { ...tickets, secret: randomBytes(24).toString('hex') },
      alerts: { jsonl: '.glasswatch/demo-live-alerts.jsonl' },
      console: { ...((config.sections.console as Record<string, unknown> | undefined) ?? {}) },
    },
  };
}

type Publish = (events: AuditEvent[], tickets: TicketVersion[]) => Promise<void>;

/** Publishes events at their event time divided by the speed; tickets go in before the first event after their update. */
async function play(events: AuditEvent[], tickets: TicketVersion[], o: DemoServeOptions, stopped: { value: boolean }, publish: Publish) {
  // Wall-clock offset of each event from the start: event time / speed, quiet stretches shortened.
  const due: number[] = [];
  let offset = 0;
  for (let k = 0; k < events.length; k++) {
    const gap = k === 0 ? 0 : (Date.parse(events[k]!.time) - Date.parse(events[k - 1]!.time)) / o.speed;
    offset += Math.min(Math.max(0, gap), MAX_PAUSE_MS);
    due.push(offset);
  }
  const start = Date.now();
  let t = 0;
  let lastHour = -1;
  for (let i = 0; i < events.length && !stopped.value; ) {
    const wait = start + due[i]! - Date.now();
    // At most 1 s per sleep, so Ctrl-C is prompt.
    if (wait > 0) {
      await new Promise((r) => setTimeout(r, Math.min(wait, 1000)));
      continue;
    }
    const batch: AuditEvent[] = [];
    while (i < events.length && start + due[i]! <= Date.now()) batch.push(events[i++]!);
    const clockMs = Date.parse(batch[batch.length - 1]!.time);
    const fresh: TicketVersion[] = [];
    while (t < tickets.length && tickets[t]!.updatedAtMs <= clockMs) fresh.push(tickets[t++]!);
    await publish(batch, fresh);
    const hour = new Date(clockMs).getUTCHours();
    if (hour !== lastHour) {
      lastHour = hour;
      o.say(`demo clock ${new Date(clockMs).toISOString().slice(0, 16).replace('T', ' ')} UTC`);
    }
  }
  if (!stopped.value && t < tickets.length) await publish([], tickets.slice(t));
}

export const DEMO_SERVE_FLAGS = { serve: { type: 'boolean' }, speed: { type: 'string' }, port: { type: 'string' } } as const;
export const DEMO_SERVE_HELP = `  --serve        replay the day through the live pipeline with the console open (prints its URL and a one-time login token)
  --speed N      with --serve: event time runs N times faster than the clock (default 60)
  --port N       with --serve: the console's port (default 8480; 0 = any free port)`;

export function parseServeFlags(v: { serve?: boolean | undefined; speed?: string | undefined; port?: string | undefined }): {
  speed: number;
  port: number;
} | null {
  if (!v.serve) {
    if (v.speed !== undefined || v.port !== undefined) throw usageError('--speed and --port go with --serve', 'demo');
    return null;
  }
  const speed = Number(v.speed ?? 60);
  if (!Number.isFinite(speed) || speed <= 0 || speed > 1_000_000) throw usageError('--speed must be a positive number (e.g. 60)', 'demo');
  const port = Number(v.port ?? 8480);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw usageError('--port must be a port number (0 = any free port)', 'demo');
  return { speed, port };
}
