/**
 * The receivers' on-disk spool (ingest/collector/spool.ts): write throughput with an fsync per
 * request batch, drain throughput to the real broker, and the longest broker outage a default
 * spool (1 GiB) rides out at 2,500 events/s of ~1 KiB events.
 *
 *   npm run bench:spool                                      # broker at 127.0.0.1:9092
 *   KAFKA_BROKERS=host:port BENCH_SPOOL_EVENTS=200000 npm run bench:spool
 *
 * Method: a request is a Kubernetes EventList of 100 events of ~1 KiB (the apiserver sends up to
 * 400), spooled as one record exactly as the webhook receiver stores it. Writes: 1 sender (one
 * fsync per request) and 16 concurrent senders (group commit: requests that arrive together share
 * one write and fsync). Drain: the same records published by the receiver's path (decode,
 * normalize, EventPublisher, KafkaBus acks=all) to a fresh topic, in units of up to 64 requests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaBus } from '../../core/bus/kafka.js';
import { createLogger } from '../../core/log.js';
import { EventPublisher } from '../../ingest/collector/publisher.js';
import { DurableQueue } from '../../ingest/collector/queue.js';
import { DEFAULT_SPOOL_MAX_BYTES, Spool } from '../../ingest/collector/spool.js';
import { syntheticAuditEvent } from '../support/k8s-events.js';
import { figure } from './figures.js';

const EVENTS = Number(process.env.BENCH_SPOOL_EVENTS ?? 100_000);
const PER_REQUEST = 100;
const RATE = 2_500;
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const silent = createLogger({ level: 'silent' });

/** An audit event padded to ~1 KiB of JSON, as a real RequestResponse-level event is. */
function event(n: number): Record<string, unknown> {
  const e = syntheticAuditEvent(n);
  const pad = 1024 - JSON.stringify(e).length - 40;
  return { ...e, requestObject: { metadata: { name: `obj-${n}`, note: 'x'.repeat(Math.max(0, pad)) } } };
}

/** The spool record of one request, as ingest/k8s/receiver.ts encodes it. */
function record(from: number): Buffer {
  const body = Buffer.from(
    JSON.stringify({
      kind: 'EventList',
      apiVersion: 'audit.k8s.io/v1',
      items: Array.from({ length: PER_REQUEST }, (_, i) => event(from + i)),
    }),
  );
  const head = Buffer.from(JSON.stringify({ origin: `bench#${from}`, events: PER_REQUEST }));
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(head.length, 0);
  return Buffer.concat([len, head, body]);
}

const requests = Math.ceil(EVENTS / PER_REQUEST);
const records = Array.from({ length: requests }, (_, i) => record(i * PER_REQUEST));
const bytesPerEvent = records.reduce((n, r) => n + r.length + 8, 0) / (requests * PER_REQUEST);
const dirs: string[] = [];
const freshDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'gw-bench-spool-'));
  dirs.push(d);
  return join(d, 'spool');
};

async function writes(senders: number): Promise<{ ms: number; syncs: number; spool: Spool }> {
  const spool = await Spool.open({ dir: freshDir() });
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: senders }, async () => {
      while (next < records.length) await spool.append([records[next++] as Buffer]);
    }),
  );
  return { ms: performance.now() - t0, syncs: spool.syncs, spool };
}

function report(name: string, ms: number, syncs: number): void {
  const events = requests * PER_REQUEST;
  const mb = (bytesPerEvent * events) / 1048576;
  console.log(
    `spool write   ${name.padEnd(22)} ${events.toLocaleString('en-US')} events in ${(ms / 1000).toFixed(2)} s = ${Math.round((events / ms) * 1000).toLocaleString('en-US')} events/s, ${(mb / (ms / 1000)).toFixed(1)} MiB/s, ${syncs} fsyncs (${((ms * 1000) / syncs).toFixed(0)} µs each incl. write)`,
  );
  figure(`spool.write.${name.replace(/\W+/g, '_')}.events_per_s`, (events / ms) * 1000, 'events/s');
  figure(`spool.write.${name.replace(/\W+/g, '_')}.mib_per_s`, mb / (ms / 1000), 'MiB/s');
}

async function main(): Promise<void> {
  console.log(
    `spool bench   ${requests.toLocaleString('en-US')} requests of ${PER_REQUEST} events, ${bytesPerEvent.toFixed(0)} spool bytes per event, dir ${tmpdir()}`,
  );
  const one = await writes(1);
  report('1 sender', one.ms, one.syncs);
  await one.spool.close();
  const many = await writes(16);
  report('16 senders (group)', many.ms, many.syncs);

  // Drain the 16-sender spool to Kafka through the receiver's publish path.
  const bus = new KafkaBus({ brokers, clientId: 'glasswatch-bench-spool', logger: silent });
  const topic = `gw-bench-spool-${process.pid}-${Date.now().toString(36)}`;
  const publisher = new EventPublisher({
    bus,
    collector: 'k8s',
    topics: { events: topic, deadLetters: `${topic}-dlq` },
    normalize: { source: 'k8s' },
  });
  await bus.publish(topic, [{ key: 'warm-up', value: '{}' }]); // topic creation is not drain time
  const t0 = performance.now();
  const queue = new DurableQueue({
    spool: many.spool,
    handle: async (payloads) => {
      const results = payloads.flatMap((p) => {
        const n = p.readUInt32BE(0);
        return publisher.normalizeBuffer(p.subarray(4 + n), 'bench');
      });
      await publisher.publishUnit(results);
    },
    deadLetter: async () => {},
  });
  await queue.drained();
  const drainMs = performance.now() - t0;
  await queue.close();
  await bus.close();
  const drainRate = (requests * PER_REQUEST) / (drainMs / 1000);
  console.log(
    `spool drain   ${(requests * PER_REQUEST).toLocaleString('en-US')} events to Kafka in ${(drainMs / 1000).toFixed(2)} s = ${Math.round(drainRate).toLocaleString('en-US')} events/s (normalize + publish, acks=all)`,
  );
  figure('spool.drain.events_per_s', drainRate, 'events/s');

  // The longest outage: the default budget over the intake of 2,500 events/s, in spool bytes.
  const outageS = DEFAULT_SPOOL_MAX_BYTES / (RATE * bytesPerEvent);
  const catchUpS = drainRate > RATE ? (outageS * RATE) / (drainRate - RATE) : Number.POSITIVE_INFINITY;
  console.log(
    `spool outage  default ${DEFAULT_SPOOL_MAX_BYTES / 2 ** 30} GiB at ${RATE.toLocaleString('en-US')} events/s × ${bytesPerEvent.toFixed(0)} B = ${(outageS / 60).toFixed(1)} min of broker outage answered 200; then 503 (the apiserver retries a batch ~90 s more); backlog drained ${Number.isFinite(catchUpS) ? `${(catchUpS / 60).toFixed(1)} min` : 'never (drain slower than intake)'} after the broker is back, intake continuing`,
  );
  figure('spool.outage_at_2500_eps.seconds', outageS, 's');
  figure('spool.catch_up_after_max_outage.seconds', catchUpS, 's');
}

try {
  await main();
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
