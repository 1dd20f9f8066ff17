/**
 * Detector latency and throughput, in process (no Kafka: this measures glasswatch, not the broker).
 *
 *   node --import tsx test/perf/bench-detect.ts
 *
 * Setup: 100 break-glass identities (one IAM user each, matched by a Sigma selection),
 * 10,000 tickets (100 per identity, most of them for other days), the bundled review rule pack.
 * Traffic: 95% ordinary CloudTrail events, 5% by break-glass identities; every break-glass
 * event opens a new session, so each one raises `breakglass.unauthorized` and a revocation
 * through the signed webhook target to a local HTTP server.
 * Latency: from the moment an event is handed to the detector (arrival) to the alert being
 * emitted (the alert output's `send`) and to the revocation request being received by the server.
 * Paced runs at 1,000 and 10,000 events/s for 5 s each, then a saturation run.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KafkaBus } from '../../core/bus/kafka.js';
import { MemoryBus } from '../../core/bus/memory.js';
import type { Bus } from '../../core/bus/types.js';
import { parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { buildDetector } from '../../detectors/build.js';
import { settleAppends } from '../../detectors/stages/alert-stage.js';
import { normalizeDocument } from '../../ingest/index.js';

import { linking } from './bench-detect-people.js';
import { benchSize, figure } from './figures.js';

const IDENTITIES = 100;
// Seconds per paced run and events per saturation run; the smoke size only proves the bench runs.
const PACED_SECONDS = benchSize({ full: 5, smoke: 0.5 });
const SATURATION_EVENTS = benchSize({ full: 200_000, smoke: 2_000 });
const TICKETS_PER_IDENTITY = benchSize({ full: 100, smoke: 10 });

async function main() {
  const revocationsAt = new Map<string, number>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c;
    });
    req.on('end', () => {
      const { sessionId } = JSON.parse(body) as { sessionId: string };
      revocationsAt.set(sessionId, performance.now());
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/revoke`;

  const identities = Array.from({ length: IDENTITIES }, (_, i) => ({
    id: `bg-${i}`,
    source: 'cloudtrail',
    match: { 'userIdentity.userName': `bg-user-${i}` },
    revocation: { mode: 'auto', targets: ['webhook'] },
  }));
  const config = parseConfig({ identities, revocation: { webhook: { url: hookUrl, secret: 'bench' } } }, 'bench');
  const alertAt = new Map<string, number>();
  const build = await buildDetector({
    config,
    store: null,
    log: silentLogger,
    clock: 'live',
    keepSessions: true,
    onAlert: (a: Alert) => {
      if (a.type === 'breakglass.unauthorized' && a.sessionId) alertAt.set(a.sessionId, performance.now());
    },
  });
  const addTickets = (ledger: typeof build.ledger) => {
    for (let i = 0; i < IDENTITIES; i++) {
      for (let t = 0; t < TICKETS_PER_IDENTITY; t++) {
        const day = String(1 + (t % 28)).padStart(2, '0');
        ledger.add({
          id: `T-${i}-${t}`,
          identities: [`bg-${i}`],
          requester: 'alice@example.com',
          approvers: ['bob@example.com'],
          status: 'approved',
          notBefore: `2026-10-${day}T09:00:00.000Z`,
          notAfter: `2026-10-${day}T10:00:00.000Z`,
          updatedAt: '2026-09-30T00:00:00.000Z',
          notBeforeMs: Date.parse(`2026-10-${day}T09:00:00Z`),
          notAfterMs: Date.parse(`2026-10-${day}T10:00:00Z`),
          updatedAtMs: Date.parse('2026-09-30T00:00:00Z'),
        });
      }
    }
  };
  addTickets(build.ledger);
  const detector = build.detector;

  let seq = 0;
  const makeEvent = (breakGlass: boolean): AuditEvent => {
    seq++;
    const user = breakGlass ? `bg-user-${seq % IDENTITIES}` : `dev-${seq % 500}`;
    const raw = {
      eventVersion: '1.09',
      eventID: `bench-${seq}`,
      eventTime: new Date(Date.parse('2026-11-20T00:00:00Z') + seq * 10).toISOString(),
      eventSource: 'ec2.amazonaws.com',
      eventName: seq % 3 === 0 ? 'DescribeInstances' : 'GetConsoleOutput',
      awsRegion: 'us-east-1',
      // a distinct IP and key per break-glass event: each is a new session, each is alerted and revoked
      sourceIPAddress: breakGlass ? `10.${(seq >> 16) & 255}.${(seq >> 8) & 255}.${seq & 255}` : '198.51.100.7',
      userAgent: 'aws-cli/2',
      recipientAccountId: '111122223333',
      userIdentity: {
        type: 'IAMUser',
        userName: user,
        principalId: `AIDA${user}`,
        arn: `arn:aws:iam::111122223333:user/${user}`,
        accessKeyId: `AKIA${seq}`,
      },
    };
    const r = normalizeDocument(raw, { file: 'bench', line: null, index: null })[0];
    if (r?.kind !== 'event') throw new Error('bench event did not normalize');
    return r.event;
  };

  const pct = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : Number.NaN;
  };

  async function paced(rate: number, seconds: number) {
    alertAt.clear();
    revocationsAt.clear();
    const arrivals = new Map<string, number>();
    const total = rate * seconds;
    const events = Array.from({ length: total }, (_, i) => makeEvent(i % 20 === 0));
    const start = performance.now();
    let i = 0;
    while (i < total) {
      // Hand over what is due by now, in batches of up to 100 (a consumer's fetch).
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
      if (due <= i) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      const batch = events.slice(i, Math.min(due, i + 100));
      for (const e of batch) {
        const t = performance.now();
        arrivals.set(e.id, t);
        await detector.handle([e]);
      }
      i += batch.length;
    }
    const elapsed = (performance.now() - start) / 1000;
    await new Promise((r) => setTimeout(r, 200));
    const toAlert: number[] = [];
    const toRevoke: number[] = [];
    for (const s of detector.seen.values()) {
      const arrived = arrivals.get(s.firstEventId);
      if (arrived === undefined) continue;
      const a = alertAt.get(s.id);
      const r = revocationsAt.get(s.id);
      if (a !== undefined) toAlert.push(a - arrived);
      if (r !== undefined) toRevoke.push(r - arrived);
    }
    detector.seen.clear();
    const p = { offered: rate, seconds, sessions: toAlert.length };
    figure(`detect ${rate} events/s arrival→alert p99`, pct(toAlert, 99), 'ms', p);
    figure(`detect ${rate} events/s arrival→revocation request p99`, pct(toRevoke, 99), 'ms', p);
    console.log(
      `${String(rate).padStart(6)} events/s offered, ${(total / elapsed).toFixed(0).padStart(6)} achieved | ` +
        `arrival→alert p50 ${pct(toAlert, 50).toFixed(2)} ms p99 ${pct(toAlert, 99).toFixed(2)} ms | ` +
        `arrival→revocation request p50 ${pct(toRevoke, 50).toFixed(2)} ms p99 ${pct(toRevoke, 99).toFixed(2)} ms | ` +
        `${toAlert.length} unauthorized sessions`,
    );
  }

  console.log(
    `detector bench: ${IDENTITIES} identities, ${build.ledger.size} tickets, ${build.rulesLoaded} review rules, node ${process.version}`,
  );
  // BENCH_DETECT_ONLY=verification runs the revocation verification part alone.
  if (process.env.BENCH_DETECT_ONLY === 'verification') {
    await verification();
    await new Promise<void>((r) => server.close(() => r()));
    return;
  }
  // BENCH_DETECT_ONLY=linking runs one person across planes (detector.people) on vs off alone.
  if (process.env.BENCH_DETECT_ONLY === 'linking') {
    await linking(identities, hookUrl);
    await new Promise<void>((r) => server.close(() => r()));
    return;
  }
  await paced(1000, PACED_SECONDS);
  await paced(10_000, PACED_SECONDS);

  // Saturation: ordinary traffic only (the common case), then with 5% break-glass events.
  for (const share of [0, 0.05]) {
    const n = SATURATION_EVENTS;
    const events = Array.from({ length: n }, (_, i) => makeEvent(share > 0 && i % 20 === 0));
    const t0 = performance.now();
    for (let i = 0; i < n; i += 500) await detector.handle(events.slice(i, i + 500));
    const s = (performance.now() - t0) / 1000;
    detector.seen.clear();
    figure(`detect saturation, ${share * 100}% break-glass`, n / s, 'events/s', { events: n });
    console.log(`saturation (${share * 100}% break-glass, revocations included): ${(n / s).toFixed(0)} events/s over ${n} events`);
  }

  // The same 5% with the durable stages (detectors/stages): the detector appends each alert and
  // revocation order to its topic and waits only for the bus, never for the revocation target.
  // In-process bus always; the real broker when BENCH_KAFKA_BROKERS is set (e.g. 127.0.0.1:9092).
  const buses: [string, Bus][] = [['in-process bus', new MemoryBus()]];
  const brokers = process.env.BENCH_KAFKA_BROKERS;
  if (brokers) buses.push(['Kafka', new KafkaBus({ brokers: brokers.split(','), clientId: 'bench-detect', logger: silentLogger })]);
  for (const [label, bus] of buses) {
    const suffix = Date.now().toString(36);
    const staged = await buildDetector({
      config: parseConfig(
        {
          identities,
          revocation: { webhook: { url: hookUrl, secret: 'bench' } },
          topics: { alerts: `bench-alerts-${suffix}`, revocations: `bench-revocations-${suffix}` },
        },
        'bench',
      ),
      store: null,
      log: silentLogger,
      clock: 'live',
      stages: { bus },
    });
    addTickets(staged.ledger);
    const n = SATURATION_EVENTS;
    const events = Array.from({ length: n }, (_, i) => makeEvent(i % 20 === 0));
    const t0 = performance.now();
    // As the live service does per event: commit only once the appends are acknowledged.
    let settleMs = 0;
    for (let i = 0; i < n; i += 500) {
      await staged.detector.handle(events.slice(i, i + 500));
      const t1 = performance.now();
      await settleAppends(staged.detector);
      settleMs += performance.now() - t1;
    }
    const sec = (performance.now() - t0) / 1000;
    figure(`detect saturation, 5% break-glass, alerts and revocations appended (${label})`, n / sec, 'events/s', { events: n });
    console.log(
      `saturation (5% break-glass, alerts and revocation orders appended to ${label}): ${(n / sec).toFixed(0)} events/s over ${n} events (${(settleMs / 1000).toFixed(1)} s of ${sec.toFixed(1)} s waiting for the bus)`,
    );
    await bus.close();
  }

  await verification();
  await linking(identities, hookUrl);
  await new Promise<void>((r) => server.close(() => r()));

  /**
   * Revocation verification (issue 15): saturation throughput with `revocation.verify` on (every
   * event's handles looked up among the revoked sessions' watches; ~10,000 watches by the end of a
   * full run) against off, alternated so both share the machine's noise; then, per ineffective
   * revocation, the time from handing its first later successful event to its alert.
   */
  async function verification() {
    const runs = benchSize({ full: 7, smoke: 1 });
    const rates: Record<'on' | 'off' | 'both', number[]> = { on: [], off: [], both: [] };
    let watched = 0;
    // both: verification and linking (detector.people, each break-glass user a person) on this workload.
    const people = { windowMinutes: 60, map: identities.map((_, i) => ({ person: `owner-${i}@example.com`, aws: [`bg-user-${i}`] })) };
    const orders = [
      ['off', 'on', 'both'],
      ['both', 'off', 'on'],
      ['on', 'both', 'off'],
    ] as const;
    for (let k = 0; k < runs; k++)
      // The order rotates too: no mode always gets the colder or warmer process.
      for (const mode of orders[k % orders.length]!) {
        // As live: orders appended to the in-process bus, so the detector's own work is what is timed.
        const webhook = { url: hookUrl, secret: 'bench' };
        const bus = new MemoryBus();
        const suffix = `${mode}-${k}-${Date.now().toString(36)}`;
        const b = await buildDetector({
          config: parseConfig(
            {
              identities,
              revocation: mode === 'off' ? { webhook, verify: false } : { webhook },
              ...(mode === 'both' ? { detector: { people } } : {}),
              topics: { alerts: `bench-alerts-${suffix}`, revocations: `bench-revocations-${suffix}` },
            },
            'bench',
          ),
          store: null,
          log: silentLogger,
          clock: 'live',
          stages: { bus },
        });
        addTickets(b.ledger);
        const n = SATURATION_EVENTS;
        const events = Array.from({ length: n }, (_, i) => makeEvent(i % 20 === 0));
        // A full collection first (node --expose-gc): the last run's detector is not collected inside this one.
        (globalThis as { gc?: () => void }).gc?.();
        const t0 = performance.now();
        for (let i = 0; i < n; i += 500) {
          await b.detector.handle(events.slice(i, i + 500));
          await settleAppends(b.detector);
        }
        rates[mode].push(n / ((performance.now() - t0) / 1000));
        if (mode === 'on') watched = b.detector.verifier.watches.size;
        await bus.close();
      }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const on = median(rates.on);
    const off = median(rates.off);
    const both = median(rates.both);
    const bothPct = median(rates.both.map((r, k) => ((r - rates.off[k]!) / rates.off[k]!) * 100));
    figure('detect saturation, 5% break-glass, appended, revocation verification and linking on', both, 'events/s', { runs });
    figure('detect throughput change with verification and linking on (bench workload)', bothPct, '%', {
      runs,
      statistic: 'median of per-round ratios',
    });
    figure('detect saturation, 5% break-glass, appended, revocation verification off', off, 'events/s', { runs });
    figure('detect saturation, 5% break-glass, appended, revocation verification on', on, 'events/s', { runs, watches: watched });
    console.log(
      `saturation (5% break-glass, alerts and orders appended to the in-process bus) verification off ${off.toFixed(0)} events/s, on ${on.toFixed(0)} events/s (${(((on - off) / off) * 100).toFixed(1)}%, ${watched} watches at the end), verification and linking on ${both.toFixed(0)} events/s (${bothPct.toFixed(1)}%, median of the per-round ratios); median of ${runs}`,
    );

    // Ineffective revocations: the revoked key used again 31 s later (event time; webhook allowance 30 s).
    const alertAt = new Map<string, number>();
    const rb = await buildDetector({
      config: parseConfig({ identities, revocation: { webhook: { url: hookUrl, secret: 'bench' } } }, 'bench'),
      store: null,
      log: silentLogger,
      clock: 'replay',
      keepSessions: false,
      onAlert: (a) => {
        if (a.type === 'breakglass.revocation_ineffective') alertAt.set(a.eventIds[0]!, performance.now());
      },
    });
    const toAlert: number[] = [];
    const n = benchSize({ full: 500, smoke: 20 });
    for (let i = 0; i < n; i++) {
      const first = makeEvent(true);
      await rb.detector.handle([first]);
      const time = new Date(Date.parse(first.time) + 31_000).toISOString();
      const later: AuditEvent = {
        ...first,
        id: `${first.id}-later`,
        time,
        raw: { ...first.raw, eventID: `${first.id}-later`, eventTime: time },
      };
      const t = performance.now();
      await rb.detector.handle([later]);
      const a = alertAt.get(later.id);
      if (a === undefined) throw new Error(`no revocation_ineffective alert for ${later.id}`);
      toAlert.push(a - t);
    }
    figure('revocation ineffective: later event handed → alert p50', pct(toAlert, 50), 'ms', { revocations: n });
    figure('revocation ineffective: later event handed → alert p99', pct(toAlert, 99), 'ms', { revocations: n });
    console.log(
      `ineffective revocation, first later event handed → breakglass.revocation_ineffective: p50 ${pct(toAlert, 50).toFixed(3)} ms p99 ${pct(toAlert, 99).toFixed(3)} ms over ${n}`,
    );
  }
}

await main();
