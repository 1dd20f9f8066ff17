// `glasswatch start` as an operator runs it (a child process, embedded chDB, in-process bus): one
// /metrics listener carries the collectors' and the detector's metrics. A break-glass event posted
// to the Kubernetes audit webhook shows in both.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { waitFor } from '../bus/helpers.js';

const root = new URL('../../', import.meta.url).pathname;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

let child: ChildProcess | null = null;
afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('close', r));
  }
});

describe('glasswatch start: collector and detector metrics on one /metrics', () => {
  it('serves both, and a break-glass event shows as an open unauthorized session', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-start-metrics-'));
    const [auditPort, metricsPort] = [await freePort(), await freePort()];
    const file = join(dir, 'glasswatch.yml');
    writeFileSync(
      file,
      stringify({
        store: { path: join(dir, 'store') },
        collectors: {
          checkpointDir: join(dir, 'checkpoints'),
          metrics: { host: '127.0.0.1', port: metricsPort },
          k8s: {
            cluster: 'test',
            receiver: { host: '127.0.0.1', port: auditPort, path: '/audit', token: 'audit-token', insecureHttp: true },
          },
        },
        identities: [
          { id: 'k8s-breakglass', source: 'k8s', match: { 'user.username': 'breakglass-admin' }, revocation: { mode: 'manual' } },
        ],
      }),
    );
    let stdout = '';
    child = spawn(process.execPath, ['--import', 'tsx', `${root}test/support/run-cli.ts`, 'start', '--config', file], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    await waitFor(() => stderr.includes('detector with 1 identities'), 'start to run the detector', 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\nstdout: ${stdout}\nstderr: ${stderr.slice(-2000)}`);
    });
    const scrape = async () => await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();

    const now = new Date().toISOString();
    const body = JSON.stringify({
      kind: 'EventList',
      apiVersion: 'audit.k8s.io/v1',
      items: [
        {
          kind: 'Event',
          apiVersion: 'audit.k8s.io/v1',
          level: 'Metadata',
          auditID: 'a1b2c3d4-0000-4000-8000-000000000001',
          stage: 'ResponseComplete',
          requestURI: '/api/v1/namespaces/default/secrets',
          verb: 'list',
          user: { username: 'breakglass-admin', groups: ['system:authenticated'] },
          sourceIPs: ['10.0.0.5'],
          userAgent: 'kubectl/v1.31.0',
          objectRef: { resource: 'secrets', namespace: 'default', apiVersion: 'v1' },
          responseStatus: { metadata: {}, code: 200 },
          requestReceivedTimestamp: now,
          stageTimestamp: now,
        },
      ],
    });
    const res = await fetch(`http://127.0.0.1:${auditPort}/audit`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', authorization: 'Bearer audit-token' },
    });
    expect(res.status).toBe(200);
    let text = '';
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      text = await scrape();
      if (text.includes('glasswatch_detector_open_sessions{identity="k8s-breakglass",verdict="unauthorized"} 1')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(text).toContain('glasswatch_collector_events_total{collector="k8s"} 1');
    expect(text).toContain('glasswatch_detector_open_sessions{identity="k8s-breakglass",verdict="unauthorized"} 1');
    expect(text).toContain('glasswatch_detector_alerts_total{type="breakglass.unauthorized",severity="critical"} 1');
    expect(text).toMatch(/glasswatch_detector_detection_latency_seconds_count [1-9]/);
    // One TYPE line per metric name: the two sets do not collide.
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(new Set(types).size).toBe(types.length);

    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child!.once('close', r));
    expect(code).toBe(0);
  }, 120_000);
});
