/**
 * "Was this you?" (detectors/confirm) against the detector's throughput, in process.
 *
 *   node --import tsx test/perf/bench-confirm.ts [off|on|both]
 *
 * Setup as bench:detect (100 break-glass IAM users, revocation through the signed webhook to a
 * local HTTP server, the bundled review rules), plus the chDB store the gate needs. Traffic: 20,000
 * CloudTrail events, 5% by break-glass identities, each opening a new unauthorized session (1,000
 * verdicts). `off`: no identity has `confirm:` (the path every other identity takes); `on`: every
 * identity asks its owner through the signed webhook first (a question per verdict). Runs
 * alternate; figures are medians of wall and CPU time per event, and the time from the verdict
 * (the unauthorized alert) to the question received by the owner's webhook.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import { migrate, openStore } from '../../core/store/index.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { buildDetector } from '../../detectors/build.js';
import { normalizeDocument } from '../../ingest/index.js';
import { benchSize, figure } from './figures.js';

const IDENTITIES = 100;
const EVENTS = Number(process.env.BENCH_CONFIRM_EVENTS ?? benchSize({ full: 20_000, smoke: 2_000 }));
const RUNS = Number(process.env.BENCH_CONFIRM_RUNS ?? benchSize({ full: 3, smoke: 1 }));

function event(i: number, breakGlass: boolean): AuditEvent {
  const t = new Date(Date.now() - 60_000 + i).toISOString();
  const user = breakGlass ? `bg-user-${i % IDENTITIES}` : `app-${i % 500}`;
  const r = normalizeDocument(
    {
      eventVersion: '1.09',
      eventID: `ev-${i}-${Math.random().toString(36).slice(2)}`,
      eventTime: t,
      eventSource: 'iam.amazonaws.com',
      eventName: 'ListUsers',
      awsRegion: 'us-east-1',
      // A new address per break-glass event: each one opens its own session.
      sourceIPAddress: breakGlass ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` : '10.0.0.1',
      userAgent: 'aws-cli/2',
      userIdentity: {
        type: 'IAMUser',
        principalId: `AIDA${user}`,
        arn: `arn:aws:iam::111122223333:user/${user}`,
        accountId: '111122223333',
        userName: user,
        accessKeyId: `AKIA${i}`,
      },
      recipientAccountId: '111122223333',
    },
    { file: 'bench', line: null, index: null },
  )[0];
  if (r?.kind !== 'event') throw new Error('fixture did not normalize');
  return r.event;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? Number.NaN;
};

async function main() {
  const mode = process.argv[2] ?? 'both';
  const questionsAt = new Map<string, number>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c;
    });
    req.on('end', () => {
      const b = JSON.parse(body) as { type?: string; sessionId: string };
      if (b.type === 'glasswatch.confirmation') questionsAt.set(b.sessionId, performance.now());
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const results: Record<'off' | 'on', { wallUs: number[]; cpuUs: number[]; askMs: number[] }> = {
    off: { wallUs: [], cpuUs: [], askMs: [] },
    on: { wallUs: [], cpuUs: [], askMs: [] },
  };
  const modes = mode === 'both' ? (['off', 'on'] as const) : ([mode] as Array<'off' | 'on'>);
  for (let run = 0; run < RUNS; run++) {
    for (const m of modes) {
      const dir = mkdtempSync(join(tmpdir(), 'gw-bench-confirm-'));
      const store = openStore({ kind: 'chdb', path: join(dir, 'store') });
      await migrate(store);
      const identities = Array.from({ length: IDENTITIES }, (_, i) => ({
        id: `bg-${i}`,
        source: 'cloudtrail',
        match: { 'userIdentity.userName': `bg-user-${i}` },
        revocation: { mode: 'auto', targets: ['webhook'] },
        ...(m === 'on' ? { confirm: { via: 'webhook', owner: `owner-${i}`, timeoutSeconds: 3600 } } : {}),
      }));
      const config = parseConfig(
        {
          identities,
          revocation: {
            webhook: { url, secret: 'bench-revoke-secret' },
            ...(m === 'on'
              ? {
                  confirm: {
                    secret: 'bench-confirm-secret-0123456789abcdef',
                    consoleUrl: 'http://127.0.0.1:8480',
                    webhook: { url, secret: 's' },
                  },
                }
              : {}),
          },
        },
        'bench',
      );
      const verdictAt = new Map<string, number>();
      const build = await buildDetector({
        config,
        store,
        log: silentLogger,
        clock: 'live',
        deliver: false,
        onAlert: (a: Alert) => {
          if (a.type === 'breakglass.unauthorized' && a.sessionId) verdictAt.set(a.sessionId, performance.now());
        },
      });
      const events = Array.from({ length: EVENTS }, (_, i) => event(i, i % 20 === 0));
      questionsAt.clear();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < events.length; i += 100) await build.detector.handle(events.slice(i, i + 100));
      await build.detector.flush();
      const wall = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      results[m].wallUs.push((wall * 1000) / EVENTS);
      results[m].cpuUs.push((cpu.user + cpu.system) / EVENTS);
      if (m === 'on') {
        const until = performance.now() + 30_000;
        while (questionsAt.size < verdictAt.size && performance.now() < until) await new Promise((r) => setTimeout(r, 50));
        for (const [s, at] of questionsAt) {
          const v = verdictAt.get(s);
          if (v !== undefined) results.on.askMs.push(at - v);
        }
      }
      await build.detector.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
      console.log(
        `run ${run + 1} confirm ${m}: ${EVENTS} events (${verdictAt.size} verdicts) in ${wall.toFixed(0)} ms, ${(EVENTS / (wall / 1000)).toFixed(0)} events/s, CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms`,
      );
    }
  }
  for (const m of modes) {
    const r = results[m];
    console.log(
      `confirm ${m}: median ${median(r.wallUs).toFixed(1)} µs/event wall (${(1e6 / median(r.wallUs)).toFixed(0)} events/s), ${median(r.cpuUs).toFixed(1)} µs/event CPU`,
    );
    figure(`detector with confirm ${m}`, 1e6 / median(r.wallUs), 'events/s', { events: EVENTS, runs: RUNS, statistic: 'median' });
    figure(`detector CPU per event with confirm ${m}`, median(r.cpuUs), 'µs', { events: EVENTS, runs: RUNS, statistic: 'median' });
  }
  if (results.on.askMs.length) {
    console.log(
      `verdict -> question received: p50 ${pct(results.on.askMs, 50).toFixed(1)} ms, p99 ${pct(results.on.askMs, 99).toFixed(1)} ms (${results.on.askMs.length} questions)`,
    );
    figure('verdict to question received p50', pct(results.on.askMs, 50), 'ms', { questions: results.on.askMs.length });
    figure('verdict to question received p99', pct(results.on.askMs, 99), 'ms', { questions: results.on.askMs.length });
  }
  server.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
