/**
 * KafkaBus throughput: publish then consume N keyed messages of S bytes through one broker.
 *
 *   node --import tsx test/perf/bench-bus.ts            # starts test/kafka/broker.sh, stops it at the end
 *   KAFKA_BROKERS=127.0.0.1:9092 node --import tsx test/perf/bench-bus.ts
 *   BENCH_MESSAGES=100000 BENCH_BYTES=1024 BENCH_PARTITIONS=6 BENCH_KEYS=1000   (the defaults)
 *
 * Method: one KafkaBus, default options (idempotent producer, acks=all, 900 kB requests); publish()
 * calls of 10,000 messages awaited in turn; then one subscription in a fresh group from the
 * beginning, a handler that only counts, offsets committed as in production. Consume time is given
 * with and without the group join. Client and broker share the machine's cores.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { OutgoingMessage } from '../../core/bus/types.js';

import { figure } from './figures.js';

const N = Number(process.env.BENCH_MESSAGES ?? 100_000);
const SIZE = Number(process.env.BENCH_BYTES ?? 1024);
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 6);
const KEYS = Number(process.env.BENCH_KEYS ?? 1000);
const BATCH = 10_000;
const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'kafka', 'broker.sh');

const rate = (count: number, ms: number) => `${Math.round((count / ms) * 1000).toLocaleString('en-US')} msg/s`;
const mbps = (count: number, ms: number) => `${((count * SIZE) / 1048576 / (ms / 1000)).toFixed(1)} MiB/s`;

function startBroker(): { brokers: string; stop: () => void } {
  const given = process.env.KAFKA_BROKERS;
  if (given) {
    console.log(`broker        given (KAFKA_BROKERS=${given}), start time not measured`);
    return { brokers: given, stop: () => {} };
  }
  if (spawnSync('bash', [script, 'status'], { encoding: 'utf8' }).status === 0) {
    console.log('broker        already running (test/kafka/broker.sh status), start time not measured');
    return { brokers: `127.0.0.1:${process.env.KAFKA_PORT ?? '9092'}`, stop: () => {} };
  }
  const t0 = performance.now();
  const started = spawnSync('bash', [script, 'start'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (started.status !== 0) throw new Error('test/kafka/broker.sh start failed (see above); set KAFKA_BROKERS to use a running broker');
  console.log(`broker start  ${((performance.now() - t0) / 1000).toFixed(1)} s (test/kafka/broker.sh start)`);
  return {
    brokers: `127.0.0.1:${process.env.KAFKA_PORT ?? '9092'}`,
    stop: () => void spawnSync('bash', [script, 'stop'], { stdio: 'inherit' }),
  };
}

async function main(): Promise<void> {
  const broker = startBroker();
  const bus = new KafkaBus({ brokers: broker.brokers.split(','), clientId: 'glasswatch-bench', numPartitions: PARTITIONS });
  const topic = `gw-bench-${process.pid}-${Date.now().toString(36)}`;
  try {
    const value = Buffer.alloc(SIZE, 'x');
    const messages: OutgoingMessage[] = Array.from({ length: N }, (_, i) => ({ key: `key-${i % KEYS}`, value }));
    console.log(`messages      ${N.toLocaleString('en-US')} x ${SIZE} B, ${KEYS} keys, ${PARTITIONS} partitions`);

    await bus.publish(topic, messages.slice(0, 1)); // topic creation and producer connect, not timed
    const p0 = performance.now();
    for (let i = 1; i < N; i += BATCH) await bus.publish(topic, messages.slice(i, Math.min(N, i + BATCH)));
    const produceMs = performance.now() - p0;
    console.log(
      `produce       ${rate(N - 1, produceMs)}  ${mbps(N - 1, produceMs)}  (${(produceMs / 1000).toFixed(2)} s, acks=all, idempotent)`,
    );

    figure('kafka produce', ((N - 1) / produceMs) * 1000, 'messages/s', { messages: N, bytes: SIZE, partitions: PARTITIONS });
    let count = 0;
    let firstAt = 0;
    let done: () => void = () => {};
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    const c0 = performance.now();
    const sub = await bus.subscribe({
      topics: [topic],
      groupId: `${topic}-group`,
      handler: async () => {
        if (count === 0) firstAt = performance.now();
        if (++count === N) done();
      },
    });
    await finished;
    const end = performance.now();
    await sub.stop();
    console.log(`consume       ${rate(N, end - c0)}  ${mbps(N, end - c0)}  (${((end - c0) / 1000).toFixed(2)} s incl. group join)`);
    figure('kafka consume', ((N - 1) / (end - firstAt)) * 1000, 'messages/s', { messages: N, bytes: SIZE, partitions: PARTITIONS });
    console.log(`consume       ${rate(N - 1, end - firstAt)}  ${mbps(N - 1, end - firstAt)}  (first to last message)`);
  } finally {
    await bus.close();
    const admin = new Kafka({ clientId: 'glasswatch-bench', brokers: broker.brokers.split(','), logLevel: logLevel.NOTHING }).admin();
    await admin
      .connect()
      .then(() => admin.deleteTopics({ topics: [topic] }))
      .catch(() => {})
      .finally(() => admin.disconnect());
    broker.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
