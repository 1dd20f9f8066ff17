/**
 * Collector throughput into Kafka: Okta System Log poller and Kubernetes audit webhook receiver.
 *
 *   node --import tsx test/perf/bench-collectors-okta-k8s.ts       # starts test/kafka/broker.sh if none runs, stops it after
 *   KAFKA_BROKERS=127.0.0.1:9092 node --import tsx test/perf/bench-collectors-okta-k8s.ts
 *   BENCH_OKTA_EVENTS=50000 BENCH_K8S_LISTS=50 BENCH_K8S_CLIENTS=2   (the defaults)
 *
 * Method. Okta: the local System Log stand-in (ingest/okta/local-systemlog.ts) holds N synthetic
 * LogEvents; the poller runs from `since` with limit=1000 and no pause between full pages; the
 * clock stops when the last page is acknowledged by Kafka (acks=all) and checkpointed to a file.
 * K8s: the receiver over HTTPS with bearer auth; C clients POST an `EventList` of 1,000 events L
 * times in total; the clock stops when every event is acknowledged. Both include normalization,
 * JSON serialization and the idempotent producer; broker, server and client share this machine.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KafkaBus } from '../../core/bus/kafka.js';
import { Fields } from '../../core/config.js';
import { request } from '../../core/http.js';
import { createLogger } from '../../core/log.js';
import { FileCheckpointStore } from '../../ingest/collector/checkpoint.js';
import { parseK8sFields, runK8sCollector } from '../../ingest/k8s/collector.js';
import { type OktaCheckpoint, parseOktaFields, runOktaCollector } from '../../ingest/okta/collector.js';
import { LocalSystemLog, syntheticOktaEvent } from '../../ingest/okta/local-systemlog.js';
import { syntheticAuditEvent } from '../support/k8s-events.js';

import { figure } from './figures.js';

const OKTA_EVENTS = Number(process.env.BENCH_OKTA_EVENTS ?? 50_000);
const K8S_LISTS = Number(process.env.BENCH_K8S_LISTS ?? 50);
const K8S_CLIENTS = Number(process.env.BENCH_K8S_CLIENTS ?? 2);
const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'kafka', 'broker.sh');
const silent = createLogger({ level: 'silent' });
const common = (dir: string) => ({ checkpointDir: dir, alertsTopic: 'alerts', silenceSeconds: 3600, metrics: null });
const perSecond = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString('en-US')} events/s`;

function broker(): { brokers: string; stop: () => void } {
  if (process.env.KAFKA_BROKERS) return { brokers: process.env.KAFKA_BROKERS, stop: () => {} };
  if (spawnSync('bash', [script, 'status']).status === 0)
    return { brokers: `127.0.0.1:${process.env.KAFKA_PORT ?? '9092'}`, stop: () => {} };
  if (spawnSync('bash', [script, 'start'], { stdio: 'inherit' }).status !== 0) throw new Error('broker.sh start failed');
  return {
    brokers: `127.0.0.1:${process.env.KAFKA_PORT ?? '9092'}`,
    stop: () => spawnSync('bash', [script, 'stop'], { stdio: 'inherit' }),
  };
}

const auditEvent = (n: number) => syntheticAuditEvent(n, { users: 100, resource: 'pods' });

async function benchOkta(bus: KafkaBus, dir: string, suffix: string): Promise<void> {
  const api = await new LocalSystemLog({ authorization: 'SSWS bench', rateLimit: 1_000_000 }).start();
  const t0 = Date.parse('2025-06-01T00:00:00Z');
  for (let i = 0; i < OKTA_EVENTS; i += 10_000)
    api.add(Array.from({ length: Math.min(10_000, OKTA_EVENTS - i) }, (_, j) => syntheticOktaEvent(i + j, t0 + i + j, 500)));
  const cfg = parseOktaFields(
    Fields.of(null, 'collectors.okta', {
      orgUrl: api.url,
      token: 'bench',
      since: new Date(t0 - 1000).toISOString(),
      limit: 1000,
      pollIntervalSeconds: 60,
    }),
    common(dir),
  );
  let acked = 0;
  let finished: () => void = () => {};
  const allIn = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const started = performance.now();
  const run = await runOktaCollector(cfg, {
    bus,
    topics: { events: `bench-okta-events-${suffix}`, deadLetters: `bench-okta-dlq-${suffix}` },
    checkpoint: new FileCheckpointStore<OktaCheckpoint>(dir, 'okta-bench'),
    watchdog: null,
    logger: silent,
    onPage: (p) => {
      acked += p.events;
      if (acked >= OKTA_EVENTS) finished();
    },
  });
  await allIn;
  const ms = performance.now() - started;
  await run.stop();
  await api.close();
  figure('okta poller', (OKTA_EVENTS / ms) * 1000, 'events/s', { events: OKTA_EVENTS });
  console.log(
    `okta poller   ${OKTA_EVENTS.toLocaleString('en-US')} events, ${Math.ceil(OKTA_EVENTS / 1000)} pages in ${(ms / 1000).toFixed(2)} s = ${perSecond(OKTA_EVENTS, ms)}`,
  );
}

async function benchK8s(bus: KafkaBus, dir: string, suffix: string): Promise<void> {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.crt',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  );
  const cfg = parseK8sFields(
    Fields.of(null, 'collectors.k8s', {
      receiver: {
        port: 0,
        token: 'bench-token',
        queueEvents: 20_000,
        tls: { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key') },
      },
    }),
    common(dir),
  );
  const run = await runK8sCollector(cfg, {
    bus,
    topics: { events: `bench-k8s-events-${suffix}`, deadLetters: `bench-k8s-dlq-${suffix}` },
    watchdog: null,
    logger: silent,
  });
  const url = `${run.receiver!.url}/audit`;
  const ca = readFileSync(join(dir, 'server.crt'));
  // Distinct auditIDs per list (precomputed, off the clock): repeats would be dropped by the dedupe window.
  const list = (b: number) =>
    JSON.stringify({
      kind: 'EventList',
      apiVersion: 'audit.k8s.io/v1',
      metadata: {},
      items: Array.from({ length: 1000 }, (_, i) => auditEvent(b * 1000 + i)),
    });
  const bodies = Array.from({ length: K8S_LISTS + 1 }, (_, b) => list(b));
  // Warm-up: topic creation and producer connect are not part of the steady state.
  await request({ method: 'POST', url, ca, body: bodies[0]!, headers: { authorization: 'Bearer bench-token' } });
  await run.receiver!.drained();
  const base = run.metrics.snapshot('k8s').events;
  let next = 0;
  let refused = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: K8S_CLIENTS }, async () => {
      while (next < K8S_LISTS) {
        const n = next++;
        for (;;) {
          const res = await request({
            method: 'POST',
            url,
            ca,
            body: bodies[n + 1]!,
            headers: { authorization: 'Bearer bench-token' },
            timeoutMs: 60_000,
          });
          if (res.status === 200) break;
          refused++; // 429: the queue is full, back off as the apiserver would
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }),
  );
  const acceptedMs = performance.now() - started;
  await run.receiver!.drained();
  const ms = performance.now() - started;
  const total = run.metrics.snapshot('k8s').events - base;
  await run.stop();
  figure('k8s webhook', (total / ms) * 1000, 'events/s', { events: total, lists: K8S_LISTS, clients: K8S_CLIENTS });
  console.log(
    `k8s webhook   ${total.toLocaleString('en-US')} events (${K8S_LISTS} EventLists of 1,000, ${K8S_CLIENTS} clients, HTTPS + bearer) in ${(ms / 1000).toFixed(2)} s = ${perSecond(total, ms)}; accepted at ${perSecond(total, acceptedMs)}; ${refused} answered 429`,
  );
}

const b = broker();
const dir = mkdtempSync(join(tmpdir(), 'gw-bench-collectors-'));
const bus = new KafkaBus({ brokers: b.brokers.split(','), clientId: 'bench-collectors', numPartitions: 6, logger: silent });
const suffix = `${process.pid}-${Date.now().toString(36)}`;
try {
  console.log(
    `node ${process.version}, broker ${b.brokers}, ${(await import('node:os')).cpus().length} cores shared by broker, server and client`,
  );
  await benchOkta(bus, dir, suffix);
  await benchK8s(bus, dir, suffix);
} finally {
  await bus.close();
  rmSync(dir, { recursive: true, force: true });
  b.stop();
}
