import type { ConnectionOptions } from 'node:tls';
import type { SASLOptions } from 'kafkajs';
import { GlasswatchError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import type { SubscribeOptions } from './types.js';

/** Options of the Kafka bus. Validated once by the constructor, then frozen. */
export interface KafkaBusOptions {
  /** Bootstrap brokers as `host:port`. Required. */
  brokers: string[];
  /** @default 'glasswatch' */
  clientId?: string;
  /** TLS: `true` for the system CAs, or Node TLS options (ca, cert, key, servername ...). @default false */
  ssl?: boolean | ConnectionOptions;
  /** SASL (plain, scram-sha-256/512, aws, oauthbearer), passed to kafkajs unchanged. @default none */
  sasl?: SASLOptions;
  /** Partitions of the topics this bus creates. @default 3 */
  numPartitions?: number;
  /** Replication of the topics this bus creates. @default min(3, brokers in the cluster) */
  replicationFactor?: number;
  /** Create missing topics (publish, subscribe, dead-letter) through the admin API. @default true */
  createTopics?: boolean;
  /** @default 3000 */
  connectionTimeoutMs?: number;
  /** @default 30000 */
  requestTimeoutMs?: number;
  /** Retries of a failed connection or request (kafkajs retry), not of handlers; at least 1. @default 5 */
  retries?: number;
  /** Consumer session timeout; must exceed `heartbeatIntervalMs` three times. @default 30000 */
  sessionTimeoutMs?: number;
  /** @default 3000 */
  heartbeatIntervalMs?: number;
  /** Time the group gives members to re-join during a rebalance. @default 60000 */
  rebalanceTimeoutMs?: number;
  /** Longest wait of a fetch for new data: the consume latency when the topic is quiet. @default 500 */
  maxWaitTimeMs?: number;
  /** Commit handled offsets at least this often. Bounds re-deliveries after a crash. @default 1000 */
  commitIntervalMs?: number;
  /** ... and at least every this many handled messages. @default 1000 */
  commitEveryMessages?: number;
  /** Partitions handled in parallel per subscription (order stays per partition). @default 1 */
  partitionsConsumedConcurrently?: number;
  /** Upper bound of one produce request's payload; below the broker's 1 MiB `message.max.bytes`. @default 900000 */
  maxPublishBytes?: number;
  /** First delay between attempts of a failing handler, doubled each attempt up to 5 s. @default 200 */
  handlerRetryDelayMs?: number;
  /** Where kafkajs warnings and errors go. @default createLogger() with `component: 'bus'` */
  logger?: Logger;
}

/** Extra, Kafka-only subscription options (the `Bus` contract does not need them). */
export interface KafkaSubscribeOptions extends SubscribeOptions {
  /** Called after each successful offset commit (instrumentation: per commit, never per message). */
  onCommit?: (offsets: Array<{ topic: string; partition: number; offset: string }>) => void;
}

export type Resolved = Readonly<Required<Omit<KafkaBusOptions, 'ssl' | 'sasl' | 'replicationFactor'>>> &
  Readonly<Pick<KafkaBusOptions, 'ssl' | 'sasl' | 'replicationFactor'>>;

const SASL_MECHANISMS = new Set(['plain', 'scram-sha-256', 'scram-sha-512', 'aws', 'oauthbearer']);

export function configError(field: string, message: string): GlasswatchError {
  return new GlasswatchError('BG_BUS_CONFIG_INVALID', `kafka bus option '${field}' ${message}`, {
    stage: 'config',
    context: { field },
  });
}

function positiveInt(options: KafkaBusOptions, field: keyof KafkaBusOptions, fallback: number): number {
  const value = options[field] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw configError(field, `must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Checks and completes the options; every error names the field. */
export function resolveKafkaBusOptions(options: KafkaBusOptions): Resolved {
  const { brokers } = options;
  if (!Array.isArray(brokers) || brokers.length === 0) throw configError('brokers', 'must be a non-empty array of "host:port"');
  for (const b of brokers) {
    const port = typeof b === 'string' ? Number(b.slice(b.lastIndexOf(':') + 1)) : Number.NaN;
    if (typeof b !== 'string' || !/^[^\s:]+:\d+$|^\[[0-9a-f:.]+\]:\d+$/i.test(b) || port < 1 || port > 65535) {
      throw configError('brokers', `has an entry that is not "host:port": ${JSON.stringify(b)}`);
    }
  }
  const clientId = options.clientId ?? 'glasswatch';
  if (typeof clientId !== 'string' || clientId.trim() === '') throw configError('clientId', 'must be a non-empty string');
  if (options.ssl !== undefined && typeof options.ssl !== 'boolean' && (typeof options.ssl !== 'object' || options.ssl === null)) {
    throw configError('ssl', 'must be a boolean or TLS options');
  }
  if (options.sasl !== undefined && !SASL_MECHANISMS.has(String((options.sasl as { mechanism?: unknown }).mechanism))) {
    throw configError('sasl', `needs a mechanism among ${[...SASL_MECHANISMS].join(', ')}`);
  }
  if (options.createTopics !== undefined && typeof options.createTopics !== 'boolean') {
    throw configError('createTopics', 'must be a boolean');
  }
  const resolved: Resolved = {
    brokers: [...brokers],
    clientId,
    ssl: options.ssl,
    sasl: options.sasl,
    numPartitions: positiveInt(options, 'numPartitions', 3),
    replicationFactor: options.replicationFactor === undefined ? undefined : positiveInt(options, 'replicationFactor', 1),
    createTopics: options.createTopics ?? true,
    connectionTimeoutMs: positiveInt(options, 'connectionTimeoutMs', 3000),
    requestTimeoutMs: positiveInt(options, 'requestTimeoutMs', 30_000),
    retries: positiveInt(options, 'retries', 5), // kafkajs refuses an idempotent producer without retries
    sessionTimeoutMs: positiveInt(options, 'sessionTimeoutMs', 30_000),
    heartbeatIntervalMs: positiveInt(options, 'heartbeatIntervalMs', 3000),
    rebalanceTimeoutMs: positiveInt(options, 'rebalanceTimeoutMs', 60_000),
    maxWaitTimeMs: positiveInt(options, 'maxWaitTimeMs', 500),
    commitIntervalMs: positiveInt(options, 'commitIntervalMs', 1000),
    commitEveryMessages: positiveInt(options, 'commitEveryMessages', 1000),
    partitionsConsumedConcurrently: positiveInt(options, 'partitionsConsumedConcurrently', 1),
    maxPublishBytes: positiveInt(options, 'maxPublishBytes', 900_000),
    handlerRetryDelayMs: positiveInt(options, 'handlerRetryDelayMs', 200),
    logger: options.logger ?? createLogger({ bindings: { component: 'bus' } }),
  };
  // The group coordinator evicts a member that misses its session; it needs a few heartbeats per session.
  if (resolved.heartbeatIntervalMs * 3 > resolved.sessionTimeoutMs) {
    throw configError(
      'heartbeatIntervalMs',
      `(${resolved.heartbeatIntervalMs}) must be at most a third of sessionTimeoutMs (${resolved.sessionTimeoutMs})`,
    );
  }
  return Object.freeze(resolved);
}
