import type { Bus } from '../core/bus/types.js';
import type { GlasswatchConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { Store } from '../core/store/client.js';
import type { CollectorMetrics } from '../ingest/collector/metrics.js';
import { consoleConfigured, parseConsoleSection } from './config.js';
import { type RunningConsole, startConsole } from './index.js';

/**
 * The console inside a pipeline process (`glasswatch start`, `glasswatch demo --serve`): served when the
 * config has a `console:` section or the command line asks for it. Without configured tokens a
 * one-time login token is printed (valid for one browser login), never a standing secret.
 */
export async function serveConsoleIfAsked(o: {
  config: GlasswatchConfig;
  asked: boolean;
  store: Store;
  bus: Bus;
  log: Logger;
  say: (line: string) => void;
  instance?: string;
  collectorMetrics?: CollectorMetrics;
  detectorEvents?: () => number;
  /** Port when the config does not give one (0 = any free port). */
  port?: number;
}): Promise<RunningConsole | null> {
  if (!o.asked && !consoleConfigured(o.config)) return null;
  const options = parseConsoleSection(o.config, { requireTokens: false });
  if (o.port !== undefined && (o.config.sections.console as { port?: unknown } | undefined)?.port === undefined) options.port = o.port;
  const running = await startConsole({
    config: o.config,
    options,
    store: o.store,
    bus: o.bus,
    log: o.log,
    ...(o.instance ? { instance: o.instance } : {}),
    ...(o.collectorMetrics ? { collectorMetrics: o.collectorMetrics } : {}),
    ...(o.detectorEvents ? { detectorEvents: o.detectorEvents } : {}),
  });
  o.say(`console: ${running.url}`);
  if (options.tokens.length === 0) {
    // Printed once to the operator's terminal (stderr), worded so the log redactor's key=value rule keeps it.
    o.say(`  one-time login token (valid for one browser login) ${running.auth.issueOneTimeToken('operator')}`);
  }
  return running;
}
