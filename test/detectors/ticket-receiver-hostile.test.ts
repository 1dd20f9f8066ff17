// The tickets endpoint under hostile clients (issue 9, findings 6 and 7): authentication from the
// headers before a byte of the body is read, the body capped before any HMAC, the shared server
// limits against slow and flooding sockets, and Jira deliveries with their own secret, a bounded
// replay window and deduplication. Real HTTP server on 127.0.0.1, raw sockets for the attacker.
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log.js';
import { signedHeaders } from '../../core/signing.js';
import { TicketLedger } from '../../detectors/tickets/ledger.js';
import { TicketReceiver, type TicketReceiverOptions } from '../../detectors/tickets/receiver.js';
import { TicketService } from '../../detectors/tickets/service.js';
import { rawRequest, slowSockets } from '../support/hostile-http.js';

const SECRET = 'tickets-hmac-secret-0123456789';
const JIRA_SECRET = 'jira-webhook-secret-9876543210';
const ticket = (id: string) => ({
  id,
  identities: ['aws-root'],
  requester: 'alice@example.com',
  approvers: ['bob@example.com'],
  status: 'approved',
  notBefore: '2026-11-20T09:00:00Z',
  notAfter: '2026-11-20T10:00:00Z',
  updatedAt: '2026-11-20T08:55:00Z',
});
const jiraPayload = (key: string, timestamp = Date.now()) =>
  JSON.stringify({
    timestamp,
    webhookEvent: 'jira:issue_updated',
    issue: {
      key,
      fields: {
        status: { name: 'Approved' },
        reporter: { emailAddress: 'alice@example.com' },
        customfield_approvers: [{ emailAddress: 'carol@example.com' }],
        customfield_identities: [{ value: 'aws-root' }],
        customfield_not_before: '2026-11-20T09:00:00.000+0000',
        customfield_not_after: '2026-11-20T10:00:00.000+0000',
        updated: '2026-11-20T08:00:00.000+0000',
      },
    },
  });
const hub = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

describe('tickets endpoint under hostile clients', () => {
  const logs: string[] = [];
  const log = createLogger({ write: (l) => logs.push(l) });
  let ledger: TicketLedger;
  let receiver: TicketReceiver;
  let url = '';
  let port = 0;
  const start = async (extra: Partial<TicketReceiverOptions> = {}) => {
    ledger = new TicketLedger();
    receiver = new TicketReceiver(
      new TicketService(ledger, { store: null, log }),
      {
        secret: SECRET,
        jiraSecret: JIRA_SECRET,
        maxBytes: 64 * 1024,
        limits: { headersTimeoutMs: 1500, bodyIdleTimeoutMs: 1000, maxConnectionsPerIp: 32 },
        ...extra,
      },
      log,
    );
    url = await receiver.listen();
    port = Number(new URL(url).port);
  };
  const post = (path: string, body: string, headers: Record<string, string>) =>
    fetch(`${url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

  beforeAll(() => start());
  afterAll(() => receiver.close());

  it('answers 401 from the headers alone: missing, malformed or stale signatures never make it wait for the body', async () => {
    // Each request declares a 50 MB body and sends none: the answer must come at once.
    const head = (extra: string) =>
      `POST /tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000${extra}`;
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      '',
      `\r\nX-Glasswatch-Timestamp: ${now}`,
      `\r\nX-Glasswatch-Timestamp: ${now}\r\nX-Glasswatch-Signature: v1=nothex`,
      `\r\nX-Glasswatch-Timestamp: soon\r\nX-Glasswatch-Signature: v1=${'a'.repeat(64)}`,
      `\r\nX-Glasswatch-Timestamp: ${now - 3600}\r\nX-Glasswatch-Signature: v1=${'a'.repeat(64)}`,
    ];
    for (const extra of cases) {
      const r = await rawRequest(port, head(extra), '', 3000);
      expect(r.status, extra).toBe(401);
      expect(r.answeredMs ?? Infinity).toBeLessThan(1000);
      // ... and the connection is closed: the unauthenticated body is never read.
      expect(r.closedMs ?? Infinity).toBeLessThan(2000);
    }
    // X-Hub-Signature only on the Jira route
    const onTickets = await rawRequest(port, `${head('')}\r\nX-Hub-Signature: sha256=${'a'.repeat(64)}`, '', 3000);
    expect(onTickets.status).toBe(401);
  });

  it('caps the body before computing any HMAC (413 from Content-Length), and refuses a stalled body (408)', async () => {
    const body = 'x'.repeat(100);
    const h = signedHeaders(SECRET, body);
    const signed = `X-Glasswatch-Timestamp: ${h['x-glasswatch-timestamp']}\r\nX-Glasswatch-Signature: ${h['x-glasswatch-signature']}`;
    const big = await rawRequest(port, `POST /tickets HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n${signed}`, '', 3000);
    expect(big.status).toBe(413);
    expect(big.answeredMs ?? Infinity).toBeLessThan(1000);
    // Chunked, no length: cut at maxBytes while streaming.
    const chunk = Buffer.from(`10000\r\n${'y'.repeat(0x10000)}\r\n`);
    const streamed = await rawRequest(
      port,
      `POST /tickets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n${signed}`,
      Buffer.concat([chunk, chunk]),
      3000,
    );
    expect(streamed.status).toBe(413);
    // Half a body, then nothing: refused after the body-idle timeout (1 s here), not Node's 300 s.
    const stalled = await rawRequest(port, `POST /tickets HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n${signed}`, 'x'.repeat(50), 5000);
    expect(stalled.status).toBe(408);
    expect(stalled.answeredMs ?? Infinity).toBeLessThan(3000);
  });

  it('1,100 slow unauthenticated sockets from 127.0.0.2 do not stop a signed ticket from 127.0.0.1', { timeout: 30_000 }, async () => {
    const attack = await slowSockets(port, 1100, '127.0.0.2', '/tickets');
    try {
      // The server keeps at most maxConnectionsPerIp (32 here) of them ...
      expect(await attack.settle(32)).toBeLessThanOrEqual(32);
      // ... while the legitimate client is served at once.
      const body = JSON.stringify(ticket('CHG-FLOOD'));
      const t0 = Date.now();
      const res = await post('/tickets', body, signedHeaders(SECRET, body));
      expect(res.status).toBe(202);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(ledger.latest('CHG-FLOOD')?.id).toBe('CHG-FLOOD');
      // The ones it kept are cut by the headers timeout (1.5 s here).
      expect(await attack.settle(0, 5000)).toBe(0);
      // Most were refused at accept (a few more were kept as the timeout freed room).
      expect(receiver.server?.refusedConnections ?? 0).toBeGreaterThan(500);
    } finally {
      attack.destroy();
    }
  });

  describe('Jira deliveries', () => {
    it('have their own secret: the tickets secret does not sign a Jira delivery, the Jira secret does', async () => {
      const body = jiraPayload('BG-11');
      expect((await post('/tickets/jira', body, { 'x-hub-signature': hub(SECRET, body) })).status).toBe(401);
      expect(ledger.latest('BG-11')).toBeNull();
      const res = await post('/tickets/jira', body, {
        'x-hub-signature': hub(JIRA_SECRET, body),
        'x-atlassian-webhook-identifier': 'd-11',
      });
      expect(res.status).toBe(202);
      expect(ledger.latest('BG-11')).toMatchObject({ status: 'approved', approvers: ['carol@example.com'] });
      // The Jira secret signs nothing on the glasswatch route.
      const own = JSON.stringify(ticket('CHG-J'));
      expect((await post('/tickets', own, signedHeaders(JIRA_SECRET, own))).status).toBe(401);
      expect(logs.join('\n')).not.toContain(JIRA_SECRET);
    });

    it('a replayed or retried delivery is answered 200 and not applied again; dedupe memory is bounded', async () => {
      const accepted = () => logs.filter((l) => l.includes('tickets accepted') && l.includes('"origin":"jira"')).length;
      const body = jiraPayload('BG-12');
      const first = await post('/tickets/jira', body, {
        'x-hub-signature': hub(JIRA_SECRET, body),
        'x-atlassian-webhook-identifier': 'd-12',
      });
      expect(first.status).toBe(202);
      const applied = accepted();
      // Jira's retry: same identifier, same body.
      const retry = await post('/tickets/jira', body, {
        'x-hub-signature': hub(JIRA_SECRET, body),
        'x-atlassian-webhook-identifier': 'd-12',
      });
      expect(retry.status).toBe(200);
      expect(await retry.json()).toMatchObject({ added: 0, duplicate: true });
      // A captured delivery replayed with another (unsigned) identifier, or none.
      for (const headers of [{ 'x-atlassian-webhook-identifier': 'forged-id' }, {}] as Record<string, string>[]) {
        const replay = await post('/tickets/jira', body, { 'x-hub-signature': hub(JIRA_SECRET, body), ...headers });
        expect(replay.status).toBe(200);
        expect(await replay.json()).toMatchObject({ duplicate: true });
      }
      expect(accepted()).toBe(applied);
      expect(receiver.stats.duplicates).toBe(3);
    });

    it('a delivery whose signed payload timestamp is outside the window (or missing) is refused: it cannot be replayed forever', async () => {
      const old = jiraPayload('BG-13', Date.now() - 2 * 3600_000);
      expect((await post('/tickets/jira', old, { 'x-hub-signature': hub(JIRA_SECRET, old) })).status).toBe(401);
      const none = JSON.stringify({ ...JSON.parse(jiraPayload('BG-13')), timestamp: undefined });
      expect((await post('/tickets/jira', none, { 'x-hub-signature': hub(JIRA_SECRET, none) })).status).toBe(401);
      expect(ledger.latest('BG-13')).toBeNull();
      // The same delivery, fresh, is taken.
      const fresh = jiraPayload('BG-13');
      expect((await post('/tickets/jira', fresh, { 'x-hub-signature': hub(JIRA_SECRET, fresh) })).status).toBe(202);
    });

    it('bounded dedupe memory: when full of live entries, a new delivery gets 503 (Jira retries) instead of forgetting one', async () => {
      await receiver.close();
      await start({ jiraDedupeEntries: 4 });
      const send = (key: string) => {
        const body = jiraPayload(key);
        return post('/tickets/jira', body, { 'x-hub-signature': hub(JIRA_SECRET, body), 'x-atlassian-webhook-identifier': `id-${key}` });
      };
      expect((await send('BG-21')).status).toBe(202);
      expect((await send('BG-22')).status).toBe(202);
      expect((await send('BG-23')).status).toBe(503);
      expect(ledger.latest('BG-23')).toBeNull();
    });
  });
});
