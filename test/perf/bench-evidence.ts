/**
 * The cost of evidence (issue 11), on the embedded chDB store.
 *
 *   npm run bench:evidence            (BENCH_SIZE=smoke for the small size)
 *
 * 1. Audit-chain append: the detector over the bench-detect workload (100 break-glass identities,
 *    95% ordinary CloudTrail events, 5% break-glass, each opening a session and raising an alert),
 *    writing its sessions and alerts into chDB as live does (flush per fetched batch of 500), once
 *    without and once with the audit chain attached. Rounds pair the two runs (alternating which goes
 *    first) and figures are medians of the paired differences, since the machine is shared. Also the chain alone: chaining a batch of alert / session rows.
 * 2. `audit verify` over N chain records (full: 1,000,000 alert rows and their chain records).
 * 3. Report signing: Ed25519 signature and verification of a ~1 MB report body.
 * BENCH_EVIDENCE_ONLY=append runs part 1 alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import type { EvidenceHook } from '../../core/store/client.js';
import { insertRows, migrate, openStore } from '../../core/store/index.js';
import { buildDetector } from '../../detectors/build.js';
import { AuditChain } from '../../evidence/chain.js';
import { journalDirOf } from '../../evidence/journal.js';
import { loadEvidenceKeys, verifySignature } from '../../evidence/keys.js';
import { verifyAudit } from '../../evidence/verify.js';
import { normalizeDocument } from '../../ingest/index.js';
import { benchSize, figure } from './figures.js';

const IDENTITIES = 100;
const DETECT_EVENTS = benchSize({ full: 30_000, smoke: 5_000 });
const DETECT_ROUNDS = benchSize({ full: 7, smoke: 1 });
const VERIFY_RECORDS = benchSize({ full: 1_000_000, smoke: 20_000 });
const REPORT_BYTES = 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), 'gw-bench-evidence-'));
const store = openStore({ kind: 'chdb', path: join(dir, 'store') });
const journalDir = journalDirOf(store)!;

let seq = 0;
function makeEvent(breakGlass: boolean): AuditEvent {
  seq++;
  const user = breakGlass ? `bg-user-${seq % IDENTITIES}` : `dev-${seq % 500}`;
  const raw = {
    eventVersion: '1.09',
    eventID: `bench-${seq}`,
    eventTime: new Date(Date.parse('2026-11-20T00:00:00Z') + seq * 10).toISOString(),
    eventSource: 'ec2.amazonaws.com',
    eventName: seq % 3 === 0 ? 'DescribeInstances' : 'GetConsoleOutput',
    awsRegion: 'us-east-1',
    // a distinct IP and key per break-glass event: each is a new session and an alert
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
}

async function count(table: string): Promise<number> {
  const rows = await (await store.client.query({ query: `SELECT count() AS n FROM ${table}`, format: 'JSONEachRow' })).json<{
    n: string;
  }>();
  return Number(rows[0]?.n ?? 0);
}

/**
 * The chain as the store sees it, timing every call: the time the detector waits for the chain, per
 * writer kind: `flush` (the detector's StoreWriter: sessions and alerts, one append per flush) and
 * single-row inserts by table (revocations: one insert, so one append, per revocation).
 */
interface Usage {
  calls: number;
  rows: number;
  ms: number;
}

function timed(chain: AuditChain): { hook: EvidenceHook; usage: Map<string, Usage> } {
  const usage = new Map<string, Usage>();
  const time = async (kind: string, rows: number, work: Promise<void>) => {
    const t0 = performance.now();
    try {
      await work;
    } finally {
      const u = usage.get(kind) ?? { calls: 0, rows: 0, ms: 0 };
      usage.set(kind, { calls: u.calls + 1, rows: u.rows + rows, ms: u.ms + performance.now() - t0 });
    }
  };
  return {
    hook: {
      beforeInsert: (table, rows) => time(table, rows.length, chain.beforeInsert(table, rows)),
      beforeInsertTables: (batches) =>
        time(
          'flush',
          batches.reduce((n, b) => n + b.rows.length, 0),
          chain.beforeInsertTables(batches),
        ),
      prepareTables: async (batches) => {
        const t0 = performance.now();
        const prepared = await chain.prepareTables(batches);
        const rows = batches.reduce((n, b) => n + b.rows.length, 0);
        // Timed until the chain records are stored: the rows' own inserts run meanwhile.
        const appended = prepared.appended.finally(() => {
          const u = usage.get('flush') ?? { calls: 0, rows: 0, ms: 0 };
          usage.set('flush', { calls: u.calls + 1, rows: u.rows + rows, ms: u.ms + performance.now() - t0 });
        });
        appended.catch(() => {});
        return { appended };
      },
      close: () => chain.close(),
    },
    usage,
  };
}

async function detectorRun(chain: AuditChain | null): Promise<{
  seconds: number;
  cpuSeconds: number;
  flushSeconds: number;
  usage: Map<string, Usage>;
  chained: number;
  alerts: number;
  sessions: number;
}> {
  const identities = Array.from({ length: IDENTITIES }, (_, i) => ({
    id: `bg-${i}`,
    source: 'cloudtrail',
    match: { 'userIdentity.userName': `bg-user-${i}` },
  }));
  // Replay clock: a live build would restore the earlier runs' open sessions from the store.
  const build = await buildDetector({ config: parseConfig({ identities }, 'bench'), store, log: silentLogger, clock: 'replay' });
  const events = Array.from({ length: DETECT_EVENTS }, (_, i) => makeEvent(i % 20 === 0));
  const hook = chain ? timed(chain) : null;
  store.evidence = hook?.hook ?? null;
  const before = { head: chain?.head.seq ?? 0, alerts: await count('alerts'), sessions: await count('sessions') };
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  // The detector's wait for its writes (sessions, alerts, revocations and, with it, the chain): where the chain costs it.
  let flushMs = 0;
  for (let i = 0; i < events.length; i += 500) {
    await build.detector.handle(events.slice(i, i + 500));
    const f0 = performance.now();
    await build.detector.flush();
    flushMs += performance.now() - f0;
  }
  await build.detector.close();
  // The journal's last records reach audit_log inside this run's time, never in the next run's.
  await chain?.drain();
  const seconds = (performance.now() - t0) / 1000;
  // Every thread of the process (chDB's inserts and merges too): steadier than wall time on a shared machine.
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  store.evidence = null;
  return {
    seconds,
    cpuSeconds,
    flushSeconds: flushMs / 1000,
    usage: hook?.usage ?? new Map(),
    chained: (chain?.head.seq ?? 0) - before.head,
    alerts: (await count('alerts')) - before.alerts,
    sessions: (await count('sessions')) - before.sessions,
  };
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

function alertRow(i: number): Record<string, unknown> {
  return {
    alert_id: `bench-alert-${i}`,
    type: 'breakglass.unauthorized',
    severity: 'critical',
    identity: `bg-${i % IDENTITIES}`,
    source: 'cloudtrail',
    event_ids: [`bench-${i}`],
    ticket_id: '',
    reason: 'no_ticket',
    category: '',
    rule_id: '',
    rule_title: '',
    rule_author: '',
    session_id: `s-${i}`,
    principal: `arn:aws:iam::111122223333:user/bg-user-${i % IDENTITIES}`,
    source_ip: '10.0.0.1',
    time: new Date(Date.parse('2026-11-20T00:00:00Z') + i * 10).toISOString(),
    detected_at: new Date(Date.parse('2026-11-20T00:00:01Z') + i * 10).toISOString(),
    summary: `break-glass identity bg-${i % IDENTITIES} used without an approved ticket`,
  };
}

async function main(): Promise<void> {
  await migrate(store);
  const keys = await loadEvidenceKeys({ store });
  console.log(`evidence bench: chDB at a temp folder, node ${process.version}`);

  // 1. Append cost inside the detector.
  // As `glasswatch start` opens it on chDB: appends go to the journal beside the store (evidence/journal.ts).
  const chain = await AuditChain.open(store, { writer: 'bench-detect', keys, checkpointEvery: 1000, journal: { dir: journalDir } });
  await detectorRun(null); // warm-up: JIT, chDB parts, the rule pack
  // Rounds alternate which run goes first; each figure is the median over rounds of the paired
  // difference (with − without), so a slow minute of the shared machine hits both runs of a pair.
  const rounds: { plain: Awaited<ReturnType<typeof detectorRun>>; chained: Awaited<ReturnType<typeof detectorRun>> }[] = [];
  let last: Awaited<ReturnType<typeof detectorRun>> | null = null;
  const perRow = new Map<string, number>();
  for (let r = 0; r < DETECT_ROUNDS; r++) {
    const first = r % 2 === 0 ? null : chain;
    const a = await detectorRun(first);
    const b = await detectorRun(first ? null : chain);
    const [plain, chained] = first ? [b, a] : [a, b];
    rounds.push({ plain, chained });
    for (const [kind, u] of chained.usage) perRow.set(kind, Math.min(perRow.get(kind) ?? Number.POSITIVE_INFINITY, (u.ms * 1000) / u.rows));
    last = chained;
  }
  if (!last) throw new Error('no detector round ran');
  const rateWithout = DETECT_EVENTS / median(rounds.map((x) => x.plain.seconds));
  const rateWith = DETECT_EVENTS / median(rounds.map((x) => x.chained.seconds));
  const overheadPct = median(rounds.map((x) => ((x.chained.seconds - x.plain.seconds) / x.plain.seconds) * 100));
  const cpuOverheadPct = median(rounds.map((x) => ((x.chained.cpuSeconds - x.plain.cpuSeconds) / x.plain.cpuSeconds) * 100));
  const cpuWithout = median(rounds.map((x) => x.plain.cpuSeconds));
  const cpuWith = median(rounds.map((x) => x.chained.cpuSeconds));
  // The chain's cost to the detector per chained row: the extra time the detector waited in its flushes.
  const flushExtraUs = median(rounds.map((x) => ((x.chained.flushSeconds - x.plain.flushSeconds) * 1e6) / x.chained.chained));
  const p = {
    events: DETECT_EVENTS,
    breakGlassShare: 0.05,
    chainRecords: last.chained,
    alerts: last.alerts,
    sessionRows: last.sessions,
    rounds: DETECT_ROUNDS,
    statistic: 'median of paired rounds',
  };
  figure('detector with store, without audit chain', rateWithout, 'events/s', p);
  figure('detector with store, with audit chain', rateWith, 'events/s', p);
  figure('audit chain overhead on detector throughput (end to end)', overheadPct, '%', p);
  figure('detector CPU per event, without audit chain', (cpuWithout * 1e6) / DETECT_EVENTS, 'µs', p);
  figure('detector CPU per event, with audit chain', (cpuWith * 1e6) / DETECT_EVENTS, 'µs', p);
  figure('audit chain overhead on detector CPU (every thread)', cpuOverheadPct, '%', p);
  figure('audit chain: extra detector flush wait per chained row', flushExtraUs, 'µs', p);
  const rowsAt10k = (10_000 * last.chained) / DETECT_EVENTS;
  const flushSharePct = (rowsAt10k * flushExtraUs) / 1e4;
  figure('audit chain: extra flush wait at 10k events/s, share of each second', flushSharePct, '%', { ...p, rowsPerSecond: rowsAt10k });
  console.log(
    `  CPU (every thread, chDB included): ${((cpuWithout * 1e6) / DETECT_EVENTS).toFixed(0)} µs per event without the chain, ` +
      `${((cpuWith * 1e6) / DETECT_EVENTS).toFixed(0)} with (${cpuOverheadPct.toFixed(1)}%, median of paired rounds)`,
  );
  console.log(
    `detector + chDB store, ${DETECT_EVENTS} events (5% break-glass, each a new session, alerts and a revocation record): ${rateWithout.toFixed(0)} events/s ` +
      `without the chain, ${rateWith.toFixed(0)} with (${overheadPct.toFixed(1)}% end to end, median of ${DETECT_ROUNDS} paired rounds: ` +
      `${rounds.map((x) => (((x.chained.seconds - x.plain.seconds) / x.plain.seconds) * 100).toFixed(1)).join(', ')}); ${last.chained} chain records ` +
      `(${last.alerts} alerts, ${last.sessions} session rows)`,
  );
  console.log(
    `  the detector's flushes waited ${flushExtraUs.toFixed(1)} µs longer per chained row: at 10k events/s (${rowsAt10k.toFixed(0)} rows/s) ${flushSharePct.toFixed(1)}% of each second`,
  );
  // The append's own latency (normalize, hash, the audit_log insert), per row: it runs beside the
  // rows' inserts, so it is not added to the flush; the extra flush wait above is what the detector pays.
  for (const [kind, u] of last.usage) {
    const us = perRow.get(kind)!;
    const label =
      kind === 'flush'
        ? 'sessions, alerts and revocations (StoreWriter flush: one append per flush, beside the row inserts)'
        : `${kind} (one insert per row)`;
    figure(`audit chain append latency per row in the detector, ${label}`, us, 'µs', { rows: u.rows, calls: u.calls });
    console.log(
      `  chain append latency for ${label}: ${u.rows} rows in ${u.calls} appends, ${us.toFixed(0)} µs per row (beside the row inserts)`,
    );
  }

  // The chain alone, per row kind: normalize, hash, one audit_log insert per batch of 500.
  for (const [label, table, rowOf] of [
    ['alert', 'alerts', alertRow],
    [
      'session',
      'sessions',
      (i: number) => ({
        session_id: `bench-s-${i}`,
        version: 1,
        identity: 'bg-1',
        source: 'cloudtrail',
        principal: 'arn:aws:iam::111122223333:user/bg-user-1',
        verdict: 'unauthorized',
        reason: 'no_ticket',
        ticket_id: '',
        approvers: [],
        first_event_id: `bench-${i}`,
        unauthorized_event_id: `bench-${i}`,
        start: '2026-11-20T00:00:00.000Z',
        end: '2026-11-20T00:10:00.000Z',
        events: 3,
        activity_command: 1,
        activity_data: 1,
        activity_config: 1,
        source_ips: ['10.0.0.1'],
        account: '111122223333',
        org: '',
        cluster: '',
        detected_at: '2026-11-20T00:00:01.000Z',
        keys: ['AKIA1'],
      }),
    ],
  ] as const)
    for (const journal of [false, true]) {
      const micro = await AuditChain.open(store, {
        writer: `bench-${label}${journal ? '-journal' : ''}`,
        keys,
        checkpointEvery: 1000,
        journal: journal ? { dir: journalDir } : null,
      });
      const n = benchSize({ full: 50_000, smoke: 2_000 });
      const t0 = performance.now();
      for (let i = 0; i < n; i += 500)
        await micro.beforeInsert(
          table,
          Array.from({ length: 500 }, (_, j) => rowOf(i + j)),
        );
      await micro.drain(); // every record in audit_log, inside the time
      const us = ((performance.now() - t0) * 1000) / n;
      await micro.close();
      // Without a journal (a ClickHouse server store) every append is its own audit_log insert.
      const how = journal ? ', journal' : '';
      figure(`audit chain append per ${label} row (batches of 500${how})`, us, 'µs', { rows: n, journal });
      console.log(`audit chain alone: ${us.toFixed(1)} µs per ${label} row in batches of 500${how} (${n} rows)`);
    }

  // BENCH_EVIDENCE_ONLY=append stops here: the append figures alone, for comparing changes to the chain.
  if (process.env.BENCH_EVIDENCE_ONLY === 'append') return;

  // 2. audit verify over VERIFY_RECORDS chain records (a fresh store content: alerts only).
  await store.client.command({ query: 'TRUNCATE TABLE audit_log' });
  await store.client.command({ query: 'TRUNCATE TABLE audit_checkpoints' });
  for (const t of ['alerts', 'sessions', 'tickets', 'revocations', 'alert_deliveries', 'report_deliveries'])
    await store.client.command({ query: `TRUNCATE TABLE IF EXISTS ${t}` });
  const bulk = await AuditChain.open(store, { writer: 'bench-verify', keys, checkpointEvery: 10_000 });
  store.evidence = bulk;
  const tFill = performance.now();
  for (let i = 0; i < VERIFY_RECORDS; i += 10_000)
    await insertRows(
      store,
      'alerts',
      Array.from({ length: 10_000 }, (_, j) => alertRow(i + j)),
    );
  await bulk.checkpoint();
  store.evidence = null;
  const fillS = (performance.now() - tFill) / 1000;
  const tVerify = performance.now();
  const result = await verifyAudit(store);
  const verifyS = (performance.now() - tVerify) / 1000;
  if (!result.ok || result.records !== VERIFY_RECORDS)
    throw new Error(`verify did not pass: ${JSON.stringify(result.findings.slice(0, 3))}`);
  figure('audit verify', verifyS, 's', { records: VERIFY_RECORDS, rows: result.rowsChecked });
  figure('audit verify rate', VERIFY_RECORDS / verifyS, 'rows/s', { records: VERIFY_RECORDS });
  console.log(
    `audit verify: ${VERIFY_RECORDS.toLocaleString('en-US')} chain records and ${result.rowsChecked.toLocaleString('en-US')} alert rows in ${verifyS.toFixed(1)} s ` +
      `(${(VERIFY_RECORDS / verifyS).toFixed(0)} rows/s); chaining and storing them took ${fillS.toFixed(1)} s; heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`,
  );

  // 3. Report signing and verification over a ~1 MB body.
  const body = Buffer.from(JSON.stringify({ rows: Array.from({ length: 6000 }, (_, i) => alertRow(i)) }).slice(0, REPORT_BYTES));
  const signTimes: number[] = [];
  const verifyTimes: number[] = [];
  let signature = '';
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    signature = keys.sign(body);
    signTimes.push(performance.now() - t0);
    const t1 = performance.now();
    if (!verifySignature(keys.publicKeyPem, body, signature)) throw new Error('signature did not verify');
    verifyTimes.push(performance.now() - t1);
  }
  figure('report signing (Ed25519, 1 MB)', median(signTimes), 'ms', { bytes: body.length });
  figure('report signature verification (Ed25519, 1 MB)', median(verifyTimes), 'ms', { bytes: body.length });
  console.log(
    `report signature over ${(body.length / 2 ** 20).toFixed(2)} MiB: sign ${median(signTimes).toFixed(2)} ms, verify ${median(verifyTimes).toFixed(2)} ms (median of 30)`,
  );
}

try {
  await main();
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
