import { hostname } from 'node:os';
import type { Bus } from '../core/bus/types.js';
import { Fields, type GlasswatchConfig } from '../core/config.js';
import { GlasswatchError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Store } from '../core/store/client.js';
import { confirmSettingsOf } from '../detectors/confirm/config.js';
import type { CollectorMetrics } from '../ingest/collector/metrics.js';
import { ConsoleAuth } from './auth.js';
import type { ConsoleOptions } from './config.js';
import { LiveFeed, SseHub } from './live.js';
import { buildConsoleServer } from './server.js';

export { consoleConfigured, parseConsoleSection } from './config.js';

export interface RunningConsole {
  url: string;
  auth: ConsoleAuth;
  hub: SseHub;
  feed: LiveFeed;
  stop(): Promise<void>;
}

export interface StartConsoleOptions {
  config: GlasswatchConfig;
  options: ConsoleOptions;
  store: Store;
  bus: Bus;
  log: Logger;
  /** Names this console's consumer groups. @default host-pid */
  instance?: string;
  collectorMetrics?: CollectorMetrics;
  detectorEvents?: () => number;
}

/**
 * Serves the console: pages, the JSON API and the live stream, over the given store (the running
 * process's own client under `glasswatch start`, so the chDB lock is no obstacle) and the bus topics.
 */
export async function startConsole(o: StartConsoleOptions): Promise<RunningConsole> {
  const log = o.log.child({ component: 'console' });
  // Validated before anything starts: a bad revocation.confirm stops the console with the field named.
  const confirm = confirmSettingsOf(o.config, new Set());
  const hub = new SseHub();
  const idle = Fields.of(o.config.file, 'detector', o.config.sections.detector).number('sessionIdleSeconds', 1800, {
    min: 1,
    max: 7 * 86_400,
  });
  const feed = new LiveFeed({
    bus: o.bus,
    topics: o.config.topics,
    store: o.store,
    log,
    hub,
    groupPrefix: `glasswatch-console-${o.instance ?? `${hostname()}-${process.pid}`}`,
    sessionIdleSeconds: idle,
    ...(o.collectorMetrics ? { collectorMetrics: o.collectorMetrics } : {}),
    ...(o.detectorEvents ? { detectorEvents: o.detectorEvents } : {}),
  });
  await feed.start();
  const auth = new ConsoleAuth(o.options.tokens, o.options.sessionSeconds);
  const app = await buildConsoleServer({ store: o.store, feed, hub, auth, log, secure: o.options.tls !== null, confirm }, o.options);
  let address: string;
  try {
    address = await app.listen({ host: o.options.host, port: o.options.port });
  } catch (cause) {
    await feed.stop();
    throw new GlasswatchError(
      'BG_CONSOLE_LISTEN',
      `console cannot listen on ${o.options.host}:${o.options.port}: ${(cause as Error).message}`,
      {
        stage: 'config',
        cause,
        hint: 'choose another console.port, or stop what holds it',
      },
    );
  }
  const port = new URL(address).port;
  const host = o.options.host.includes(':') ? `[${o.options.host}]` : o.options.host;
  return {
    url: `${o.options.tls ? 'https' : 'http'}://${host}:${port}`,
    auth,
    hub,
    feed,
    stop: async () => {
      hub.close();
      await app.close();
      await feed.stop();
    },
  };
}
