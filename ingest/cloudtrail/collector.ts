/**
 * `runCloudTrailCollector`: starts the configured CloudTrail path (S3 poller, SQS consumer or
 * EventBridge endpoint) on the shared collector contract — one `EventPublisher` (events keyed by
 * identity, checkpoint only after the bus acknowledged), per-batch metrics, the silence watchdog.
 *
 * Wiring (`glasswatch collect cloudtrail`, `glasswatch start`):
 *
 * ```ts
 * const config = parseCloudTrailSection(glasswatchConfig);          // validate once at start-up
 * const running = await runCloudTrailCollector(config, { bus, topics: glasswatchConfig.topics, logger });
 * process.once('SIGTERM', () => void running.stop());
 * await running.done;
 * ```
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Bus } from '../../core/bus/types.js';
import { errorMessage } from '../../core/errors.js';
import { createLogger, type Logger } from '../../core/log.js';
import type { Store } from '../../core/store/client.js';
import { type CheckpointStore, FileCheckpointStore } from '../collector/checkpoint.js';
import { DedupeWindow } from '../collector/dedupe.js';
import { type RunningServer, startMetricsServer } from '../collector/http.js';
import { CollectorMetrics } from '../collector/metrics.js';
import { EventPublisher } from '../collector/publisher.js';
import type { RunningCollector } from '../collector/run.js';
import { SilenceWatchdog } from '../collector/watchdog.js';
import { type AwsConnection, createS3Client, createSqsClient } from './aws.js';
import { type EventBridgeReceiver, startEventBridgeReceiver } from './eventbridge.js';
import type { CloudTrailCollectorConfig } from './options.js';
import { type S3Checkpoint, S3Poller } from './s3.js';
import { SqsConsumer } from './sqs.js';
import { PublicKeySource } from './validation/keys.js';
import { discardingRecorder, StoreValidationRecorder } from './validation/record.js';
import { LogFileValidator } from './validation/validator.js';

export { type CloudTrailCollectorConfig, type CloudTrailMode, parseCloudTrailFields, parseCloudTrailSection } from './options.js';
export type { S3Checkpoint } from './s3.js';

export const CLOUDTRAIL_COLLECTOR = 'cloudtrail';

export interface CloudTrailDeps {
  bus: Bus;
  topics: { events: string; deadLetters: string };
  logger?: Logger;
  /** Shared registry (one `/metrics` for all collectors). When absent, one is made and served on `config.metrics`. */
  metrics?: CollectorMetrics;
  /** S3 mode. @default FileCheckpointStore(config.checkpointDir, "cloudtrail-s3-<bucket>") */
  checkpoint?: CheckpointStore<S3Checkpoint>;
  /** @default new DedupeWindow(config.dedupeWindow) */
  dedupe?: DedupeWindow;
  /** null disables the silence watchdog. @default one for collector "cloudtrail" */
  watchdog?: SilenceWatchdog | null;
  /** Clients built by the caller (tests, custom credential providers). @default built from the config */
  s3?: S3Client;
  sqs?: SQSClient;
  /**
   * Where log-file validation statuses are written (`log_validation`). Without it validation still
   * checks and alerts, but reports cannot state object statuses; the status says so.
   */
  validationStore?: Store | Promise<Store> | null;
  /** Injected clock for validation windows (tests). */
  now?: () => number;
}

/** Whether log-file validation runs, and why not. */
export interface ValidationStatus {
  state: 'on' | 'off';
  reason: string;
  validator: LogFileValidator | null;
}

export interface RunningCloudTrailCollector extends RunningCollector {
  readonly metrics: CollectorMetrics;
  /** Mode eventbridge: the listening endpoint. */
  readonly receiver: EventBridgeReceiver | null;
  /** Log-file validation: on, or off and why (validateLogFiles: false, digests unreadable, eventbridge mode). */
  readonly validation: ValidationStatus;
}

/** The checkpoint file name of a bucket: one per bucket, so two buckets never share positions. */
export function s3CheckpointName(bucket: string): string {
  return `cloudtrail-s3-${bucket.replace(/[^A-Za-z0-9._-]/g, '_')}`;
}

export async function runCloudTrailCollector(config: CloudTrailCollectorConfig, deps: CloudTrailDeps): Promise<RunningCloudTrailCollector> {
  const logger = (deps.logger ?? createLogger()).child({ component: 'collector', collector: CLOUDTRAIL_COLLECTOR, mode: config.mode });
  const metrics = deps.metrics ?? new CollectorMetrics();
  const watchdog =
    deps.watchdog === undefined
      ? new SilenceWatchdog({
          collector: CLOUDTRAIL_COLLECTOR,
          bus: deps.bus,
          alertsTopic: config.alertsTopic,
          silenceSeconds: config.silenceSeconds,
          logger,
        })
      : deps.watchdog;
  const publisher = new EventPublisher({
    bus: deps.bus,
    collector: CLOUDTRAIL_COLLECTOR,
    topics: deps.topics,
    normalize: { source: 'cloudtrail' },
    metrics,
    logger,
    dedupe: deps.dedupe ?? new DedupeWindow(config.dedupeWindow),
    ...(watchdog ? { listener: watchdog } : {}),
    // A unit with input that can never be published raises pipeline.poison before its checkpoint moves.
    alertsTopic: config.alertsTopic,
  });
  const aws: AwsConnection = {
    region: config.region ?? 'us-east-1',
    endpoint: config.endpoint,
    credentials: config.credentials,
  };

  // Clients made here are destroyed at stop (their keep-alive sockets would hold the process open).
  const owned: { destroy(): void }[] = [];
  let s3Made: S3Client | null = null;
  const s3Client = () => {
    s3Made ??= deps.s3 ?? own(createS3Client(aws));
    return s3Made;
  };
  const own = <T extends { destroy(): void }>(client: T): T => {
    owned.push(client);
    return client;
  };
  const validator =
    config.validation?.enabled && (config.mode === 's3' || config.mode === 'sqs')
      ? new LogFileValidator({
          s3: s3Client(),
          keys: new PublicKeySource({
            // The S3 client's resolved credential provider: the same identity reads objects and keys.
            credentials: s3Client().config.credentials,
            endpoint: config.validation.endpoint,
          }),
          recorder: deps.validationStore ? new StoreValidationRecorder(deps.validationStore, logger) : discardingRecorder,
          bus: deps.bus,
          alertsTopic: config.alertsTopic,
          region: aws.region,
          windowMinutes: config.validation.windowMinutes,
          // The S3 poller reads every digest folder; a queue may carry no digest notifications at all.
          searchDigests: config.mode === 'sqs',
          explicit: config.validation.explicit,
          logger,
          ...(deps.now ? { now: deps.now } : {}),
        })
      : null;
  if (validator) {
    // Objects a previous run left pending: settled by their digest, or missing_digest after the window.
    // Not awaited (the store may still be opening): digests and sweeps wait for it, publishing does not.
    validator.restore(config.mode === 's3' ? (config.s3?.bucket ?? null) : null).then(
      (restored) => {
        if (restored > 0) logger.info('cloudtrail log validation: pending objects restored', { restored });
      },
      (err: unknown) => logger.warn('cloudtrail log validation: pending objects not restored from the store', { error: errorMessage(err) }),
    );
  }
  let poller: S3Poller | null = null;
  let consumer: SqsConsumer | null = null;
  let metricsServer: RunningServer | null = null;
  let receiver: EventBridgeReceiver | null = null;
  const abort = new AbortController();
  let done: Promise<void>;
  try {
    if (!deps.metrics && config.metrics) metricsServer = await startMetricsServer(metrics, { ...config.metrics, logger });
    if (config.mode === 's3' && config.s3) {
      const s3 = config.s3;
      poller = new S3Poller({
        s3: s3Client(),
        bucket: s3.bucket,
        prefix: s3.prefix,
        publisher,
        checkpoints: deps.checkpoint ?? new FileCheckpointStore<S3Checkpoint>(config.checkpointDir, s3CheckpointName(s3.bucket)),
        startDate: s3.startDate,
        settleSeconds: s3.settleSeconds,
        discoveryIntervalSeconds: s3.discoveryIntervalSeconds,
        prefetch: s3.prefetch,
        validator,
        validationExplicit: config.validation?.explicit ?? false,
        metrics,
        logger,
        ...(deps.now ? { now: deps.now } : {}),
      });
      done = poller.run(s3.pollIntervalSeconds * 1000, abort.signal);
    } else if (config.mode === 'sqs' && config.sqs) {
      consumer = new SqsConsumer({
        sqs: deps.sqs ?? own(createSqsClient(aws)),
        s3: s3Client(),
        queueUrl: config.sqs.queueUrl,
        publisher,
        waitTimeSeconds: config.sqs.waitTimeSeconds,
        visibilityTimeoutSeconds: config.sqs.visibilityTimeoutSeconds,
        prefetch: config.sqs.prefetch,
        validator,
        validationExplicit: config.validation?.explicit ?? false,
        metrics,
        logger,
      });
      done = consumer.run(abort.signal);
    } else if (config.mode === 'eventbridge' && config.eventbridge) {
      const eb = config.eventbridge;
      receiver = await startEventBridgeReceiver({
        publisher,
        auth: { apiKey: eb.apiKey, basic: eb.basic },
        host: eb.host,
        port: eb.port,
        path: eb.path,
        ...(eb.tls ? { tls: eb.tls } : {}),
        maxBodyBytes: eb.maxBodyBytes,
        maxQueuedEvents: eb.maxQueuedEvents,
        maxQueuedBytes: eb.maxQueuedBytes,
        maxDecompressedBytes: eb.maxDecompressedBytes,
        limits: eb.limits,
        // Counters only: /metrics is served on the metrics listener (collectors.metrics), never here.
        metrics,
        logger,
      });
      logger.info('cloudtrail eventbridge endpoint listening', { url: receiver.url, path: eb.path });
      const stopped = abort.signal;
      done = new Promise<void>((resolve) => stopped.addEventListener('abort', () => resolve(), { once: true }));
    } else {
      throw new Error(`collectors.cloudtrail: mode ${config.mode} has no settings (validate with parseCloudTrailSection)`);
    }
  } catch (err) {
    await metricsServer?.close();
    for (const client of owned) client.destroy();
    throw err;
  }
  const offReason =
    config.mode === 'eventbridge'
      ? 'eventbridge mode: no digest files reach an API destination'
      : !config.validation?.enabled
        ? 'validateLogFiles: false'
        : null;
  if (offReason) logger.warn('cloudtrail log-file validation off', { reason: offReason });
  else if (!deps.validationStore)
    logger.warn('cloudtrail log-file validation on without a store: tamper alerts are raised, object statuses are not stored for reports');
  watchdog?.start();
  // A fatal error ends the run; the caller sees it through `done`.
  done.catch(() => {});

  let stopping: Promise<void> | null = null;
  return {
    name: CLOUDTRAIL_COLLECTOR,
    metrics,
    receiver,
    get validation(): ValidationStatus {
      const off = offReason ?? poller?.validationOff ?? consumer?.validationOff ?? null;
      if (off) return { state: 'off', reason: off, validator: null };
      return {
        state: 'on',
        reason: deps.validationStore ? 'statuses stored in log_validation' : 'no store: statuses not stored',
        validator,
      };
    },
    done,
    stop: () => {
      stopping ??= (async () => {
        abort.abort();
        await done.catch(() => {});
        await receiver?.close();
        watchdog?.stop();
        await metricsServer?.close();
        for (const client of owned) client.destroy();
      })();
      return stopping;
    },
  };
}
