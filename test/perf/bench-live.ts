/**
 * The live pipeline end to end on the real broker (`npm run bench:live`): `glasswatch start` as an
 * operator runs it (Kubernetes audit webhook → glasswatch.events → store sink into chDB + detector),
 * driven over HTTP by this process. Reports:
 * - time from process start to the webhook accepting (crash recovery of ingest);
 * - sustained events/s from intake to stored rows and to verdicts (every event judged), measured
 *   from the first POST until the status line counts every event, with 1..N detector processes
 *   (`BENCH_DETECTORS=1,2,3`: the extra ones are `glasswatch detect` members of the same group);
 * - p50/p99 from intake to the alert at half of the saturated rate.
 * `BENCH_BUS=memory` runs the same `start` on the in-process bus (no broker).
 * `BENCH_PROFILE=DIR` runs the pipeline under `node --cpu-prof --cpu-prof-dir DIR`.
 * Needs KAFKA_BROKERS (default 127.0.0.1:9092).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { stringify } from 'yaml';
import { ROLE_GROUPS } from '../../cli/roles.js';
import { auditListBody } from '../support/k8s-events.js';
import { benchSize, figure } from './figures.js';

const root = new URL('../../', import.meta.url).pathname;
const brokers = (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(',');
const TOTAL = Number(process.env.BENCH_EVENTS ?? benchSize({ full: 200_000, smoke: 20_000 }));
const PER_REQUEST = 1000;
const CONCURRENCY = 4;
// BENCH_BUS=memory: the same `start` on the in-process bus (no broker, no kafkajs), one detector.
const MEMORY = process.env.BENCH_BUS === 'memory';
const DETECTORS = (process.env.BENCH_DETECTORS ?? '1')
  .split(',')
  .map(Number)
  .filter((n) => n >= 1);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** CPU seconds (user + system, every thread: chDB's too) a process has used, from /proc (Linux). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** The same for one thread of a process (its main JS thread: the task whose id is the pid). */
function threadCpuSeconds(pid: number | undefined, tid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds per thread name (chDB's pools, libuv workers, V8's GC helpers) of a process. */
function threadGroups(pid: number | undefined): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8')
        .trim()
        .replace(/[0-9]+$/, '');
      const cpu = threadCpuSeconds(pid, Number(tid));
      if (Number.isFinite(cpu)) out.set(name, (out.get(name) ?? 0) + cpu);
    }
  } catch {
    // Not Linux, or the process is gone: no breakdown.
  }
  return out;
}

/** The local test broker's pid (test/kafka/broker.sh keeps it), when it runs on this machine. */
function brokerPid(): number | undefined {
  try {
    const pid = Number(readFileSync(join(root, 'test/kafka/.kafka/kafka.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Where the CPU goes: the pipeline's main JS thread, its other threads (chDB, libuv, GC), the broker, this driver. */
function cpuShares(pid: number | undefined): { main: number; other: number; broker: number; driver: number } {
  const driver = process.cpuUsage();
  const total = cpuSeconds(pid);
  const main = threadCpuSeconds(pid, pid);
  return { main, other: total - main, broker: cpuSeconds(brokerPid()), driver: (driver.user + driver.system) / 1e6 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Proc {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

function cli(args: string[], profileDir: string | null): Proc {
  const node = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const child = spawn(process.execPath, [...node, '--import', 'tsx', join(root, 'test/support/run-cli.ts'), ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GLASSWATCH_LOG_LEVEL: 'warn' },
  });
  let text = '';
  const append = (c: Buffer) => {
    text += c.toString();
    if (text.length > 4_000_000) text = text.slice(-1_000_000);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  return { child, out: () => text, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

async function post(port: number, body: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/audit`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', authorization: 'Bearer bench-token' },
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Sends until accepted: 429/503 are the receiver's back-pressure, which a real apiserver retries. */
async function send(port: number, body: string): Promise<void> {
  for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
    const status = await post(port, body);
    if (status === 200) return;
    if (status !== 429 && status !== 503 && status !== 0) throw new Error(`webhook answered ${status}`);
    await sleep(delay);
  }
}

function counts(text: string): { stored: number; judged: number } {
  const lines = text.match(/status: stored \d+ events, \d+ dead letters; detector \d+ events/g);
  const last = lines?.[lines.length - 1];
  if (!last) return { stored: 0, judged: 0 };
  const [, stored, judged] = /stored (\d+) events, \d+ dead letters; detector (\d+) events/.exec(last)!;
  return { stored: Number(stored), judged: Number(judged) };
}

async function deleteTopics(topics: string[]): Promise<void> {
  const admin = new Kafka({ clientId: 'bench-live-admin', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics });
  } catch {
    // Left for the broker's retention: a bench topic is harmless.
  } finally {
    await admin.disconnect();
  }
}

async function runOnce(detectors: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-live-'));
  const run = `bl${Date.now().toString(36)}`;
  const topics = { events: `${run}-events`, deadLetters: `${run}-dlq`, alerts: `${run}-alerts`, tickets: `${run}-tickets` };
  const port = await freePort();
  const alerts = join(dir, 'alerts.jsonl');
  const config = (store: string) => ({
    store: { path: store },
    bus: MEMORY ? { kind: 'memory' } : { kind: 'kafka', brokers, clientId: 'glasswatch-bench' },
    topics,
    collectors: {
      checkpointDir: join(dir, 'checkpoints'),
      k8s: { cluster: 'bench', receiver: { host: '127.0.0.1', port, path: '/audit', token: 'bench-token', insecureHttp: true } },
    },
    identities: [
      { id: 'k8s-breakglass', source: 'k8s', match: [{ 'user.username|startswith': 'breakglass-admin' }], revocation: { mode: 'manual' } },
    ],
    tickets: { secret: 'bench-live-tickets-secret' },
    alerts: { jsonl: alerts },
  });
  const startConfig = join(dir, 'start.yml');
  writeFileSync(startConfig, stringify(config(join(dir, 'store'))));
  const profile = process.env.BENCH_PROFILE ?? null;
  const began = performance.now();
  const start = cli(['start', '--config', startConfig, '--status-seconds', '0.25', '--instance', `${run}-start`], profile);
  const procs = [start];
  try {
    const probe = auditListBody(`${run}-probe`, 0, 1);
    while ((await post(port, probe)) !== 200) {
      if (performance.now() - began > 120_000) throw new Error(`webhook never accepted:\n${start.out()}`);
      await sleep(20);
    }
    const acceptingMs = performance.now() - began;
    for (let d = 1; d < detectors; d++) {
      const c = join(dir, `detect-${d}.yml`);
      writeFileSync(c, stringify({ ...config(join(dir, `detect-store-${d}`)), collectors: undefined }));
      procs.push(cli(['detect', '--config', c, '--instance', `${run}-detect-${d}`], profile));
    }
    // Let the group settle (members join) before the clock starts: the figure is the sustained rate.
    while (counts(start.out()).judged < 1) await sleep(50);
    if (detectors > 1) await sleep(8000);
    const latencyOnly = Number(process.env.BENCH_LATENCY_RATE ?? 0);
    if (latencyOnly > 0) {
      // Latency at a chosen rate on an idle pipeline (no saturation run first): BENCH_LATENCY_RATE=events/s.
      await latency(port, run, start, ((TOTAL / latencyOnly) * 1000) / 2, alerts);
      return;
    }

    const bodies: string[] = [];
    for (let i = 0; i < TOTAL; i += PER_REQUEST) bodies.push(auditListBody(run, i, Math.min(PER_REQUEST, TOTAL - i), 997));
    const expected = TOTAL + 1;
    const cpu0 = cpuSeconds(start.child.pid);
    const shares0 = cpuShares(start.child.pid);
    const threads0 = threadGroups(start.child.pid);
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < bodies.length) await send(port, bodies[next++]!);
      }),
    );
    const intakeMs = performance.now() - t0;
    let storedAt = 0;
    let judgedAt = 0;
    let publishedAt = 0;
    const deadline = performance.now() + 600_000;
    const admin = MEMORY ? null : new Kafka({ clientId: 'bench-live-watch', brokers, logLevel: logLevel.NOTHING }).admin();
    await admin?.connect();
    let polled = 0;
    // With several detector processes the verdicts are theirs: judged is when the detector group's
    // committed offsets cover every event (a batch is committed only once judged and written).
    const detectGroup = `${ROLE_GROUPS.detect}.${topics.events}`;
    while (storedAt === 0 || judgedAt === 0) {
      if (detectors > 1 && !judgedAt && polled % 4 === 1) {
        const committed = await admin!.fetchOffsets({ groupId: detectGroup, topics: [topics.events] });
        const sum = committed.flatMap((t) => t.partitions).reduce((n, o) => n + Math.max(0, Number(o.offset)), 0);
        if (sum >= expected) judgedAt = performance.now();
      }
      // Intake → on the events topic: where the time goes between the receiver and the consumers.
      if (admin && !publishedAt && polled++ % 4 === 0) {
        const offsets = await admin.fetchTopicOffsets(topics.events);
        if (offsets.reduce((n, o) => n + Number(o.high), 0) >= expected) publishedAt = performance.now();
      }
      const c = counts(start.out());
      if (!storedAt && c.stored >= expected) storedAt = performance.now();
      if (!judgedAt && detectors === 1 && c.judged >= expected) judgedAt = performance.now();
      if (performance.now() > deadline) throw new Error(`stalled at ${JSON.stringify(c)} of ${expected}`);
      await sleep(50);
    }
    await admin?.disconnect();
    const cpu = cpuSeconds(start.child.pid) - cpu0;
    const shares1 = cpuShares(start.child.pid);
    const rate = (ms: number) => Math.round(TOTAL / (ms / 1000));
    const p = { detectors, events: TOTAL, perRequest: PER_REQUEST, ...(MEMORY ? { bus: 'memory' } : {}) };
    console.log(`live pipeline, ${detectors} detector process(es), ${TOTAL} events:`);
    console.log(`  webhook accepting ${Math.round(acceptingMs)} ms after the process start`);
    console.log(
      `  intake ${rate(intakeMs)} events/s; intake → on the events topic ${publishedAt ? rate(publishedAt - t0) : '?'} events/s; intake → stored ${rate(storedAt - t0)} events/s`,
    );
    if (publishedAt) figure('live.intake_to_published', rate(publishedAt - t0), 'events/s', p);
    // On a shared, loaded machine wall-clock rates vary with the neighbours; CPU per event does much less.
    if (Number.isFinite(cpu)) {
      console.log(
        `  pipeline process CPU ${cpu.toFixed(1)} s: ${Math.round(TOTAL / cpu)} events per CPU-second (all threads, intake + store + detect)`,
      );
      figure('live.events_per_cpu_second', Math.round(TOTAL / cpu), 'events/s', {
        detectors,
        events: TOTAL,
        ...(MEMORY ? { bus: 'memory' } : {}),
      });
      // Per event, by where it runs: what a 2-core machine can give at most is 2 CPU-seconds per second.
      const us = (k: keyof typeof shares1) => ((shares1[k] - shares0[k]) * 1e6) / TOTAL;
      const parts = (['main', 'other', 'broker', 'driver'] as const).filter((k) => Number.isFinite(us(k)));
      console.log(
        `  CPU per event: ${parts.map((k) => `${k === 'main' ? 'pipeline main thread' : k === 'other' ? 'pipeline other threads (chDB, libuv, GC)' : k === 'broker' ? 'Kafka broker' : 'bench driver (HTTP client)'} ${us(k).toFixed(0)} µs`).join(', ')}`,
      );
      for (const k of parts)
        figure(`live.cpu_per_event.${k}`, us(k), 'µs', { detectors, events: TOTAL, ...(MEMORY ? { bus: 'memory' } : {}) });
      const threads = [...threadGroups(start.child.pid)]
        .map(([name, cpu]) => [name, ((cpu - (threads0.get(name) ?? 0)) * 1e6) / TOTAL] as const)
        .filter(([, us]) => us >= 1)
        .sort((a, b) => b[1] - a[1]);
      console.log(`  pipeline threads, CPU per event: ${threads.map(([name, us]) => `${name} ${us.toFixed(0)} µs`).join(', ')}`);
    }
    figure('live.webhook_accepting_after_start', Math.round(acceptingMs), 'ms', p);
    figure('live.intake', rate(intakeMs), 'events/s', p);
    figure('live.intake_to_stored', rate(storedAt - t0), 'events/s', p);
    console.log(
      `  intake → judged (${detectors} detector process(es)) ${rate(judgedAt - t0)} events/s; both ${rate(Math.max(storedAt, judgedAt) - t0)} events/s`,
    );
    figure('live.intake_to_judged', rate(judgedAt - t0), 'events/s', p);
    figure('live.intake_to_stored_and_judged', rate(Math.max(storedAt, judgedAt) - t0), 'events/s', p);
    if (detectors === 1) await latency(port, run, start, Math.max(storedAt, judgedAt) - t0, alerts);
  } finally {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    if (!MEMORY) await deleteTopics(Object.values(topics));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Intake → alert at half the saturated rate: one break-glass event per request, its alert timed. */
async function latency(port: number, run: string, start: Proc, saturatedMs: number, alerts: string): Promise<void> {
  const saturated = TOTAL / (saturatedMs / 1000);
  const target = saturated / 2;
  const seconds = benchSize({ full: 10, smoke: 3 });
  const perRequest = 250;
  const intervalMs = (perRequest / target) * 1000;
  const sentAt = new Map<string, number>();
  const requests = Math.round((target * seconds) / perRequest);
  const seen = new Map<string, number>();
  // Where the time goes: intake → the detector's verdict (the alert's detectedAt, wall clock) and
  // verdict → written by the delivery worker.
  const sentWall = new Map<string, number>();
  const toVerdict: number[] = [];
  const toWritten: number[] = [];
  let sending = true;
  // Watched while the requests go out (an alert written during the sending was counted late before,
  // by up to the whole sending time).
  const deadline = performance.now() + seconds * 1000 + 120_000;
  const watch = (async () => {
    while ((sending || seen.size < sentAt.size) && performance.now() < deadline) {
      let text = '';
      try {
        text = readFileSync(alerts, 'utf8');
      } catch {}
      const now = performance.now();
      const wallNow = Date.now();
      for (const line of text.split('\n')) {
        const m = /"breakglass-admin-(\d+)"/.exec(line);
        if (!m) continue;
        const k = `breakglass-admin-${m[1]}`;
        const at = sentAt.get(k);
        if (at === undefined || seen.has(k)) continue;
        seen.set(k, now - at);
        const detected = Date.parse((JSON.parse(line) as { detectedAt?: string }).detectedAt ?? '');
        const wall = sentWall.get(k);
        if (Number.isFinite(detected) && wall !== undefined) {
          toVerdict.push(detected - wall);
          toWritten.push(wallNow - detected);
        }
      }
      await sleep(10);
    }
  })();
  const t0 = performance.now();
  for (let r = 0; r < requests; r++) {
    const due = t0 + r * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const from = 10_000_000 + r * perRequest;
    // The first event of each request is a fresh break-glass session: one unauthorized alert each.
    sentAt.set(`breakglass-admin-${from}`, performance.now());
    sentWall.set(`breakglass-admin-${from}`, Date.now());
    void send(port, auditListBody(`${run}-lat`, from, perRequest, perRequest));
  }
  sending = false;
  await watch;
  const ms = [...seen.values()].sort((a, b) => a - b);
  if (ms.length === 0) {
    console.log(`  intake → alert: no alerts seen (${start.out().slice(-500)})`);
    return;
  }
  const q = (f: number) => Math.round(ms[Math.min(ms.length - 1, Math.floor(f * ms.length))]!);
  console.log(
    `  intake → alert at ${Math.round(target)} events/s (half of saturation): p50 ${q(0.5)} ms, p99 ${q(0.99)} ms (${ms.length}/${sentAt.size} alerts, 10 ms poll)`,
  );
  const pct = (xs: number[], f: number) =>
    Math.round([...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(f * xs.length))] ?? NaN);
  console.log(
    `    of which intake → verdict (detectedAt) p50 ${pct(toVerdict, 0.5)} ms, p99 ${pct(toVerdict, 0.99)} ms; verdict → written by the delivery worker p50 ${pct(toWritten, 0.5)} ms, p99 ${pct(toWritten, 0.99)} ms`,
  );
  const p = { eventsPerSecond: Math.round(target), alerts: ms.length };
  figure('live.intake_to_alert_p50', q(0.5), 'ms', p);
  figure('live.intake_to_alert_p99', q(0.99), 'ms', p);
}

for (const d of DETECTORS) await runOnce(d);
