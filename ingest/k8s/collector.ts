/**
 * `runK8sCollector`: the Kubernetes audit webhook receiver and/or log tailer of `collectors.k8s`,
 * publishing through one `EventPublisher` (collector label `k8s`; the tailer's is `k8s-tail`).
 */
import type { Bus } from '../../core/bus/types.js';
import { createLogger, type Logger } from '../../core/log.js';
import { type CheckpointStore, FileCheckpointStore } from '../collector/checkpoint.js';
import { DedupeWindow } from '../collector/dedupe.js';
import { type RunningServer, startMetricsServer } from '../collector/http.js';
import { CollectorMetrics } from '../collector/metrics.js';
import { EventPublisher } from '../collector/publisher.js';
import type { RunningCollector } from '../collector/run.js';
import { SilenceWatchdog } from '../collector/watchdog.js';
import type { K8sCollectorConfig } from './options.js';
import { type K8sReceiverServer, startK8sReceiver } from './receiver.js';
import { AuditLogTailer, type TailCheckpoint } from './tailer.js';

export { type K8sCollectorConfig, type K8sReceiverConfig, type K8sTailConfig, parseK8sFields, parseK8sSection } from './options.js';

export interface K8sDeps {
  bus: Bus;
  topics: { events: string; deadLetters: string };
  logger?: Logger;
  /** Shared registry; when absent one is made and served on `config.metrics` (the receiver never serves /metrics). */
  metrics?: CollectorMetrics;
  /** Tailer position. @default FileCheckpointStore(config.checkpointDir, "k8s-tail") */
  tailCheckpoint?: CheckpointStore<TailCheckpoint>;
  /** null disables the silence watchdog. @default one for collector "k8s" */
  watchdog?: SilenceWatchdog | null;
  /** Drops auditID+stage already published (a tailer and a webhook fed by the same apiserver). @default new DedupeWindow(100000) */
  dedupe?: DedupeWindow;
  onChunk?: (info: { inode: string; offset: number; events: number }) => void;
  /** Publish retries of a webhook batch before it is reported lost (the apiserver was already told 200). @default 40 (≈ 15 min) */
  publishRetries?: number;
}

export interface RunningK8sCollector extends RunningCollector {
  readonly metrics: CollectorMetrics;
  readonly receiver: K8sReceiverServer | null;
}

export async function runK8sCollector(config: K8sCollectorConfig, deps: K8sDeps): Promise<RunningK8sCollector> {
  const logger = (deps.logger ?? createLogger()).child({ component: 'collector', collector: 'k8s' });
  const metrics = deps.metrics ?? new CollectorMetrics();
  const watchdog =
    deps.watchdog === undefined
      ? new SilenceWatchdog({
          collector: 'k8s',
          bus: deps.bus,
          alertsTopic: config.alertsTopic,
          silenceSeconds: config.silenceSeconds,
          logger,
        })
      : deps.watchdog;
  const dedupe = deps.dedupe ?? new DedupeWindow();
  const common = {
    bus: deps.bus,
    topics: deps.topics,
    metrics,
    dedupe,
    normalize: { source: 'k8s' as const, ...(config.cluster ? { cluster: config.cluster } : {}) },
    ...(watchdog ? { listener: watchdog } : {}),
  };

  let metricsServer: RunningServer | null = null;
  let receiver: K8sReceiverServer | null = null;
  try {
    if (!deps.metrics && config.metrics) metricsServer = await startMetricsServer(metrics, { ...config.metrics, logger });
    if (config.receiver) {
      const publisher = new EventPublisher({
        ...common,
        collector: 'k8s',
        logger,
        alertsTopic: config.alertsTopic,
        retry: { retries: deps.publishRetries ?? 40, maxDelayMs: 30_000 },
      });
      receiver = await startK8sReceiver(config.receiver, { publisher, logger, metrics });
    }
  } catch (err) {
    await metricsServer?.close();
    throw err;
  }

  const abort = new AbortController();
  let tailing: Promise<void> = Promise.resolve();
  if (config.tail) {
    const tailLog = logger.child({ collector: 'k8s-tail' });
    const publisher = new EventPublisher({ ...common, collector: 'k8s-tail', logger: tailLog, alertsTopic: config.alertsTopic });
    const tailer = new AuditLogTailer(config.tail, {
      publisher,
      checkpoint: deps.tailCheckpoint ?? new FileCheckpointStore<TailCheckpoint>(config.checkpointDir, 'k8s-tail'),
      logger: tailLog,
      metrics,
      ...(deps.onChunk ? { onChunk: deps.onChunk } : {}),
    });
    tailing = tailer.run(abort.signal);
    tailing.catch(() => {});
  }
  watchdog?.start();
  let markStopped = () => {};
  const stopped = new Promise<void>((resolve) => {
    markStopped = resolve;
  });
  // Ends on stop(), or earlier with the tailer's fatal error.
  const done = Promise.all([tailing, stopped]).then(() => {});
  done.catch(() => {});

  let stopping: Promise<void> | null = null;
  return {
    name: 'k8s',
    metrics,
    receiver,
    done,
    stop: () => {
      stopping ??= (async () => {
        abort.abort();
        await tailing.catch(() => {});
        await receiver?.close();
        watchdog?.stop();
        await metricsServer?.close();
        markStopped();
      })();
      return stopping;
    },
  };
}

/** The receiver alone (`collectors.k8s.receiver`), for callers that name it so. */
export const runK8sReceiver = runK8sCollector;
