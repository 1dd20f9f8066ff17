// "Was this you?" survives a crash: a real `glasswatch start` asks the owner (real SMTP server), is
// killed with SIGKILL while it waits, and the next start on the same store still revokes at the
// question's timeout (the revocation webhook is a real HTTP server), with the timeout chained.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSmtp, type TestSmtp } from '../reports/smtp.js';
import { auditEvent, bearer, type Pipeline, postAudit, removeDir, startPipeline, waitFor } from './harness.js';

describe('"was this you?" across a kill -9', () => {
  let smtp: TestSmtp;
  let hook: Server;
  let hookUrl: string;
  const revoked: Array<{ sessionId: string; atMs: number }> = [];
  const running: Pipeline[] = [];

  beforeAll(async () => {
    smtp = await startSmtp({ disabledCommands: ['STARTTLS', 'AUTH'], authOptional: true });
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        revoked.push({ sessionId: String((JSON.parse(body) as { sessionId: string }).sessionId), atMs: Date.now() });
        res.writeHead(200).end('{}');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/revoke`;
  });
  afterAll(async () => {
    for (const p of running) await p.stop().catch(() => {});
    if (running[0]) removeDir(running[0].dir);
    await smtp?.close();
    await new Promise((r) => hook?.close(r));
  });

  const extra = (ports: { console: number }) => ({
    identities: [
      {
        id: 'k8s-breakglass',
        source: 'k8s',
        match: [{ 'user.username': 'breakglass-admin' }],
        revocation: { mode: 'auto', targets: ['webhook'] },
        confirm: { via: 'email', owner: 'owner@example.com', timeoutSeconds: 15 },
      },
    ],
    smtp: { host: '127.0.0.1', port: smtp.port },
    revocation: {
      webhook: { url: hookUrl, secret: 'revoke-webhook-secret-0123456789' },
      confirm: {
        secret: 'confirm-link-secret-0123456789abcdef0123',
        consoleUrl: `http://127.0.0.1:${ports.console}`,
        from: 'gw@example.com',
      },
    },
  });

  it('a question asked before a SIGKILL is revoked at its timeout by the next start', async () => {
    const first = await startPipeline({ extra });
    running.push(first);
    expect(await postAudit(first.webhookUrl, [auditEvent('confirm-crash-1', { ip: '10.99.0.1' })])).toBe(200);
    const mail = await waitFor('the question', () => smtp.mails.find((m) => m.raw.includes('10.99.0.1')), 30_000);
    const sessionId = /session: (\S+)/.exec(mail.raw.replace(/=\r?\n/g, ''))?.[1];
    expect(sessionId).toBeTruthy();
    const due = Date.parse(/Answer before (\S+):/.exec(mail.raw.replace(/=\r?\n/g, ''))?.[1] ?? '');
    expect(Number.isFinite(due)).toBe(true);
    // The in-process bus keeps no events across a crash: kill once the session row is stored (with Kafka
    // the uncommitted event would come again instead).
    await waitFor('the session in the store', async () => {
      const res = await fetch(`${first.consoleUrl}/api/sessions/${encodeURIComponent(sessionId!)}`, { headers: bearer });
      await res.arrayBuffer();
      return res.status === 200;
    });
    await first.kill();
    expect(revoked).toEqual([]);

    const second = await startPipeline({ extra, dir: first.dir });
    running.push(second);
    const r = await waitFor('the revocation at the timeout', () => revoked.find((x) => x.sessionId === sessionId), 40_000);
    console.log(`confirm: after a SIGKILL and a restart, revoked ${r.atMs - due} ms after the question's due time`);
    expect(r.atMs).toBeGreaterThanOrEqual(due);
    expect(r.atMs - due).toBeLessThan(5000);
    // The SOC sees it: the question and its timeout on the session page.
    let last = '';
    await waitFor('the timeout step', async () => {
      const res = await fetch(`${second.consoleUrl}/api/sessions/${encodeURIComponent(sessionId!)}`, { headers: bearer });
      last = `${res.status} ${await res.clone().text()}`.slice(0, 3000);
      if (res.status !== 200) return false;
      const d = (await res.json()) as { confirmations: Array<{ state: string }>; revocations: Array<{ outcome: string }> };
      return d.confirmations.map((c) => c.state).join(',') === 'asked,timeout' && d.revocations[0]?.outcome === 'revoked';
    }).catch((err: unknown) => {
      console.log(last);
      throw err;
    });
  }, 180_000);
});
