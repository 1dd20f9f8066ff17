import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../core/bus/memory.js';
import { silentLogger } from '../../core/log.js';
import { verify } from '../../core/signing.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { type Alert, alertId } from '../../detectors/alerts/alert.js';
import { AlertDispatcher, MemoryDeliveryLedger, StoreDeliveryLedger } from '../../detectors/alerts/dispatcher.js';
import { EmailOutput, JsonLinesAlertOutput, KafkaAlertOutput, WebhookOutput } from '../../detectors/alerts/outputs.js';

const alert = (n: number): Alert => ({
  id: alertId('breakglass.unauthorized', `bgs-${n}`),
  type: 'breakglass.unauthorized',
  severity: 'critical',
  identity: 'aws-root',
  source: 'cloudtrail',
  eventIds: [`evt-${n}`],
  ticketId: null,
  reason: 'no_ticket',
  category: null,
  ruleId: null,
  ruleTitle: null,
  ruleAuthor: null,
  sessionId: `bgs-${n}`,
  principal: 'Root',
  sourceIp: '203.0.113.77',
  time: '2026-11-20T22:41:52.000Z',
  detectedAt: '2026-11-20T22:41:52.120Z',
  summary: 'UNAUTHORIZED use of break-glass identity aws-root by Root from 203.0.113.77: no_ticket',
});

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}
let hook: { url: string; received: Received[]; status: number[]; close: () => Promise<void> };

beforeAll(async () => {
  const received: Received[] = [];
  const status: number[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(status.shift() ?? 200);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hook = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`,
    received,
    status,
    close: () => new Promise((r) => server.close(() => r())),
  };
});
afterAll(() => hook.close());

describe('alert outputs', () => {
  it('webhook: HMAC-signed body with the alert, idempotency key = alert id; 5xx retried', async () => {
    hook.received.length = 0;
    hook.status.push(503);
    const d = new AlertDispatcher([new WebhookOutput({ url: hook.url, secret: 'wh-secret' })], new MemoryDeliveryLedger(), silentLogger, {
      initialDelayMs: 5,
    });
    const result = await d.dispatch(alert(1));
    expect(result).toEqual({ delivered: 1, skipped: 0, failed: 0 });
    expect(hook.received).toHaveLength(2);
    const last = hook.received[1]!;
    expect(verify('wh-secret', last.headers, last.body).ok).toBe(true);
    expect(verify('wrong', last.headers, last.body).ok).toBe(false);
    expect(last.headers['idempotency-key']).toBe(alert(1).id);
    expect(JSON.parse(last.body)).toMatchObject(alert(1));
  });

  it('webhook: Slack-compatible body; a 4xx is not retried and is recorded as failed', async () => {
    hook.received.length = 0;
    const ledger = new MemoryDeliveryLedger();
    const d = new AlertDispatcher(
      [new WebhookOutput({ url: hook.url, secret: 's', format: 'slack', name: 'slack' })],
      ledger,
      silentLogger,
      { initialDelayMs: 5 },
    );
    await d.dispatch(alert(2));
    const body = JSON.parse(hook.received[0]!.body);
    expect(body.text).toContain('breakglass.unauthorized');
    expect(body.blocks[1].fields.map((f: { text: string }) => f.text)).toContain('*Reason*\nno_ticket');
    hook.status.push(400);
    const r = await d.dispatch(alert(3));
    expect(r.failed).toBe(1);
    expect(hook.received).toHaveLength(2);
    expect(ledger.records.at(-1)).toMatchObject({ status: 'failed', attempts: 1, error: expect.stringContaining('HTTP 400') });
  });

  it('email through a real SMTP server; JSON lines; Kafka topic (bus seam)', async () => {
    const mails: { to: string[]; data: string }[] = [];
    const smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, session, cb) {
        let data = '';
        stream.on('data', (c: Buffer) => {
          data += c.toString();
        });
        stream.on('end', () => {
          mails.push({ to: session.envelope.rcptTo.map((r) => r.address), data });
          cb();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
    const port = (smtp.server.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'gw-out-'));
    const bus = new MemoryBus();
    try {
      const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
      const d = new AlertDispatcher(
        [
          new EmailOutput({ transport, from: 'glasswatch@example.com', to: ['soc@example.com'] }),
          new JsonLinesAlertOutput(join(dir, 'alerts.jsonl')),
          new KafkaAlertOutput(bus, 'glasswatch.alerts'),
        ],
        new MemoryDeliveryLedger(),
        silentLogger,
      );
      expect(await d.dispatch(alert(4))).toEqual({ delivered: 3, skipped: 0, failed: 0 });
      expect(mails).toHaveLength(1);
      expect(mails[0]!.to).toEqual(['soc@example.com']);
      expect(mails[0]!.data).toMatch(/Subject: \[glasswatch\]\[CRITICAL\] breakglass.unauthorized/);
      expect(mails[0]!.data).toMatch(new RegExp(`X-Glasswatch-Alert-Id: ${alert(4).id}`, 'i'));
      expect(JSON.parse(readFileSync(join(dir, 'alerts.jsonl'), 'utf8'))).toMatchObject(alert(4));
      const msgs = bus.messages('glasswatch.alerts');
      expect(msgs).toHaveLength(1);
      expect(msgs[0]!.key).toBe(alert(4).id);
    } finally {
      await new Promise<void>((r) => smtp.close(() => r()));
    }
  });

  it('a store-backed delivery ledger never delivers twice across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-ledger-'));
    let store: Store = openStore({ kind: 'chdb', path: join(dir, 'store') });
    await migrate(store);
    hook.received.length = 0;
    const first = new AlertDispatcher(
      [new WebhookOutput({ url: hook.url, secret: 's', name: 'soc' })],
      new StoreDeliveryLedger(store),
      silentLogger,
    );
    await first.dispatch(alert(5));
    await first.dispatch(alert(6));
    await store.close();
    // "restart": a new process state, the same store
    store = openStore({ kind: 'chdb', path: join(dir, 'store') });
    const second = new AlertDispatcher(
      [new WebhookOutput({ url: hook.url, secret: 's', name: 'soc' })],
      new StoreDeliveryLedger(store),
      silentLogger,
    );
    expect(await second.dispatch(alert(5))).toEqual({ delivered: 0, skipped: 1, failed: 0 });
    expect(await second.dispatch(alert(7))).toEqual({ delivered: 1, skipped: 0, failed: 0 });
    expect(hook.received.map((r) => JSON.parse(r.body).sessionId)).toEqual(['bgs-5', 'bgs-6', 'bgs-7']);
    await store.close();
  });
});
