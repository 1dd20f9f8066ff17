import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

/**
 * `glasswatch start` as an operator runs it: one process with the in-process bus, the
 * Kubernetes audit webhook receiver, the store sink and the detector. An apiserver-style
 * EventList goes in over HTTP; the alert comes out in the JSON-lines output and the events
 * land in the store; SIGTERM stops everything cleanly.
 */
const root = new URL('../../', import.meta.url).pathname;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const waitFor = async (what: string, check: () => boolean, ms = 60_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

describe('glasswatch start', () => {
  it('receives audit events over HTTP, stores them, alerts, and stops on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-start-'));
    const port = await freePort();
    const metricsPort = await freePort();
    const alerts = join(dir, 'alerts.jsonl');
    const config = join(dir, 'glasswatch.yml');
    writeFileSync(
      config,
      stringify({
        store: { path: join(dir, 'store') },
        bus: { kind: 'memory' },
        collectors: {
          checkpointDir: join(dir, 'checkpoints'),
          metrics: { host: '127.0.0.1', port: metricsPort },
          k8s: { cluster: 'prod-eu1', receiver: { host: '127.0.0.1', port, path: '/audit', token: 'audit-token', insecureHttp: true } },
        },
        identities: [
          { id: 'k8s-breakglass', source: 'k8s', match: [{ 'user.username': 'breakglass-admin' }], revocation: { mode: 'manual' } },
        ],
        alerts: { jsonl: alerts },
      }),
    );
    const child: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', join(root, 'test/support/run-cli.ts'), 'start', '--config', config, '--status-seconds', '1'],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor('the pipeline to start', () => stderr.includes('glasswatch start:'));
      const event = (i: number, user: string) => ({
        kind: 'Event',
        apiVersion: 'audit.k8s.io/v1',
        level: 'Metadata',
        auditID: `start-test-${i}`,
        stage: 'ResponseComplete',
        requestURI: '/api/v1/namespaces/payments/secrets',
        verb: 'list',
        user: { username: user, groups: ['system:authenticated'] },
        sourceIPs: ['203.0.113.77'],
        objectRef: { resource: 'secrets', namespace: 'payments', apiVersion: 'v1' },
        responseStatus: { metadata: {}, code: 200 },
        requestReceivedTimestamp: `2026-11-20T22:5${i}:00.000000Z`,
        stageTimestamp: `2026-11-20T22:5${i}:00.100000Z`,
      });
      const body = JSON.stringify({
        kind: 'EventList',
        apiVersion: 'audit.k8s.io/v1',
        metadata: {},
        items: [event(1, 'breakglass-admin'), event(2, 'breakglass-admin'), event(3, 'carol@example.com')],
      });
      expect(
        (await fetch(`http://127.0.0.1:${port}/audit`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })).status,
      ).toBe(401);
      const res = await fetch(`http://127.0.0.1:${port}/audit`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', authorization: 'Bearer audit-token' },
      });
      expect(res.status).toBe(200);
      await waitFor('the unauthorized alert', () => existsSync(alerts) && readFileSync(alerts, 'utf8').includes('breakglass.unauthorized'));
      await waitFor('the status line to count the stored events', () => /stored 3 events/.test(stderr));
      const lines = readFileSync(alerts, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const un = lines.filter((a) => a.type === 'breakglass.unauthorized');
      expect(un).toHaveLength(1);
      expect(un[0]).toMatchObject({ identity: 'k8s-breakglass', reason: 'no_ticket', eventIds: ['start-test-1'] });
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(metrics).toMatch(/events_total\{[^}]*collector="k8s"[^}]*\} 3/);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toContain('SIGTERM, stopping');
  }, 120_000);
});
