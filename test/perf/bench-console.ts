/**
 * The console (`npm run bench:console`):
 * - p50/p99 from a break-glass event posted to the Kubernetes audit webhook of `glasswatch start`
 *   (embedded default: in-process bus, chDB) to its alert arriving on a connected SSE client, while
 *   background audit events stream in at 1k and 10k events/s (the background rate reached is printed);
 * - page load (server render + transfer of the whole HTML) of every view and the main API calls with
 *   10,000 sessions and 100,000 alerts in a chDB store (smoke: 1,000 and 10,000).
 * BENCH_SIZE=smoke runs it small.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashToken } from '../../console/config.js';
import { startConsole } from '../../console/index.js';
import { MemoryBus } from '../../core/bus/memory.js';
import { parseConfig } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import { connectStore, insertRows, migrate } from '../../core/store/index.js';
import { auditEvent, bearer, openStream, postAudit, removeDir, sleep, startPipeline, waitFor } from '../console/harness.js';
import { benchSize, figure } from './figures.js';

const PROBES = benchSize({ full: 100, smoke: 8 });
const PROBE_TIMEOUT_MS = benchSize({ full: 30_000, smoke: 10_000 });
// Smoke checks that the bench runs and prints figures: one background rate, which a loaded CI machine sustains.
const RATES = benchSize({ full: [1000, 10_000], smoke: [1000] });
const SESSIONS = benchSize({ full: 10_000, smoke: 1000 });
const ALERTS = benchSize({ full: 100_000, smoke: 10_000 });

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

async function latencyUnderLoad(): Promise<void> {
  const p = await startPipeline();
  try {
    const stream = await openStream(`${p.consoleUrl}/api/stream`, bearer);
    await waitFor('the stream', () => stream.events.some((e) => e.event === 'hello'));
    let probe = 0;
    for (const rate of RATES) {
      // Background: batches every 100 ms of ordinary (not break-glass) users, as an apiserver sends them.
      const perBatch = Math.max(1, Math.round(rate / 10));
      let sent = 0;
      let running = true;
      const background = (async () => {
        const start = performance.now();
        let n = 0;
        while (running) {
          const batch = Array.from({ length: perBatch }, (_, i) =>
            auditEvent(`bg-${rate}-${n}-${i}`, { user: `dev-${i % 200}@example.com`, resource: 'pods', verb: 'get' }),
          );
          // A closed keep-alive socket or back-pressure (429) is retried by an apiserver; here the batch is counted as not sent.
          const status = await postAudit(p.webhookUrl, batch).catch(() => 0);
          if (status === 200) sent += perBatch;
          n++;
          const due = start + n * 100 - performance.now();
          if (due > 0) await sleep(due);
        }
      })();
      await sleep(benchSize({ full: 3000, smoke: 1500 })); // let the background settle
      const sentAtStart = sent;
      const measureStart = performance.now();
      const latencies: number[] = [];
      const accepted: number[] = [];
      let lost = 0;
      for (let k = 0; k < PROBES; k++) {
        const user = `bg-probe-${probe++}`;
        const t0 = performance.now();
        const ip = `10.99.${(probe >> 8) & 255}.${probe & 255}`; // one session per probe: a new key from an open session's IP would join it
        const probeEvent = auditEvent(`probe-${user}`, { user, groups: ['system:masters'], ip });
        const status = await postAudit(p.webhookUrl, [probeEvent]).catch(() => postAudit(p.webhookUrl, [probeEvent]));
        const t1 = performance.now();
        if (status !== 200) throw new Error(`webhook answered ${status}`);
        const got = await waitFor(
          `the alert of ${user}`,
          () =>
            stream.events.find((e) => {
              if (e.event !== 'alert' || e.at < t0) return false;
              const a = (JSON.parse(e.data) as { alert: { principal: string; type: string } }).alert;
              return a.principal === user && a.type === 'breakglass.unauthorized';
            }),
          PROBE_TIMEOUT_MS,
        ).catch(() => null);
        if (!got) {
          // The pipeline is behind by more than the timeout: the background rate is above what this machine sustains.
          lost++;
          if (lost >= 3) break;
          continue;
        }
        latencies.push(got.at - t0);
        accepted.push(got.at - t1);
        await sleep(300);
      }
      const seconds = (performance.now() - measureStart) / 1000;
      const reached = (sent - sentAtStart) / seconds;
      running = false;
      await background;
      latencies.sort((a, b) => a - b);
      accepted.sort((a, b) => a - b);
      const health = (await (await fetch(`${p.consoleUrl}/api/health`, { headers: bearer })).json()) as {
        health: { live: { alert_push_ms: { p50: number | null; p99: number | null } } };
      };
      const push = health.health.live.alert_push_ms;
      const params = {
        backgroundTarget: rate,
        backgroundReached: Math.round(reached),
        probes: latencies.length,
        lost,
        consolePushP50: push.p50 ?? -1,
        consolePushP99: push.p99 ?? -1,
        bus: 'memory',
        store: 'chdb',
      };
      console.log(
        `background ${rate}/s (reached ${Math.round(reached)}/s): POST → SSE p50 ${quantile(latencies, 0.5).toFixed(0)} ms, p99 ${quantile(latencies, 0.99).toFixed(0)} ms; 200 → SSE p50 ${quantile(accepted, 0.5).toFixed(0)} ms, p99 ${quantile(accepted, 0.99).toFixed(0)} ms; console's own share (alerts topic → SSE push) p50 ${push.p50} ms, p99 ${push.p99} ms; ${lost} probes not seen within ${PROBE_TIMEOUT_MS / 1000} s`,
      );
      figure(`console.accept_to_sse.p50.bg${rate}`, Math.round(quantile(latencies, 0.5)), 'ms', params);
      figure(`console.accept_to_sse.p99.bg${rate}`, Math.round(quantile(latencies, 0.99)), 'ms', params);
      await sleep(2000);
    }
    stream.close();
  } finally {
    await p.stop();
    removeDir(p.dir);
  }
}

async function pageLoad(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-console-'));
  const store = await connectStore({ kind: 'chdb', path: join(dir, 'store') });
  const bus = new MemoryBus();
  try {
    await migrate(store);
    const now = Date.now();
    const identities = ['aws-root', 'aws-breakglass-role', 'okta-emergency-admin', 'k8s-breakglass'];
    const sessions = Array.from({ length: SESSIONS }, (_, i) => {
      // One in ten still open (last event within the idle timeout), the rest spread over 30 days.
      const end = i % 10 === 0 ? now - (i % 1000) * 1000 : now - 3_600_000 - i * 250_000;
      return {
        session_id: `bgs-${i}`,
        version: 3,
        identity: identities[i % 4],
        source: 'k8s',
        principal: `admin-${i}`,
        verdict: i % 3 === 0 ? 'authorized' : 'unauthorized',
        reason: i % 3 === 0 ? '' : 'no_ticket',
        ticket_id: i % 3 === 0 ? `CHG-${i}` : '',
        approvers: [],
        first_event_id: `e-${i}`,
        unauthorized_event_id: '',
        start: new Date(end - 600_000).toISOString(),
        end: new Date(end).toISOString(),
        events: 12,
        activity_command: 3,
        activity_data: 2,
        activity_config: 1,
        source_ips: ['10.0.0.1'],
        account: '',
        org: '',
        cluster: 'prod',
        detected_at: new Date(end - 590_000).toISOString(),
        keys: [`k-${i}`],
      };
    });
    for (let i = 0; i < sessions.length; i += 5000) await insertRows(store, 'sessions', sessions.slice(i, i + 5000));
    const types = ['breakglass.activity', 'breakglass.unauthorized', 'breakglass.revocation', 'rule.match', 'breakglass.authorized'];
    const severities = ['medium', 'critical', 'critical', 'high', 'informational'];
    for (let i = 0; i < ALERTS; i += 10_000) {
      const batch = Array.from({ length: Math.min(10_000, ALERTS - i) }, (_, k) => {
        const n = i + k;
        const t = new Date(now - n * 25_000).toISOString();
        return {
          alert_id: `gw-${n}`,
          type: types[n % 5],
          severity: severities[n % 5],
          identity: identities[n % 4],
          source: 'k8s',
          event_ids: [`e-${n}`],
          ticket_id: '',
          reason: 'no_ticket',
          category: n % 5 === 0 ? 'command' : '',
          rule_id: '',
          rule_title: '',
          rule_author: '',
          session_id: `bgs-${n % SESSIONS}`,
          principal: `admin-${n % SESSIONS}`,
          source_ip: '10.0.0.1',
          time: t,
          detected_at: t,
          summary: `alert ${n} of session bgs-${n % SESSIONS}`,
        };
      });
      await insertRows(store, 'alerts', batch);
    }
    await insertRows(
      store,
      'alert_triage',
      Array.from({ length: Math.round(ALERTS / 10) }, (_, n) => ({
        triage_id: `t-${n}`,
        alert_id: `gw-${n * 10}`,
        state: n % 2 ? 'resolved' : 'acknowledged',
        actor: 'soc-alice',
        comment: 'seen',
        at: new Date(now - n * 1000).toISOString(),
      })),
    );
    const config = parseConfig({ store: { path: join(dir, 'store') }, bus: { kind: 'memory' } }, null);
    const token = 'bench-console-token-0123456789';
    const running = await startConsole({
      config,
      options: { host: '127.0.0.1', port: 0, tokens: [{ name: 'bench', hash: hashToken(token) }], tls: null, sessionSeconds: 3600 },
      store,
      bus,
      log: createLogger({ level: 'warn' }),
    });
    try {
      const pages = [
        '/',
        '/alerts',
        '/requests',
        '/health',
        '/sessions/bgs-10',
        '/api/alerts?limit=500',
        '/api/sessions?state=all&limit=500',
      ];
      for (const path of pages) {
        const times: number[] = [];
        let bytes = 0;
        for (let r = 0; r < 6; r++) {
          const t0 = performance.now();
          const res = await fetch(`${running.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
          const body = await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
          if (r > 0) times.push(performance.now() - t0); // the first warms caches
          bytes = body.byteLength;
        }
        times.sort((a, b) => a - b);
        const median = quantile(times, 0.5);
        console.log(
          `page ${path}: median ${median.toFixed(0)} ms, max ${times[times.length - 1]!.toFixed(0)} ms, ${Math.round(bytes / 1024)} KiB`,
        );
        figure(`console.page_load.${path.replace(/[^a-z]+/g, '_').replace(/^_|_$/g, '') || 'now'}`, Math.round(median), 'ms', {
          sessions: SESSIONS,
          alerts: ALERTS,
          kib: Math.round(bytes / 1024),
        });
      }
    } finally {
      await running.stop();
    }
  } finally {
    await bus.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const only = process.argv[2];
if (only !== 'pages') await latencyUnderLoad();
if (only !== 'latency') await pageLoad();
