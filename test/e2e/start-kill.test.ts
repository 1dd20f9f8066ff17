import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { openStore } from '../../core/store/client.js';
import { deleteTopics, kafkaBrokers, uniqueName } from '../bus/helpers.js';
import { auditListBody } from '../support/k8s-events.js';

/**
 * The one-process pipeline (`glasswatch start` on Kafka) killed with SIGKILL while the webhook is
 * saturated, then started again on the same store, spool and groups. Counted as the issue asks:
 * events answered 200 vs stored, break-glass uses vs unauthorized alerts at the SOC webhook,
 * duplicates (by alert id, and sessions alerted twice).
 */
const root = new URL('../../', import.meta.url).pathname;
const topicsToDelete: string[] = [];
afterAll(() => deleteTopics(topicsToDelete));

const TOTAL = 24_000;
const PER_REQUEST = 500;
const BREAK_GLASS_EVERY = 997;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function start(config: string, instance: string): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'test/support/run-cli.ts'),
      'start',
      '--config',
      config,
      '--instance',
      instance,
      '--status-seconds',
      '0.5',
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let text = '';
  const append = (c: Buffer) => {
    text += c.toString();
    if (text.length > 2_000_000) text = text.slice(-500_000);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  return { child, out: () => text, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

describe('glasswatch start killed with SIGKILL at saturation', () => {
  it('0 accepted events lost, every break-glass use alerted once, 0 duplicate deliveries after the restart', {
    timeout: 300_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-start-kill-'));
    const run = uniqueName('sk');
    const topics = {
      events: `${run}-events`,
      deadLetters: `${run}-dlq`,
      alerts: `${run}-alerts`,
      tickets: `${run}-tickets`,
      revocations: `${run}-revocations`,
    };
    topicsToDelete.push(...Object.values(topics));
    // The SOC: every alert delivery, by id and type.
    const deliveries: { id: string; type: string; identity: string | null; principal: string }[] = [];
    const soc = createHttpServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => {
        text += c;
      });
      req.on('end', () => {
        const a = JSON.parse(text) as { id: string; type: string; identity?: string | null; principal?: string; actor?: { name?: string } };
        deliveries.push({ id: a.id, type: a.type, identity: a.identity ?? null, principal: a.principal ?? a.actor?.name ?? '' });
        res.end('{}');
      });
    });
    await new Promise<void>((r) => soc.listen(0, '127.0.0.1', r));
    const port = await freePort();
    const config = join(dir, 'gw.yml');
    writeFileSync(
      config,
      stringify({
        store: { path: join(dir, 'store') },
        bus: { kind: 'kafka', brokers: kafkaBrokers(), clientId: 'glasswatch-start-kill' },
        topics,
        collectors: {
          checkpointDir: join(dir, 'checkpoints'),
          k8s: { cluster: 'prod', receiver: { host: '127.0.0.1', port, path: '/audit', token: 'kill-token', insecureHttp: true } },
        },
        identities: [
          {
            id: 'k8s-breakglass',
            source: 'k8s',
            match: [{ 'user.username|startswith': 'breakglass-admin' }],
            revocation: { mode: 'manual' },
          },
        ],
        tickets: { secret: 'start-kill-tickets-secret' },
        alerts: {
          webhooks: [{ url: `http://127.0.0.1:${(soc.address() as AddressInfo).port}/alerts`, secret: 'soc-secret', name: 'soc' }],
          delivery: { initialDelayMs: 100, maxDelayMs: 1000 },
        },
      }),
    );
    const instance = `${run}-one`;
    let proc = start(config, instance);
    const outputs: string[] = [];
    try {
      // An apiserver: retries a batch until it is answered 200 (connection refused while the process is down).
      let accepted = 0;
      const post = async (text: string): Promise<boolean> => {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/audit`, {
            method: 'POST',
            body: text,
            headers: { 'content-type': 'application/json', authorization: 'Bearer kill-token' },
          });
          await res.arrayBuffer();
          return res.status === 200;
        } catch {
          return false;
        }
      };
      const bodies: string[] = [];
      for (let i = 0; i < TOTAL; i += PER_REQUEST) bodies.push(auditListBody(run, i, PER_REQUEST, BREAK_GLASS_EVERY));
      let next = 0;
      let killed = false;
      const senders = Array.from({ length: 4 }, async () => {
        while (next < bodies.length) {
          const b = bodies[next++]!;
          while (!(await post(b))) await sleep(50);
          accepted += PER_REQUEST;
          // Kill -9 with about 40% accepted: mid-load, with units in the spool, in flight and half judged.
          if (!killed && accepted >= TOTAL * 0.4) {
            killed = true;
            proc.child.kill('SIGKILL');
            await proc.exited;
            outputs.push(proc.out());
            proc = start(config, instance);
          }
        }
      });
      await Promise.all(senders);
      expect(killed).toBe(true);
      expect(accepted).toBe(TOTAL);
      const breakGlass = Array.from({ length: TOTAL }, (_, i) => i).filter((i) => i % BREAK_GLASS_EVERY === 0);
      const deadline = Date.now() + 180_000;
      const unauthorized = () => deliveries.filter((d) => d.type === 'breakglass.unauthorized');
      while (new Set(unauthorized().map((d) => d.id)).size < breakGlass.length && Date.now() < deadline) await sleep(200);
      // The stored count: read after the stop (the embedded store is locked by the running process).
      while (!/stored \d+ events/.test(proc.out()) && Date.now() < deadline) await sleep(200);
      await sleep(3000);
      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
      outputs.push(proc.out());
      const store = openStore({ kind: 'chdb', path: join(dir, 'store') });
      try {
        const r = await store.client.query({
          query: 'SELECT uniqExact(id) AS n FROM events WHERE startsWith(id, {p:String})',
          query_params: { p: `${run}-` },
          format: 'JSONEachRow',
        });
        const n = ((await r.json()) as { n: string }[])[0]?.n;
        expect(Number(n), 'accepted events stored').toBe(TOTAL);
        const s = await store.client.query({
          query: "SELECT count() AS n FROM (SELECT DISTINCT session_id FROM alerts WHERE type = 'breakglass.unauthorized')",
          format: 'JSONEachRow',
        });
        expect(Number(((await s.json()) as { n: string }[])[0]!.n)).toBe(breakGlass.length);
      } finally {
        await store.close();
      }
      const ids = unauthorized().map((d) => d.id);
      expect(new Set(ids).size, 'every break-glass use alerted').toBe(breakGlass.length);
      const seen = new Map<string, number>();
      for (const d of deliveries) seen.set(d.id, (seen.get(d.id) ?? 0) + 1);
      expect(
        [...seen].filter(([, n]) => n > 1),
        'duplicate deliveries',
      ).toEqual([]);
    } catch (err) {
      throw new Error(
        `${(err as Error).message}\n--- before the kill ---\n${(outputs[0] ?? '').slice(-3000)}\n--- after ---\n${proc.out().slice(-3000)}`,
      );
    } finally {
      proc.child.kill('SIGKILL');
      soc.close();
    }
  });
});
