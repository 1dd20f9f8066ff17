/**
 * The Okta System Log poller, and `runOktaCollector`, which starts it together with the Event
 * Hooks receiver (ingest/okta/hook.ts) on one shared dedupe window: the hook is the low-latency
 * path, the poller the source of truth, and an event both deliver is published once.
 *
 * Loop: GET the checkpointed `next` URL (first start: `since` = configured start), publish the
 * page, save the page's `next` link as the checkpoint once Kafka acknowledged, follow it. Short
 * or empty pages wait `pollIntervalSeconds`; rate-limit headers slow the loop before Okta has to
 * answer 429; 429 waits for `Retry-After`/`X-Rate-Limit-Reset`; 5xx and network errors back off.
 */
import type { Bus } from '../../core/bus/types.js';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import { createLogger, type Logger } from '../../core/log.js';
import { type CheckpointStore, FileCheckpointStore } from '../collector/checkpoint.js';
import { DedupeWindow } from '../collector/dedupe.js';
import { type RunningServer, startMetricsServer } from '../collector/http.js';
import { CollectorMetrics } from '../collector/metrics.js';
import { EventPublisher } from '../collector/publisher.js';
import { type RunningCollector, sleep } from '../collector/run.js';
import { SilenceWatchdog } from '../collector/watchdog.js';
import { type OktaHookServer, startOktaHook } from './hook.js';
import type { OktaCollectorConfig } from './options.js';
import { fetchPage, firstPageUrl, rateLimitDelayMs, type SystemLogPage } from './systemlog.js';

export { type OktaCollectorConfig, type OktaHookConfig, parseOktaFields, parseOktaSection } from './options.js';

export interface OktaCheckpoint {
  /** The `rel="next"` URL to request next (opaque `after` cursor inside). */
  next: string;
  /** Org the cursor belongs to: a checkpoint of another org is refused. */
  orgUrl: string;
  /** Pages acknowledged since the checkpoint was first written (diagnostics only). */
  pages: number;
}

export interface OktaDeps {
  bus: Bus;
  topics: { events: string; deadLetters: string };
  logger?: Logger;
  /** Shared registry (one `/metrics` for all collectors). When absent, one is made and served on `config.metrics`. */
  metrics?: CollectorMetrics;
  /** @default FileCheckpointStore(config.checkpointDir, "okta") */
  checkpoint?: CheckpointStore<OktaCheckpoint>;
  /** @default new DedupeWindow(config.dedupeWindow) */
  dedupe?: DedupeWindow;
  /** null disables the silence watchdog. @default one for collector "okta" */
  watchdog?: SilenceWatchdog | null;
  /** After each acknowledged page (tests, progress display). */
  onPage?: (info: { pages: number; events: number; duplicates: number; next: string }) => void;
  /** First back-off after an error, doubled up to `maxBackoffMs`. @default 1000 */
  initialBackoffMs?: number;
  /** @default 300000 */
  maxBackoffMs?: number;
}

export interface RunningOktaCollector extends RunningCollector {
  readonly metrics: CollectorMetrics;
  readonly hook: OktaHookServer | null;
}

/** Starts the poller (and the hook receiver when `config.hook` is set). */
export async function runOktaCollector(config: OktaCollectorConfig, deps: OktaDeps): Promise<RunningOktaCollector> {
  const logger = (deps.logger ?? createLogger()).child({ component: 'collector', collector: 'okta' });
  const metrics = deps.metrics ?? new CollectorMetrics();
  const dedupe = deps.dedupe ?? new DedupeWindow(config.dedupeWindow);
  const watchdog =
    deps.watchdog === undefined
      ? new SilenceWatchdog({
          collector: 'okta',
          bus: deps.bus,
          alertsTopic: config.alertsTopic,
          silenceSeconds: config.silenceSeconds,
          logger,
        })
      : deps.watchdog;
  const normalize = { source: 'okta' as const, oktaOrg: new URL(config.orgUrl).host };
  const common = { bus: deps.bus, topics: deps.topics, normalize, metrics, dedupe, ...(watchdog ? { listener: watchdog } : {}) };
  const poller = new EventPublisher({ ...common, collector: 'okta', logger, alertsTopic: config.alertsTopic });
  const checkpoint = deps.checkpoint ?? new FileCheckpointStore<OktaCheckpoint>(config.checkpointDir, 'okta');

  let metricsServer: RunningServer | null = null;
  let hook: OktaHookServer | null = null;
  try {
    if (!deps.metrics && config.metrics) metricsServer = await startMetricsServer(metrics, { ...config.metrics, logger });
    if (config.hook) {
      const hookPublisher = new EventPublisher({ ...common, collector: 'okta-hook', logger: logger.child({ collector: 'okta-hook' }) });
      hook = await startOktaHook(config.hook, { publisher: hookPublisher, logger, metrics });
    }
  } catch (err) {
    await metricsServer?.close();
    throw err;
  }
  watchdog?.start();

  const abort = new AbortController();
  const done = pollSystemLog(config, { ...deps, logger, checkpoint }, poller, metrics, abort.signal);
  // A fatal poller error ends the run; the caller sees it through `done`.
  done.catch(() => {});
  let stopping: Promise<void> | null = null;
  return {
    name: 'okta',
    metrics,
    hook,
    done,
    stop: () => {
      stopping ??= (async () => {
        abort.abort();
        await done.catch(() => {});
        watchdog?.stop();
        await hook?.close();
        await metricsServer?.close();
      })();
      return stopping;
    },
  };
}

interface PollDeps extends OktaDeps {
  logger: Logger;
  checkpoint: CheckpointStore<OktaCheckpoint>;
}

async function pollSystemLog(
  config: OktaCollectorConfig,
  deps: PollDeps,
  publisher: EventPublisher,
  metrics: CollectorMetrics,
  signal: AbortSignal,
): Promise<void> {
  const log = deps.logger;
  const saved = await deps.checkpoint.load();
  if (saved && saved.orgUrl !== config.orgUrl) {
    throw new GlasswatchError('BG_INGEST_OKTA_CHECKPOINT_ORG', `the Okta checkpoint belongs to ${saved.orgUrl}, not ${config.orgUrl}`, {
      stage: 'config',
      hint: 'point collectors.checkpointDir elsewhere, or delete the okta checkpoint to start this org from its configured start',
    });
  }
  const since = config.since ?? new Date(Date.now() - config.sinceMinutes * 60_000).toISOString();
  let url = saved?.next ?? firstPageUrl(config.orgUrl, since, config.limit);
  let pages = saved?.pages ?? 0;
  log.info('okta poller starting', { from: saved ? 'checkpoint' : 'since', since: saved ? undefined : since, pages });

  const fetchOptions = {
    authorization: `${config.authScheme} ${config.token}`,
    timeoutMs: config.requestTimeoutSeconds * 1000,
    orgOrigin: config.orgUrl,
  };
  const initialBackoff = deps.initialBackoffMs ?? 1000;
  const maxBackoff = deps.maxBackoffMs ?? 300_000;
  let failures = 0;
  const backoff = () => {
    const ceiling = Math.min(maxBackoff, initialBackoff * 2 ** failures++);
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  };
  const aborted = new Promise<null>((resolve) => signal.addEventListener('abort', () => resolve(null), { once: true }));

  while (!signal.aborted) {
    let page: SystemLogPage | null;
    try {
      // An in-flight GET has no side effects: a stop abandons it instead of waiting for its timeout.
      page = await Promise.race([fetchPage(url, fetchOptions), aborted]);
    } catch (err) {
      if (err instanceof GlasswatchError && err.code === 'BG_INGEST_OKTA_FOREIGN_LINK') throw err; // never retried
      metrics.recordError('okta', 'receiving');
      const wait = backoff();
      log.warn('okta request failed', { error: errorMessage(err), retryInMs: wait });
      await sleep(wait, signal);
      continue;
    }
    if (page === null) break;

    if (page.status === 400) {
      // A malformed query (E0000001 since older than 180 days, a bad filter) will never succeed: stop
      // with the reason instead of retrying it forever.
      metrics.recordError('okta', 'receiving');
      throw new GlasswatchError(
        'BG_INGEST_OKTA_BAD_REQUEST',
        `Okta refused the System Log query (HTTP 400): ${String(page.error ?? 'bad request')}`,
        {
          stage: 'config',
          context: { status: 400 },
          hint: 'check collectors.okta.since / sinceMinutes (Okta keeps at most 180 days) and remove a stale checkpoint file if the org changed',
        },
      );
    }
    if (page.status !== 200) {
      metrics.recordError('okta', 'receiving');
      let wait: number;
      if (page.status === 429) {
        const untilReset = page.rateLimit.resetMs === null ? null : Math.max(0, page.rateLimit.resetMs - (page.serverNowMs ?? Date.now()));
        wait = page.retryAfterMs ?? untilReset ?? backoff();
        log.warn('okta rate limited (429)', { waitMs: wait, error: page.error });
      } else {
        // 5xx (incl. E0000009 query timeout) is transient; 401/403 (revoked token, missing role)
        // needs an operator, but retrying slowly keeps the collector alive for the fix while the
        // silence watchdog raises the alarm.
        wait = backoff();
        (page.status >= 500 ? log.warn : log.error)('okta request refused', { status: page.status, error: page.error, retryInMs: wait });
      }
      await sleep(wait, signal);
      continue;
    }
    failures = 0;

    const events = page.events ?? [];
    const next = page.next ?? url;
    if (page.next === null) log.warn('okta page without rel="next" link; polling the same URL again');
    const where = new URL(url);
    const results = publisher.normalizeDocument(events, { file: `okta:${where.pathname}${where.search}`, line: null, index: null });
    let summary: Awaited<ReturnType<EventPublisher['publishUnit']>>;
    try {
      summary = await publisher.publishUnit(results, () => deps.checkpoint.save({ next, orgUrl: config.orgUrl, pages: pages + 1 }));
    } catch (err) {
      // Not acknowledged (or checkpoint not saved): the same page is fetched again; what was acknowledged is deduplicated.
      metrics.recordError('okta', 'sending');
      const wait = backoff();
      log.error('okta page not delivered; will fetch it again', { error: errorMessage(err), retryInMs: wait });
      await sleep(wait, signal);
      continue;
    }
    pages++;
    url = next;
    deps.onPage?.({ pages, events: summary.events, duplicates: summary.duplicates, next });

    const budget = rateLimitDelayMs(page.rateLimit, config.rateLimitReserve, page.serverNowMs);
    const pace = events.length < config.limit ? config.pollIntervalSeconds * 1000 : config.pageDelayMs;
    const wait = Math.max(budget, pace);
    if (budget > pace) log.debug('okta slowing down for the rate limit', { remaining: page.rateLimit.remaining, waitMs: budget });
    if (wait > 0) await sleep(wait, signal);
  }
  log.info('okta poller stopped', { pages });
}
