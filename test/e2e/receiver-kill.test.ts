// `glasswatch collect k8s` as its own process, faulted as an operator's bad day would fault it
// (issue 14): SIGKILL under load, and a broker that is unreachable for 30 s mid-load; then the
// receiver in this process while a broker of the test's own is stopped for 30 s and started again. Every request
// answered 200 must be in Kafka after the restart: accepted vs consumed, 0 lost; duplicates are
// counted (at least once allows them), and per-key order is checked across the outage.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { BusMessage } from '../../core/bus/types.js';
import type { AuditEvent } from '../../core/event.js';
import { request } from '../../core/http.js';
import { createLogger } from '../../core/log.js';
import { CollectorMetrics } from '../../ingest/collector/metrics.js';
import { EventPublisher } from '../../ingest/collector/publisher.js';
import { startK8sReceiver } from '../../ingest/k8s/receiver.js';
import { kafkaBrokers, kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';
import { syntheticAuditEvent } from '../support/k8s-events.js';
import { kafkaHarness } from '../support/kafka-harness.js';

const root = new URL('../../', import.meta.url).pathname;
const TOKEN = 'receiver-kill-token-0123456789';
const PER_REQUEST = 100;
const children: ChildProcess[] = [];
const dirs: string[] = [];
const { open, newTopics, consume, stops, cleanup } = kafkaHarness('rkill');
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function writeConfig(dir: string, name: string, brokers: string[], port: number, topics: { events: string; deadLetters: string }): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    stringify({
      bus: { kind: 'kafka', brokers },
      topics: { ...topics, alerts: `${topics.events}-alerts`, tickets: `${topics.events}-tickets` },
      collectors: {
        checkpointDir: join(dir, 'state'),
        alertsTopic: `${topics.events}-alerts`,
        k8s: { receiver: { host: '127.0.0.1', port, insecureHttp: true, token: TOKEN } },
      },
    }),
  );
  return file;
}

function collect(config: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/support/run-cli.ts'), 'collect', 'k8s', '--config', config], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', () => {});
  children.push(child);
  return child;
}

async function killHard(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

const eventList = (from: number) =>
  JSON.stringify({
    kind: 'EventList',
    apiVersion: 'audit.k8s.io/v1',
    items: Array.from({ length: PER_REQUEST }, (_, i) => syntheticAuditEvent(from + i)),
  });
const seqOf = (m: BusMessage) =>
  Number(((JSON.parse(m.value.toString()) as AuditEvent).raw.annotations as Record<string, string>)['glasswatch.test/seq']);

/** Posts EventLists from `workers` concurrent senders until `stop()`; records the first seq of every body answered 200, in answer order. */
function load(url: string, workers: number, pauseMs = 0) {
  let next = 0;
  let running = true;
  const accepted: number[] = [];
  const statuses = new Map<number, number>();
  const worker = async () => {
    while (running) {
      const from = next;
      next += PER_REQUEST;
      const res = await request({
        url,
        method: 'POST',
        body: eventList(from),
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        timeoutMs: 30_000,
      }).catch(() => null);
      const status = res?.status ?? 0;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status === 200) {
        accepted.push(from);
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
      } else await new Promise((r) => setTimeout(r, 50)); // down or busy: the apiserver would back off
    }
  };
  const done = Promise.all(Array.from({ length: workers }, worker));
  return {
    accepted,
    statuses,
    get events() {
      return accepted.length * PER_REQUEST;
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

function lostAndDuplicates(accepted: number[], got: BusMessage[]) {
  const seen = new Map<number, number>();
  for (const m of got) seen.set(seqOf(m), (seen.get(seqOf(m)) ?? 0) + 1);
  let lost = 0;
  for (const from of accepted) for (let i = 0; i < PER_REQUEST; i++) if (!seen.has(from + i)) lost++;
  const duplicates = got.length - seen.size;
  return { lost, duplicates, distinct: seen.size };
}

describe('glasswatch collect k8s: receivers acknowledge durability', () => {
  it('kill -9 under load: every body answered 200 is in Kafka after the restart', { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-rkill-'));
    dirs.push(dir);
    const topics = newTopics();
    const port = await freePort();
    const config = writeConfig(dir, 'glasswatch.yml', kafkaBrokers(), port, topics);
    const bus = open();
    const got = await consume(bus, topics.events);
    const url = `http://127.0.0.1:${port}/audit`;

    const first = collect(config);
    const traffic = load(url, 4);
    await waitFor(() => traffic.events >= 30_000, '30,000 events accepted before the kill', 120_000);
    await killHard(first);
    const acceptedAtKill = traffic.events;
    const second = collect(config);
    await waitFor(() => traffic.events >= acceptedAtKill + 5_000, 'the restarted receiver accepting again', 120_000);
    await traffic.stop();
    await waitFor(() => lostAndDuplicates(traffic.accepted, got).lost === 0, 'every accepted event in Kafka', 120_000);
    await new Promise((r) => setTimeout(r, 1500));
    const r = lostAndDuplicates(traffic.accepted, got);
    console.info(
      `receiver kill -9: ${traffic.events} events accepted (${acceptedAtKill} before the kill), ${r.distinct} distinct consumed, lost ${r.lost}, duplicates ${r.duplicates}; statuses ${JSON.stringify(Object.fromEntries(traffic.statuses))}`,
    );
    expect(r.lost).toBe(0);
    await killHard(second);
  });

  it('broker unreachable for 30 s mid-load: 200s continue from the spool, 0 lost once it is back, order per key kept', {
    timeout: 240_000,
  }, async () => {
    // The CLI process variant: the same spool run by a process whose broker address has nothing
    // listening (127.0.0.1:1), killed with a 30 s backlog, then by a process on the live broker. The
    // in-process stop/start of a real broker is the last test of this file.
    const dir = mkdtempSync(join(tmpdir(), 'gw-routage-'));
    dirs.push(dir);
    const topics = newTopics();
    const port = await freePort();
    const down = writeConfig(dir, 'down.yml', ['127.0.0.1:1'], port, topics);
    const live = writeConfig(dir, 'live.yml', kafkaBrokers(), port, topics);
    const bus = open();
    const got = await consume(bus, topics.events);
    const url = `http://127.0.0.1:${port}/audit`;

    const outage = collect(down);
    // One sender, so acceptance order is seq order and per-key order can be checked; ~2,500 events/s.
    const traffic = load(url, 1, 40);
    await waitFor(() => traffic.events > 0, 'the first body accepted', 60_000);
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 30_000));
    const duringOutage = traffic.events;
    const refusedDuringOutage = [...traffic.statuses].filter(([s]) => s !== 200 && s !== 0).reduce((n, [, c]) => n + c, 0);
    await killHard(outage);
    const outageSeconds = (Date.now() - started) / 1000;
    const back = collect(live);
    const backAt = Date.now();
    await waitFor(() => traffic.events >= duringOutage + 2_000, 'accepting on the live broker', 120_000);
    await traffic.stop();
    await waitFor(() => lostAndDuplicates(traffic.accepted, got).lost === 0, 'every accepted event in Kafka', 120_000);
    const drainedSeconds = (Date.now() - backAt) / 1000;
    await new Promise((r) => setTimeout(r, 1500));
    const r = lostAndDuplicates(traffic.accepted, got);
    // Per key (partition), first appearances in ascending seq: the spool drained in acceptance order.
    const byKey = new Map<string, number[]>();
    const first = new Set<number>();
    for (const m of got) {
      const seq = seqOf(m);
      if (first.has(seq)) continue;
      first.add(seq);
      byKey.set(String(m.key), [...(byKey.get(String(m.key)) ?? []), seq]);
    }
    let outOfOrder = 0;
    for (const list of byKey.values())
      for (let i = 1; i < list.length; i++) if ((list[i] as number) < (list[i - 1] as number)) outOfOrder++;
    console.info(
      `broker outage ${outageSeconds.toFixed(0)} s: ${duringOutage} events answered 200 from the spool while unreachable (${refusedDuringOutage} refused), ${traffic.events} accepted in all, all in Kafka ${drainedSeconds.toFixed(1)} s after the restart on the live broker, lost ${r.lost}, duplicates ${r.duplicates}, out of order per key ${outOfOrder}`,
    );
    expect(duringOutage).toBeGreaterThan(1_000);
    expect(refusedDuringOutage).toBe(0);
    expect(r.lost).toBe(0);
    expect(outOfOrder).toBe(0);
    await killHard(back);
  });
});

/**
 * A broker of this test's own (test/kafka/broker.sh with its own work folder and ports, the jars
 * shared with the main one), so it can be stopped: the shared broker at 9092 must stay up.
 */
function ownBroker(kafkaPort: number, controllerPort: number) {
  const work = mkdtempSync(join(tmpdir(), 'gw-broker-'));
  dirs.push(work);
  const version = process.env.KAFKA_VERSION ?? '4.4.0';
  const libs = join(root, 'test/kafka/.kafka', `libs-${version}`);
  if (existsSync(libs)) symlinkSync(libs, join(work, `libs-${version}`));
  else mkdirSync(work, { recursive: true }); // broker.sh fetches the jars (Maven) into the work folder
  const env = {
    ...process.env,
    KAFKA_WORK_DIR: work,
    KAFKA_PORT: String(kafkaPort),
    KAFKA_CONTROLLER_PORT: String(controllerPort),
    KAFKA_HEAP_OPTS: '-Xms256m -Xmx512m',
  };
  const run = (command: 'start' | 'stop') =>
    new Promise<void>((resolve, reject) =>
      execFile('bash', [join(root, 'test/kafka/broker.sh'), command], { env, timeout: 240_000 }, (err, _out, stderr) =>
        err ? reject(new Error(`broker.sh ${command}: ${stderr}`)) : resolve(),
      ),
    );
  return { address: `127.0.0.1:${kafkaPort}`, start: () => run('start'), stop: () => run('stop') };
}

describe('k8s webhook receiver while its broker is stopped and started again (one process, no restart)', () => {
  it('broker stopped 30 s mid-load: 200s continue from the spool, the drain resumes when it is back, 0 lost, order per key kept', {
    timeout: 420_000,
  }, async () => {
    const broker = ownBroker(await freePort(), await freePort());
    await broker.start();
    let brokerUp = true;
    stops.push(async () => {
      if (brokerUp) await broker.stop();
    });
    const silent = createLogger({ level: 'silent' });
    // The last warnings of the receiver and the bus, printed if the spool does not drain: a stall says why.
    const warnings: string[] = [];
    const recorder = createLogger({
      level: 'warn',
      write: (line) => {
        warnings.push(line);
        if (warnings.length > 40) warnings.shift();
      },
    });
    const bus = new KafkaBus(kafkaTestOptions({ brokers: [broker.address], logger: recorder }));
    stops.push(() => bus.close());
    const topics = { events: uniqueName('outage-events'), deadLetters: uniqueName('outage-dlq') };
    const dir = mkdtempSync(join(tmpdir(), 'gw-outage-'));
    dirs.push(dir);
    const metrics = new CollectorMetrics();
    const receiver = await startK8sReceiver(
      {
        host: '127.0.0.1',
        port: 0,
        path: '/audit',
        tls: null,
        token: TOKEN,
        maxBodyBytes: 16 * 1024 * 1024,
        maxDecompressedBytes: 64 * 1024 * 1024,
        queueEvents: 20_000,
        queueBytes: 64 * 1024 * 1024,
        limits: {
          headersTimeoutMs: 10_000,
          requestTimeoutMs: 60_000,
          keepAliveTimeoutMs: 5_000,
          bodyIdleTimeoutMs: 10_000,
          maxConnections: 64,
          maxConnectionsPerIp: 64,
        },
        spool: { dir: join(dir, 'spool'), maxBytes: 1024 * 1024 * 1024, segmentBytes: 8 * 1024 * 1024 },
      },
      {
        publisher: new EventPublisher({ bus, collector: 'k8s', topics, metrics, normalize: { source: 'k8s' }, retry: { retries: 1 } }),
        logger: recorder,
        metrics,
      },
    );
    stops.push(() => receiver.close());
    const traffic = load(`${receiver.url}/audit`, 1, 40);
    await waitFor(() => traffic.events >= 5_000, '5,000 events accepted with the broker up', 60_000);
    const beforeStop = traffic.events;
    await broker.stop();
    brokerUp = false;
    const stoppedAt = Date.now();
    await new Promise((r) => setTimeout(r, 30_000));
    const duringOutage = traffic.events - beforeStop;
    const spooledAtRestart = receiver.spool?.records ?? 0;
    await broker.start();
    brokerUp = true;
    const outageSeconds = (Date.now() - stoppedAt) / 1000;
    const backAt = Date.now();
    await waitFor(() => traffic.events >= beforeStop + duringOutage + 2_000, 'more accepted after the broker is back', 60_000);
    await traffic.stop();
    await Promise.race([receiver.drained(), new Promise((r) => setTimeout(r, 180_000))]);
    const drainedSeconds = (Date.now() - backAt) / 1000;
    expect(receiver.spool?.records, `the spool did not drain; last warnings:\n${warnings.join('\n')}`).toBe(0);

    const reader = new KafkaBus(kafkaTestOptions({ brokers: [broker.address], logger: silent }));
    stops.push(() => reader.close());
    const got: BusMessage[] = [];
    const sub = await reader.subscribe({
      topics: [topics.events],
      groupId: uniqueName('outage-reader'),
      fromBeginning: true,
      handler: async (m) => void got.push(m),
    });
    stops.push(() => sub.stop());
    await waitFor(() => lostAndDuplicates(traffic.accepted, got).lost === 0, 'every accepted event in Kafka', 120_000);
    await new Promise((r) => setTimeout(r, 1500));
    const r = lostAndDuplicates(traffic.accepted, got);
    const byKey = new Map<string, number[]>();
    const first = new Set<number>();
    for (const m of got) {
      const seq = seqOf(m);
      if (first.has(seq)) continue;
      first.add(seq);
      byKey.set(String(m.key), [...(byKey.get(String(m.key)) ?? []), seq]);
    }
    let outOfOrder = 0;
    for (const list of byKey.values())
      for (let i = 1; i < list.length; i++) if ((list[i] as number) < (list[i - 1] as number)) outOfOrder++;
    const refused = [...traffic.statuses].filter(([st]) => st !== 200).reduce((n, [, c]) => n + c, 0);
    console.info(
      `broker stopped ${outageSeconds.toFixed(0)} s (incl. its restart): ${duringOutage} events answered 200 from the spool while it was down (${spooledAtRestart} requests spooled), ${refused} refused; backlog drained ${drainedSeconds.toFixed(1)} s after it was back; ${traffic.events} accepted, lost ${r.lost}, duplicates ${r.duplicates}, out of order per key ${outOfOrder}`,
    );
    expect(duringOutage).toBeGreaterThan(1_000);
    expect(refused).toBe(0);
    expect(r.lost).toBe(0);
    expect(outOfOrder).toBe(0);
  });
});
