/**
 * CloudTrail S3 poller throughput: objects on a moto S3 server → download → gunzip + normalize →
 * publish to Kafka (acks=all) → checkpoint, as `glasswatch collect cloudtrail` runs it.
 *
 *   node --import tsx test/perf/bench-collectors-cloudtrail.ts      # starts test/kafka/broker.sh if none runs
 *   KAFKA_BROKERS=127.0.0.1:9092 node --import tsx test/perf/bench-collectors-cloudtrail.ts
 *   BENCH_OBJECTS=200 BENCH_RECORDS=500 BENCH_REGIONS=4 BENCH_PREFETCH=1,4   (the defaults)
 *
 * Method: the objects are uploaded first (not timed), spread over BENCH_REGIONS region prefixes
 * of one account. Each pass is one `S3Poller.pollOnce()` from an empty in-memory checkpoint over
 * all objects, so it lists, downloads and publishes everything; the pass ends when the last
 * object's records are acknowledged and its checkpoint saved. Passes: the in-process MemoryBus
 * (the collector's own ceiling: S3 + gunzip + normalize + JSON), then Kafka with each prefetch
 * depth. moto (Python), the broker (JVM) and this process share the machine's cores, so the
 * figures are a floor for a real deployment where S3 and Kafka run elsewhere.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { KafkaBus } from '../../core/bus/kafka.js';
import { MemoryBus } from '../../core/bus/memory.js';
import type { Bus } from '../../core/bus/types.js';
import { type S3Checkpoint, S3Poller } from '../../ingest/cloudtrail/s3.js';
import { MemoryCheckpointStore } from '../../ingest/collector/checkpoint.js';
import { EventPublisher } from '../../ingest/collector/publisher.js';
import { startMoto } from '../support/moto.js';
import { createBucket, logFileBytes, logFileKey, motoClients, putObject } from '../support/moto-cloudtrail.js';

import { figure } from './figures.js';

const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 200);
const RECORDS = Number(process.env.BENCH_RECORDS ?? 500);
const REGIONS = ['us-east-1', 'eu-west-1', 'eu-central-1', 'ap-south-1', 'us-west-2', 'sa-east-1'].slice(
  0,
  Number(process.env.BENCH_REGIONS ?? 4),
);
const PREFETCH = (process.env.BENCH_PREFETCH ?? '1,4').split(',').map(Number);
const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'kafka', 'broker.sh');

function startBroker(): { brokers: string; stop: () => void } {
  const given = process.env.KAFKA_BROKERS;
  if (given) return { brokers: given, stop: () => {} };
  if (spawnSync('bash', [script, 'status'], { encoding: 'utf8' }).status === 0)
    return { brokers: `127.0.0.1:${process.env.KAFKA_PORT ?? '9092'}`, stop: () => {} };
  const started = spawnSync('bash', [script, 'start'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (started.status !== 0) throw new Error('test/kafka/broker.sh start failed (see above); set KAFKA_BROKERS to use a running broker');
  return {
    brokers: `127.0.0.1:${process.env.KAFKA_PORT ?? '9092'}`,
    stop: () => void spawnSync('bash', [script, 'stop'], { stdio: 'inherit' }),
  };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const broker = startBroker();
  const moto = await startMoto();
  const { s3 } = motoClients(moto.endpoint);
  const kafka = new KafkaBus({ brokers: broker.brokers.split(','), clientId: 'glasswatch-bench', numPartitions: 6 });
  const topics: string[] = [];
  try {
    const bucket = 'bench-cloudtrail';
    await createBucket(s3, bucket);
    let gz = 0;
    const u0 = performance.now();
    for (let i = 0; i < OBJECTS; i++) {
      const region = REGIONS[i % REGIONS.length] ?? 'us-east-1';
      const spec = { account: '111122223333', region, time: new Date(Date.UTC(2025, 10, 20, 0, 0) + i * 60_000).toISOString() };
      const { bytes } = logFileBytes(`b${i}`, RECORDS, spec);
      gz += bytes.length;
      await putObject(s3, bucket, logFileKey(spec), bytes);
    }
    console.log(
      `objects       ${OBJECTS} x ${RECORDS} records = ${fmt(OBJECTS * RECORDS)} events, ${(gz / 1048576).toFixed(1)} MiB gzip, ${REGIONS.length} region prefixes`,
    );
    console.log(`upload        ${((performance.now() - u0) / 1000).toFixed(1)} s to moto (not part of the figures)`);

    const pass = async (label: string, bus: Bus, prefetch: number, topic: string) => {
      const publisher = new EventPublisher({
        bus,
        collector: 'cloudtrail',
        topics: { events: topic, deadLetters: `${topic}-dlq` },
        normalize: { source: 'cloudtrail' },
      });
      const poller = new S3Poller({
        s3,
        bucket,
        publisher,
        checkpoints: new MemoryCheckpointStore<S3Checkpoint>(),
        startDate: '2025-11-20',
        settleSeconds: 0,
        prefetch,
      });
      const t0 = performance.now();
      const summary = await poller.pollOnce();
      const s = (performance.now() - t0) / 1000;
      if (summary.events !== OBJECTS * RECORDS)
        throw new Error(`${label}: published ${summary.events} events, expected ${OBJECTS * RECORDS}`);
      console.log(
        `${label.padEnd(13)} ${fmt(summary.events / s).padStart(7)} events/s  ${fmt(summary.objects / s).padStart(4)} objects/s  (${s.toFixed(2)} s)`,
      );
      figure(`cloudtrail S3 poller, ${label}`, summary.events / s, 'events/s', { objects: OBJECTS, records: RECORDS, prefetch });
    };
    await pass('memory bus', new MemoryBus(), 4, 'bench-memory');
    // Topic creation and producer connect are not timed.
    const warm = `gw-bench-ct-warm-${process.pid}`;
    topics.push(warm);
    await kafka.publish(warm, [{ key: null, value: 'x' }]);
    for (const depth of PREFETCH) {
      const topic = `gw-bench-ct-${process.pid}-${Date.now().toString(36)}-p${depth}`;
      topics.push(topic);
      await kafka.publish(topic, [{ key: null, value: 'warm-up' }]);
      await pass(`kafka p=${depth}`, kafka, depth, topic);
    }
    console.log(`(client, moto and broker on the same ${cpus().length} cores)`);
  } finally {
    await kafka.close();
    const admin = new Kafka({ clientId: 'glasswatch-bench', brokers: broker.brokers.split(','), logLevel: logLevel.NOTHING }).admin();
    await admin
      .connect()
      .then(() => admin.deleteTopics({ topics }))
      .catch(() => {})
      .finally(() => admin.disconnect());
    s3.destroy();
    await moto.stop();
    broker.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
