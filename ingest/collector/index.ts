/**
 * The shared collector contract. Every live collector (Okta, Kubernetes, CloudTrail) is built from
 * the same parts, so delivery guarantees and instrumentation are the same everywhere:
 *
 * - `EventPublisher` — normalize a unit (page, webhook body, file chunk), publish events to
 *   `topics.events` keyed by `identityKey`, dead letters to `topics.deadLetters` (reason + origin
 *   headers), then run the unit's `commit` (checkpoint save) — only after the bus acknowledged
 *   every record. Optional `DedupeWindow` drops ids already delivered.
 * - `CheckpointStore` — `FileCheckpointStore(dir, name)` (atomic JSON file) or `MemoryCheckpointStore`.
 * - `CollectorMetrics` — per-collector counters, `render()` = Prometheus text; `startMetricsServer`
 *   or `serveMetrics` mounts `/metrics`.
 * - `SilenceWatchdog` — pass it as the publisher's `listener`; after `silenceSeconds` without
 *   events it publishes a `pipeline.silence` alert to the alerts topic.
 * - Poison units (`poison.ts`) — input that can never be published (too deep, too large, refused
 *   by Kafka, a gzip bomb) is dead-lettered by the publisher, the checkpoint moves on, and with
 *   `alertsTopic` one `pipeline.poison` alert per unit is raised; `classifyFailure` tells such
 *   permanent failures from retriable ones (broker or store down), which are retried, never skipped.
 * - `BoundedQueue` — receiver → publisher hand-off with backpressure (full → answer 429/503).
 * - `startServer`, `readBody`, `sendJson`, `sendText` — HTTP(S) receiver plumbing.
 *
 * Typical poller:
 *
 * ```ts
 * const metrics = new CollectorMetrics();
 * const watchdog = new SilenceWatchdog({ collector: 'cloudtrail', bus, silenceSeconds: 3600 });
 * const publisher = new EventPublisher({ bus, collector: 'cloudtrail', topics, metrics, listener: watchdog,
 *   normalize: { source: 'cloudtrail' } });
 * const checkpoint = new FileCheckpointStore<{ key: string }>(checkpointDir, 'cloudtrail');
 * watchdog.start();
 * for (const object of newObjects(await checkpoint.load())) {
 *   await publisher.publishBuffer(object.bytes, `s3://${bucket}/${object.key}`, () => checkpoint.save({ key: object.key }));
 * }
 * ```
 */
export { type CheckpointStore, FileCheckpointStore, MemoryCheckpointStore } from './checkpoint.js';
export { DedupeWindow } from './dedupe.js';
export {
  type RunningServer,
  readBody,
  type ServerOptions,
  sendJson,
  sendText,
  serveMetrics,
  startMetricsServer,
  startServer,
  type TlsServerOptions,
} from './http.js';
export { type BatchStats, CollectorMetrics } from './metrics.js';
export { COLLECTOR_SECTIONS, type CollectorsCommonConfig, collectorsFields, parseCollectorsCommon, readPem } from './options.js';
export {
  classifyFailure,
  type FailureKind,
  isRecordRefused,
  isTransientFailure,
  PoisonAlerts,
  type PoisonUnit,
  poisonAlert,
} from './poison.js';
export {
  COLLECTOR_DLQ_HEADERS,
  type DeliveryListener,
  defaultDedupeKey,
  EventPublisher,
  type PublisherOptions,
  type UnitSummary,
} from './publisher.js';
export { BoundedQueue, type QueueOptions } from './queue.js';
export { type RunningCollector, sleep } from './run.js';
export { SilenceWatchdog, type WatchdogOptions } from './watchdog.js';
