/** Shared helpers of the bus tests: broker address, unique names, polling, a reachability check. */
import { type Admin, Kafka, logLevel } from 'kafkajs';
import { inject } from 'vitest';
import type { KafkaBusOptions } from '../../core/bus/kafka.js';
import { createLogger } from '../../core/log.js';

/** `KAFKA_BROKERS` from the environment, or from test/setup/global.ts through provide/inject. */
export function kafkaBrokers(): string[] {
  const value = process.env.KAFKA_BROKERS || inject('kafkaBrokers');
  if (!value) throw new Error('KAFKA_BROKERS is not set and test/setup/global.ts provided no broker');
  return value.split(',').map((b) => b.trim());
}

let counter = 0;
/** Topic and group names unique to this run, so reruns against a kept broker never collide. */
export function uniqueName(prefix: string): string {
  return `gw-test-${prefix}-${process.pid}-${Date.now().toString(36)}-${++counter}`;
}

/** Settings that make groups join and rebalance in about a second (defaults are production-sized). */
/** Topics of one detector test, each its own (a shared one would hold earlier runs' records on the same broker). */
export function uniqueTopics(): {
  events: string;
  deadLetters: string;
  alerts: string;
  tickets: string;
  revocations: string;
  people: string;
} {
  return {
    events: uniqueName('events'),
    deadLetters: uniqueName('dlq'),
    alerts: uniqueName('alerts'),
    tickets: uniqueName('tickets'),
    revocations: uniqueName('revocations'),
    people: uniqueName('people'),
  };
}

export function kafkaTestOptions(overrides: Partial<KafkaBusOptions> = {}): KafkaBusOptions {
  return {
    brokers: kafkaBrokers(),
    clientId: 'glasswatch-test',
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 300,
    maxWaitTimeMs: 100,
    handlerRetryDelayMs: 20,
    retries: 3,
    logger: createLogger({ level: 'error', bindings: { component: 'bus-test' } }),
    ...overrides,
  };
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Fails fast, with what to do, when the broker is not there: a run with KAFKA_BROKERS=127.0.0.1:1
 * (the "no Kafka" convention) must not hang in kafkajs' retries.
 */
export async function assertKafkaReachable(): Promise<void> {
  const brokers = kafkaBrokers();
  const admin = new Kafka({
    clientId: 'glasswatch-probe',
    brokers,
    connectionTimeout: 2000,
    retry: { retries: 1 },
    logLevel: logLevel.NOTHING,
  }).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
  } catch (err) {
    throw new Error(
      `Kafka is not reachable at ${brokers.join(',')} (KAFKA_BROKERS): ${(err as Error).message}. ` +
        'Unset KAFKA_BROKERS to let test/setup/global.ts start a local broker, or run test/kafka/broker.sh start.',
    );
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Each partition's end offset ("partition:high"), for failure messages that say where messages are. */
export async function topicEnds(topic: string): Promise<string> {
  return withAdmin('glasswatch-probe', async (admin) =>
    (await admin.fetchTopicOffsets(topic)).map((o) => `${o.partition}:${o.high}`).join(' '),
  ).catch((err: Error) => `unknown (${err.message})`);
}

/** Deletes test topics (best effort: a kept dev broker should not fill up across runs). */
export async function deleteTopics(topics: string[]): Promise<void> {
  if (topics.length === 0) return;
  await withAdmin('glasswatch-cleanup', async (admin) => {
    const existing = new Set(await admin.listTopics());
    const doomed = topics.filter((t) => existing.has(t));
    if (doomed.length > 0) await admin.deleteTopics({ topics: doomed, timeout: 10_000 });
  }).catch(() => {
    // cleanup only
  });
}

async function withAdmin<T>(clientId: string, work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Kafka({ clientId, brokers: kafkaBrokers(), retry: { retries: 1 }, logLevel: logLevel.NOTHING }).admin();
  try {
    await admin.connect();
    return await work(admin);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
