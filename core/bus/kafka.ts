import {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  Kafka,
  type KafkaMessage,
  type LogEntry,
  logLevel,
  type Message,
  Partitioners,
  type Producer,
} from 'kafkajs';
import { errorMessage, GlasswatchError, isRetriable, withRetry } from '../errors.js';

export { type KafkaBusOptions, type KafkaSubscribeOptions, resolveKafkaBusOptions } from './kafka-options.js';

import type { Logger } from '../log.js';
import { configError, type KafkaBusOptions, type KafkaSubscribeOptions, type Resolved, resolveKafkaBusOptions } from './kafka-options.js';
import { ProducerSlot } from './producer-slot.js';
import {
  type Bus,
  type BusMessage,
  DEAD_LETTER_HEADERS,
  type OutgoingMessage,
  type SubscribeOptions,
  type Subscription,
  type TopicPartition,
} from './types.js';

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

/**
 * Why `producer.send` failed, by cause: kafkajs rejects with `KafkaJSNumberOfRetriesExceeded`
 * (flagged non-retriable) once its own retries are spent on a broker that is down or a leader that
 * is moving, which is transient for us; a record refused for its size is permanent for that record.
 */
function sendFailureCause(err: unknown): 'transient' | 'refused' | 'other' {
  let transient = false;
  for (
    let e = err as { cause?: unknown; type?: unknown; name?: unknown; retriable?: unknown } | null, n = 0;
    e && n < 8;
    e = e.cause as typeof e, n++
  ) {
    if (e.type === 'MESSAGE_TOO_LARGE' || e.type === 'RECORD_LIST_TOO_LARGE' || e.type === 'INVALID_RECORD') return 'refused';
    if (e.retriable === true || e.name === 'KafkaJSNumberOfRetriesExceeded') transient = true;
  }
  return transient ? 'transient' : 'other';
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
  readonly #topicConfig = new Map<string, { name: string; value: string }[]>();
  readonly #topicPartitions = new Map<string, number>();
  readonly #producer: ProducerSlot;
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
    this.#producer = new ProducerSlot(
      () => this.#connectProducer(),
      (err) =>
        this.#log.warn(
          'kafka producer replaced after a failed send: the retry gets a new producer id (its records may be written twice, never dropped)',
          {
            error: errorMessage(err),
          },
        ),
    );
  }

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    this.#assertOpen();
    if (messages.length === 0) return;
    await this.#ensureTopics([topic]);
    // One request per chunk, awaited in turn: kafkajs' idempotent producer is not safe with
    // concurrent sends to a partition, and a partition's batch must stay under message.max.bytes.
    let chunk: Message[] = [];
    let bytes = 0;
    const send = async () => {
      try {
        await this.#producer.send({ topic, acks: -1, messages: chunk });
      } catch (err) {
        if (err instanceof GlasswatchError && (err.code === 'BG_BUS_CONNECT_FAILED' || err.code === 'BG_BUS_CLOSED')) throw err;
        const cause = sendFailureCause(err);
        throw new GlasswatchError(
          cause === 'refused' ? 'BG_BUS_RECORD_TOO_LARGE' : 'BG_BUS_PUBLISH_FAILED',
          `publishing ${chunk.length} message(s) to ${topic} failed: ${errorMessage(err)}`,
          {
            stage: 'sending',
            retriable: cause === 'transient',
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
      chunk.push({
        key: m.key,
        value: m.tombstone ? null : m.value,
        ...(m.headers ? { headers: m.headers } : {}),
        ...(m.partition === undefined ? {} : { partition: m.partition }),
      });
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
      maxWaitTimeInMs: options.fetchMaxWaitMs ?? o.maxWaitTimeMs,
      ...(options.fetchMinBytes ? { minBytes: options.fetchMinBytes } : {}),
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
    const assignment = this.#assignmentGate(consumer, options);
    try {
      await consumer.connect();
      // Just after a topic is created, a broker's metadata can still say "does not host this
      // topic-partition" (retriable) for a moment: tried again rather than failing the start.
      await withRetry(() => consumer.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning !== false }), {
        retries: 6,
        initialDelayMs: 200,
        maxDelayMs: 3000,
        shouldRetry: (err) => (err as { retriable?: unknown }).retriable === true,
      });
      await consumer.run({
        // Offsets are resolved one by one after the handler succeeded; kafkajs commits the resolved ones
        // on the interval/threshold below, at the end of every batch, before a rebalance and on a
        // handler crash, so a crash re-delivers only what was not handled.
        eachBatchAutoResolve: false,
        autoCommit: true,
        autoCommitInterval: o.commitIntervalMs,
        autoCommitThreshold: o.commitEveryMessages,
        partitionsConsumedConcurrently: options.partitionsConcurrently ?? o.partitionsConsumedConcurrently,
        eachBatch: async (payload) => {
          await assignment.ready(payload.heartbeat);
          await this.#eachBatch(payload, options, maxAttempts, running);
        },
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

  /**
   * kafkajs has no revoke callback and only eager rebalancing: GROUP_JOIN, emitted after every
   * join+sync and before the first fetch of the new generation, carries the whole assignment.
   * Its listeners are not awaited, so the listener only starts `onAssignment` and every batch
   * waits for it (heartbeating, so a long restore does not cost the membership).
   */
  #assignmentGate(consumer: Consumer, options: SubscribeOptions): { ready(heartbeat: () => Promise<void>): Promise<void> } {
    const onAssignment = options.onAssignment;
    if (!onAssignment) return { ready: async () => {} };
    let last: TopicPartition[] = [];
    let pending: Promise<void> = Promise.resolve();
    let failed = false;
    const run = (partitions: TopicPartition[]) => {
      failed = false;
      // Chained: assignments are applied in the order the group made them.
      pending = pending
        .catch(() => {})
        .then(() => onAssignment(partitions))
        .catch((err: unknown) => {
          failed = true;
          throw err;
        });
      pending.catch(() => {}); // observed by ready(); never an unhandled rejection
    };
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      last = Object.entries(payload.memberAssignment).flatMap(([topic, ps]) => ps.map((partition) => ({ topic, partition })));
      run(last);
    });
    return {
      ready: async (heartbeat) => {
        if (failed) run(last);
        let done = false;
        const settled = pending.finally(() => {
          done = true;
        });
        settled.catch(() => {});
        while (!done) {
          await Promise.race([settled.catch(() => {}), sleep(this.options.heartbeatIntervalMs)]);
          if (!done) await heartbeat();
        }
        await pending;
      },
    };
  }

  async endOffsets(topic: string): Promise<Map<number, string>> {
    this.#assertOpen();
    const admin = await this.#connectAdmin();
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, o.high]));
  }

  async #eachBatch(payload: EachBatchPayload, options: SubscribeOptions, maxAttempts: number, running: () => boolean): Promise<void> {
    const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale } = payload;
    let deadLettered = 0;
    let lastReason = '';
    // With afterBatch, handled offsets wait until the sink says its buffer is durable.
    const every = options.afterBatchEvery ?? 1000;
    let pendingOffset: string | null = null;
    let pendingCount = 0;
    const settle = async () => {
      if (pendingOffset === null) return;
      await options.afterBatch!();
      resolveOffset(pendingOffset);
      pendingOffset = null;
      pendingCount = 0;
      await commitOffsetsIfNecessary();
    };
    if (options.beforeBatch && batch.messages.length > 0)
      await options.beforeBatch(batch.messages.map((m) => toBusMessage(batch.topic, batch.partition, m))).catch((err: unknown) => {
        this.#log.debug('beforeBatch failed: each message looks up on its own', { topic: batch.topic, error: errorMessage(err) });
      });
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
        if (options.afterBatch) {
          pendingOffset = m.offset;
          if (++pendingCount >= every) await settle();
        } else {
          resolveOffset(m.offset);
          await commitOffsetsIfNecessary();
        }
        await heartbeat();
      }
      if (options.afterBatch) await settle();
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
    const admin = this.#admin;
    await Promise.allSettled([this.#producer.close(), admin?.then((a) => a.disconnect())]);
  }

  #assertOpen(): void {
    if (this.#closed) throw new GlasswatchError('BG_BUS_CLOSED', 'KafkaBus is closed', { stage: 'sending' });
  }

  async #connectProducer(): Promise<Producer> {
    try {
      // The default partitioner is Java's murmur2, so keys land on the same partitions as with other clients.
      const producer = this.#kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      return producer;
    } catch (err) {
      throw this.#connectError('producer', err);
    }
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

  async deleteGroups(groupIds: string[]): Promise<void> {
    if (groupIds.length === 0) return;
    const admin = await this.#connectAdmin();
    try {
      await admin.deleteGroups(groupIds);
    } catch (err) {
      throw new GlasswatchError(
        'BG_BUS_GROUP_DELETE_FAILED',
        `deleting consumer group(s) ${groupIds.join(', ')} failed: ${errorMessage(err)}`,
        {
          stage: 'receiving',
          retriable: true,
          cause: err,
          context: { groupIds },
        },
      );
    }
  }

  async ensureTopic(topic: string, options: { compacted?: boolean; copartitionedWith?: string; retentionMs?: number }): Promise<void> {
    if (options.compacted || options.retentionMs !== undefined) {
      // Compacted and time-bounded: the latest record per key, and none older than the retention.
      const policy = [options.compacted ? 'compact' : null, options.retentionMs !== undefined ? 'delete' : null].filter(Boolean).join(',');
      this.#topicConfig.set(topic, [
        { name: 'cleanup.policy', value: policy },
        ...(options.retentionMs !== undefined ? [{ name: 'retention.ms', value: String(options.retentionMs) }] : []),
      ]);
    }
    const like = options.copartitionedWith;
    if (like === undefined) {
      await this.#ensureTopics([topic]);
      return;
    }
    await this.#ensureTopics([like]);
    const admin = await this.#connectAdmin();
    const count = async (t: string) => (await admin.fetchTopicMetadata({ topics: [t] })).topics[0]?.partitions.length ?? 0;
    const want = await count(like);
    this.#topicPartitions.set(topic, want);
    await this.#ensureTopics([topic]);
    const have = await count(topic);
    // A changelog with another partition count would restore a partition's state from the wrong place.
    if (have !== want) {
      throw new GlasswatchError(
        'BG_BUS_COPARTITION',
        `topic ${topic} has ${have} partition(s) but must be co-partitioned with ${like} (${want})`,
        {
          stage: 'config',
          context: { topic, like, have, want },
          hint: `delete ${topic} (it is rebuilt from the live state) or give it ${want} partitions`,
        },
      );
    }
  }

  /** Creates missing topics once per bus; concurrent callers share the same creation. */
  async #ensureTopics(topics: string[]): Promise<void> {
    if (!this.options.createTopics) return;
    const missing = topics.filter((t) => !this.#topics.has(t));
    if (missing.length > 0) {
      const creation = (async () => {
        const admin = await this.#connectAdmin();
        const replicationFactor = this.options.replicationFactor ?? Math.min(3, (await admin.describeCluster()).brokers.length);
        // Resolves false when the topics exist already, which is fine. Members starting together create
        // the same topics at once; the loser's wait for leaders can see "does not host this
        // topic-partition" for a moment (retriable): tried again rather than failing the start.
        await withRetry(
          () =>
            admin.createTopics({
              waitForLeaders: true,
              topics: missing.map((topic) => ({
                topic,
                numPartitions: this.#topicPartitions.get(topic) ?? this.options.numPartitions,
                replicationFactor,
                ...(this.#topicConfig.has(topic) ? { configEntries: this.#topicConfig.get(topic) } : {}),
              })),
            }),
          { retries: 6, initialDelayMs: 200, maxDelayMs: 3000, shouldRetry: (err) => (err as { retriable?: unknown }).retriable === true },
        );
        // A retry after a half-done creation answers "exists" without waiting for leaders, and a
        // consumer that joins while a partition has none never fetches it until its next metadata
        // refresh (minutes): every partition must have a leader before anyone uses the topics.
        await withRetry(
          async () => {
            const { topics: meta } = await admin.fetchTopicMetadata({ topics: missing });
            const leaderless = meta.flatMap((t) =>
              t.partitions.length === 0 ? [`${t.name}`] : t.partitions.filter((p) => p.leader < 0).map((p) => `${t.name}/${p.partitionId}`),
            );
            if (leaderless.length > 0) {
              throw new GlasswatchError('BG_BUS_TOPIC_CREATE_FAILED', `no leader yet for ${leaderless.join(', ')}`, {
                stage: 'sending',
                retriable: true,
              });
            }
          },
          { retries: 8, initialDelayMs: 100, maxDelayMs: 2000, shouldRetry: (err) => (err as { retriable?: unknown }).retriable === true },
        );
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
