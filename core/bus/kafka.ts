import type { ConnectionOptions } from 'node:tls';
import {
  type Admin,
  type EachBatchPayload,
  type IHeaders,
  Kafka,
  type KafkaMessage,
  type LogEntry,
  logLevel,
  type Message,
  Partitioners,
  type Producer,
  type SASLOptions,
} from 'kafkajs';
import { errorMessage, GlasswatchError, isRetriable } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { type Bus, type BusMessage, DEAD_LETTER_HEADERS, type OutgoingMessage, type SubscribeOptions, type Subscription } from './types.js';

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

type Resolved = Readonly<Required<Omit<KafkaBusOptions, 'ssl' | 'sasl' | 'replicationFactor'>>> &
  Readonly<Pick<KafkaBusOptions, 'ssl' | 'sasl' | 'replicationFactor'>>;

const SASL_MECHANISMS = new Set(['plain', 'scram-sha-256', 'scram-sha-512', 'aws', 'oauthbearer']);

function configError(field: string, message: string): GlasswatchError {
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

/** kafkajs logs at warn and error only, into our logger; its entries are per connection or group event. */
function kafkajsLogCreator(logger: Logger) {
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      // Chosen on purpose: a publish must fail in bounded time, and at-least-once tolerates the rare
      // duplicate a re-sent batch can make.
      if (log.message === 'Limiting retries for the idempotent producer may invalidate EoS guarantees') return;
      const { message, timestamp: _t, logger: _l, stack: _s, error, ...fields } = log as LogEntry['log'] & Record<string, unknown>;
      // Errors by message and code only: their stacks and nested causes would make one line a page.
      if (error !== undefined) fields.error = error instanceof GlasswatchError ? `${error.code}: ${error.message}` : errorMessage(error);
      // Connection-level error responses (coordinator loading, leader moving) are retried by kafkajs itself.
      const asError = level === logLevel.ERROR && namespace !== 'Connection';
      logger[asError ? 'error' : 'warn'](`kafkajs: ${message}`, { namespace, ...fields });
    };
}

function headerString(value: IHeaders[string]): string | undefined {
  if (value === undefined) return undefined;
  // Repeated header keys: the last one wins, as in Kafka's own `Headers.lastHeader`.
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  return last === undefined ? undefined : last.toString();
}

function toBusMessage(topic: string, partition: number, m: KafkaMessage): BusMessage {
  const headers: Record<string, string> = {};
  if (m.headers) {
    for (const key in m.headers) {
      const v = headerString(m.headers[key]);
      if (v !== undefined) headers[key] = v;
    }
  }
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key === null ? null : m.key.toString(),
    value: m.value ?? Buffer.alloc(0),
    headers,
    timestamp: Number(m.timestamp),
  };
}

function approxSize(m: OutgoingMessage): number {
  let size = 70 + (m.key === null ? 0 : Buffer.byteLength(m.key)) + Buffer.byteLength(m.value);
  if (m.headers) for (const k in m.headers) size += 8 + k.length + Buffer.byteLength(m.headers[k] ?? '');
  return size;
}

const HANDLED = 0;
const STOPPED = 1;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The bus on Apache Kafka through kafkajs 2.2.4: keyed messages from one idempotent producer
 * (acks=all), topics created on demand, consumer groups that commit a message's offset only
 * after its handler succeeded, retries and a dead-letter topic. See `Bus` for the contract.
 */
export class KafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  readonly options: Resolved;
  readonly #kafka: Kafka;
  readonly #log: Logger;
  readonly #subscriptions = new Set<Subscription>();
  readonly #topics = new Map<string, Promise<void>>();
  #producer: Promise<Producer> | undefined;
  #admin: Promise<Admin> | undefined;
  #closed = false;

  constructor(options: KafkaBusOptions) {
    this.options = resolveKafkaBusOptions(options);
    const o = this.options;
    this.#log = o.logger;
    this.#kafka = new Kafka({
      clientId: o.clientId,
      brokers: o.brokers,
      ...(o.ssl === undefined ? {} : { ssl: o.ssl }),
      ...(o.sasl === undefined ? {} : { sasl: o.sasl }),
      connectionTimeout: o.connectionTimeoutMs,
      requestTimeout: o.requestTimeoutMs,
      retry: { retries: o.retries },
      logLevel: logLevel.WARN,
      logCreator: kafkajsLogCreator(o.logger),
    });
  }

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    this.#assertOpen();
    if (messages.length === 0) return;
    await this.#ensureTopics([topic]);
    const producer = await this.#connectProducer();
    // One request per chunk, awaited in turn: kafkajs' idempotent producer is not safe with
    // concurrent sends to a partition, and a partition's batch must stay under message.max.bytes.
    let chunk: Message[] = [];
    let bytes = 0;
    const send = async () => {
      try {
        await producer.send({ topic, acks: -1, messages: chunk });
      } catch (err) {
        throw new GlasswatchError(
          'BG_BUS_PUBLISH_FAILED',
          `publishing ${chunk.length} message(s) to ${topic} failed: ${errorMessage(err)}`,
          {
            stage: 'sending',
            retriable: (err as { retriable?: boolean }).retriable === true,
            cause: err,
            context: { topic, messages: chunk.length },
          },
        );
      }
      chunk = [];
      bytes = 0;
    };
    for (const m of messages) {
      const size = approxSize(m);
      if (chunk.length > 0 && bytes + size > this.options.maxPublishBytes) await send();
      chunk.push({ key: m.key, value: m.value, ...(m.headers ? { headers: m.headers } : {}) });
      bytes += size;
    }
    if (chunk.length > 0) await send();
  }

  async subscribe(options: KafkaSubscribeOptions): Promise<Subscription> {
    this.#assertOpen();
    const o = this.options;
    const maxAttempts = options.maxAttempts ?? 3;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw configError('maxAttempts', 'must be a positive integer');
    await this.#ensureTopics(options.deadLetterTopic ? [...options.topics, options.deadLetterTopic] : options.topics);
    const consumer = this.#kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: o.heartbeatIntervalMs,
      rebalanceTimeout: o.rebalanceTimeoutMs,
      maxWaitTimeInMs: o.maxWaitTimeMs,
      allowAutoTopicCreation: false,
    });
    if (options.onCommit) {
      const onCommit = options.onCommit;
      consumer.on(consumer.events.COMMIT_OFFSETS, ({ payload }) => {
        onCommit(
          payload.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: Number(p.partition), offset: p.offset }))),
        );
      });
    }
    let stopping = false;
    const running = () => !stopping && !this.#closed;
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning !== false });
      await consumer.run({
        // Offsets are resolved one by one after the handler succeeded; kafkajs commits the resolved ones
        // on the interval/threshold below, at the end of every batch, before a rebalance and on a
        // handler crash, so a crash re-delivers only what was not handled.
        eachBatchAutoResolve: false,
        autoCommit: true,
        autoCommitInterval: o.commitIntervalMs,
        autoCommitThreshold: o.commitEveryMessages,
        partitionsConsumedConcurrently: o.partitionsConsumedConcurrently,
        eachBatch: (payload) => this.#eachBatch(payload, options, maxAttempts, running),
      });
    } catch (err) {
      await consumer.disconnect().catch(() => {});
      throw new GlasswatchError(
        'BG_BUS_SUBSCRIBE_FAILED',
        `subscribing ${options.groupId} to ${options.topics.join(', ')} failed: ${errorMessage(err)}`,
        {
          stage: 'receiving',
          retriable: true,
          cause: err,
          context: { groupId: options.groupId, topics: options.topics, brokers: o.brokers },
        },
      );
    }
    const subscription: Subscription = {
      stop: async () => {
        if (stopping) return;
        stopping = true;
        this.#subscriptions.delete(subscription);
        // Waits for the batch in hand (which breaks after its current message), commits, leaves the group.
        await consumer.disconnect();
      },
    };
    this.#subscriptions.add(subscription);
    return subscription;
  }

  async #eachBatch(payload: EachBatchPayload, options: SubscribeOptions, maxAttempts: number, running: () => boolean): Promise<void> {
    const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale } = payload;
    let deadLettered = 0;
    let lastReason = '';
    try {
      for (const m of batch.messages) {
        if (!isRunning() || isStale() || !running()) break;
        const message = toBusMessage(batch.topic, batch.partition, m);
        const outcome = await this.#deliver(message, options, maxAttempts, heartbeat, running);
        if (outcome === STOPPED) break; // left unresolved: the next owner of the partition gets it
        if (outcome !== HANDLED) {
          deadLettered++;
          lastReason = outcome;
        }
        resolveOffset(m.offset);
        await commitOffsetsIfNecessary();
        await heartbeat();
      }
    } finally {
      if (deadLettered > 0) {
        this.#log.warn('messages dead-lettered', {
          topic: batch.topic,
          partition: batch.partition,
          count: deadLettered,
          deadLetterTopic: options.deadLetterTopic,
          lastReason,
        });
      }
    }
  }

  /** Runs the handler with retries; returns HANDLED, STOPPED, or the reason it was dead-lettered. */
  async #deliver(
    message: BusMessage,
    options: SubscribeOptions,
    maxAttempts: number,
    heartbeat: () => Promise<void>,
    running: () => boolean,
  ): Promise<typeof HANDLED | typeof STOPPED | string> {
    for (let attempt = 1; ; attempt++) {
      try {
        await options.handler(message);
        return HANDLED;
      } catch (err) {
        if (attempt < maxAttempts && isRetriable(err)) {
          await sleep(Math.min(5000, this.options.handlerRetryDelayMs * 2 ** (attempt - 1)));
          if (!running()) return STOPPED;
          await heartbeat();
          continue;
        }
        const context = { topic: message.topic, partition: message.partition, offset: message.offset, attempts: attempt };
        if (!options.deadLetterTopic) {
          // No dead-letter topic: block the partition rather than drop the message (kafkajs restarts
          // the consumer from the last committed offset, with backoff).
          throw new GlasswatchError(
            'BG_BUS_HANDLER_FAILED',
            `handler failed on ${message.topic}[${message.partition}]@${message.offset} after ${attempt} attempt(s): ${errorMessage(err)}`,
            {
              stage: 'processing',
              retriable: true,
              cause: err,
              context,
            },
          );
        }
        const reason = errorMessage(err).slice(0, 1024) || 'handler failed';
        await this.publish(options.deadLetterTopic, [
          {
            key: message.key,
            value: message.value,
            headers: {
              ...message.headers,
              [DEAD_LETTER_HEADERS.reason]: reason,
              [DEAD_LETTER_HEADERS.topic]: message.topic,
              [DEAD_LETTER_HEADERS.partition]: String(message.partition),
              [DEAD_LETTER_HEADERS.offset]: message.offset,
            },
          },
        ]);
        return reason;
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.allSettled([...this.#subscriptions].map((s) => s.stop()));
    this.#closed = true;
    const producer = this.#producer;
    const admin = this.#admin;
    await Promise.allSettled([producer?.then((p) => p.disconnect()), admin?.then((a) => a.disconnect())]);
  }

  #assertOpen(): void {
    if (this.#closed) throw new GlasswatchError('BG_BUS_CLOSED', 'KafkaBus is closed', { stage: 'sending' });
  }

  #connectProducer(): Promise<Producer> {
    this.#producer ??= (async () => {
      // The default partitioner is Java's murmur2, so keys land on the same partitions as with other clients.
      const producer = this.#kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      return producer;
    })().catch((err) => {
      this.#producer = undefined;
      throw this.#connectError('producer', err);
    });
    return this.#producer;
  }

  #connectAdmin(): Promise<Admin> {
    this.#admin ??= (async () => {
      const admin = this.#kafka.admin();
      await admin.connect();
      return admin;
    })().catch((err) => {
      this.#admin = undefined;
      throw this.#connectError('admin', err);
    });
    return this.#admin;
  }

  #connectError(client: string, err: unknown): GlasswatchError {
    return new GlasswatchError(
      'BG_BUS_CONNECT_FAILED',
      `kafka ${client} could not connect to ${this.options.brokers.join(',')}: ${errorMessage(err)}`,
      {
        stage: 'sending',
        retriable: true,
        cause: err,
        context: { brokers: this.options.brokers },
        hint: 'check that the brokers are reachable and the TLS/SASL options match the listener',
      },
    );
  }

  /** Creates missing topics once per bus; concurrent callers share the same creation. */
  async #ensureTopics(topics: string[]): Promise<void> {
    if (!this.options.createTopics) return;
    const missing = topics.filter((t) => !this.#topics.has(t));
    if (missing.length > 0) {
      const creation = (async () => {
        const admin = await this.#connectAdmin();
        const replicationFactor = this.options.replicationFactor ?? Math.min(3, (await admin.describeCluster()).brokers.length);
        // Resolves false when the topics exist already, which is fine.
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((topic) => ({ topic, numPartitions: this.options.numPartitions, replicationFactor })),
        });
      })();
      for (const t of missing) {
        this.#topics.set(
          t,
          creation.catch((err) => {
            this.#topics.delete(t);
            throw err instanceof GlasswatchError
              ? err
              : new GlasswatchError('BG_BUS_TOPIC_CREATE_FAILED', `creating topic ${t} failed: ${errorMessage(err)}`, {
                  stage: 'sending',
                  retriable: true,
                  cause: err,
                });
          }),
        );
      }
    }
    await Promise.all(topics.map((t) => this.#topics.get(t)));
  }
}
