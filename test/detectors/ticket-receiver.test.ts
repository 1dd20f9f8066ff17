import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log.js';
import { signedHeaders } from '../../core/signing.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { TicketLedger } from '../../detectors/tickets/ledger.js';
import { TicketReceiver } from '../../detectors/tickets/receiver.js';
import { TicketService } from '../../detectors/tickets/service.js';

const SECRET = 'tickets-hmac-secret-0123456789';
// Jira's webhook secret is its own (issue 9): the tickets secret never signs a Jira delivery.
const JIRA_SECRET = 'jira-webhook-secret-0123456789';
const ticket = {
  id: 'CHG-7',
  identities: ['aws-root'],
  requester: 'alice@example.com',
  approvers: ['bob@example.com'],
  status: 'approved',
  notBefore: '2026-11-20T09:00:00Z',
  notAfter: '2026-11-20T10:00:00Z',
  updatedAt: '2026-11-20T08:55:00Z',
};

let store: Store;
let url: string;
let receiver: TicketReceiver;
const ledger = new TicketLedger();
const logs: string[] = [];

beforeAll(async () => {
  store = openStore({ kind: 'chdb', path: join(mkdtempSync(join(tmpdir(), 'gw-tr-')), 'store') });
  await migrate(store);
  const log = createLogger({ write: (l) => logs.push(l) });
  receiver = new TicketReceiver(new TicketService(ledger, { store, log }), { secret: SECRET, jiraSecret: JIRA_SECRET }, log);
  url = await receiver.listen();
});
afterAll(async () => {
  await receiver.close();
  await store.close();
});

const post = (path: string, body: string, headers: Record<string, string>) =>
  fetch(`${url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

describe('tickets HTTP endpoint', () => {
  it('accepts a signed ticket into the ledger and the store', async () => {
    const body = JSON.stringify(ticket);
    const res = await post('/tickets', body, signedHeaders(SECRET, body));
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ received: 1, added: 1 });
    expect(ledger.latest('CHG-7')?.approvers).toEqual(['bob@example.com']);
    const rows = await (
      await store.client.query({
        query: 'SELECT ticket_id, status, approvers FROM tickets WHERE ticket_id = {id:String}',
        query_params: { id: 'CHG-7' },
        format: 'JSONEachRow',
      })
    ).json();
    expect(rows).toEqual([{ ticket_id: 'CHG-7', status: 'approved', approvers: ['bob@example.com'] }]);
    // the same version again is idempotent
    const again = await post('/tickets', body, signedHeaders(SECRET, body));
    expect(await again.json()).toEqual({ received: 1, added: 0 });
  });

  it('refuses unsigned, wrongly signed and stale requests, and never logs the secret', async () => {
    const body = JSON.stringify({ ...ticket, id: 'CHG-8' });
    expect((await post('/tickets', body, {})).status).toBe(401);
    expect((await post('/tickets', body, signedHeaders('not-the-secret', body))).status).toBe(401);
    expect((await post('/tickets', body, signedHeaders(SECRET, body, Date.now() - 10 * 60_000))).status).toBe(401);
    const tampered = signedHeaders(SECRET, body);
    expect((await post('/tickets', body.replace('alice', 'mallory'), tampered)).status).toBe(401);
    expect(ledger.latest('CHG-8')).toBeNull();
    expect(logs.join('\n')).not.toContain(SECRET);
    expect(receiver.stats.unauthorized).toBe(4);
  });

  it('names the bad field of a malformed ticket (400)', async () => {
    const body = JSON.stringify({ ...ticket, id: 'CHG-9', notAfter: 'soon' });
    const res = await post('/tickets', body, signedHeaders(SECRET, body));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe(
      'glasswatch request:1 (ticket CHG-9): notAfter is not an ISO 8601 time: "soon"',
    );
  });

  it('accepts a Jira webhook signed the Jira way (X-Hub-Signature)', async () => {
    const body = JSON.stringify({
      timestamp: Date.now(),
      webhookEvent: 'jira:issue_updated',
      issue: {
        key: 'BG-1',
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
    const sig = `sha256=${createHmac('sha256', JIRA_SECRET).update(body).digest('hex')}`;
    const res = await post('/tickets/jira', body, { 'x-hub-signature': sig });
    expect(res.status).toBe(202);
    expect(ledger.latest('BG-1')).toMatchObject({ status: 'approved', approvers: ['carol@example.com'] });
    expect((await post('/tickets/jira', body, { 'x-hub-signature': 'sha256=00' })).status).toBe(401);
    // X-Hub-Signature is only for the Jira route
    expect((await post('/tickets', JSON.stringify(ticket), { 'x-hub-signature': sig })).status).toBe(401);
  });
});

describe('tickets endpoint of the live detector', () => {
  it('maps Jira payloads with the site-specific custom fields from the config', async () => {
    const { startDetectorService } = await import('../../detectors/service.js');
    const { MemoryBus } = await import('../../core/bus/memory.js');
    const { parseConfig } = await import('../../core/config.js');
    const config = parseConfig(
      {
        identities: [{ id: 'aws-root', source: 'cloudtrail', match: { 'userIdentity.type': 'Root' } }],
        tickets: {
          http: { listen: '127.0.0.1:0', secret: SECRET },
          jira: {
            approvers: 'issue.fields.customfield_10050[].emailAddress',
            identities: 'issue.fields.customfield_10051[].value',
            status: { map: { 'Access granted': 'approved' } },
          },
        },
      },
      'live.yml',
    );
    const bus = new MemoryBus();
    const service = await startDetectorService({ config, bus, store: null, log: createLogger({ level: 'silent' }) });
    try {
      const body = JSON.stringify({
        issue: {
          key: 'OPS-9',
          fields: {
            status: { name: 'Access granted' },
            reporter: { emailAddress: 'alice@example.com' },
            customfield_10050: [{ emailAddress: 'bob@example.com' }],
            customfield_10051: [{ value: 'aws-root' }],
            customfield_not_before: '2026-11-20T09:00:00.000+0000',
            customfield_not_after: '2026-11-20T10:00:00.000+0000',
            updated: '2026-11-20T08:00:00.000+0000',
          },
        },
      });
      const res = await fetch(`${service.ticketsUrl}/tickets/jira`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', ...signedHeaders(SECRET, body) },
      });
      expect(res.status).toBe(202);
      expect(service.build.ledger.latest('OPS-9')).toMatchObject({
        status: 'approved',
        approvers: ['bob@example.com'],
        identities: ['aws-root'],
      });
      // ... and published to the tickets topic for the other detectors
      expect(bus.messages(config.topics.tickets).map((m) => m.key)).toEqual(['OPS-9@2026-11-20T08:00:00.000Z']);
    } finally {
      await service.stop();
      await bus.close();
    }
  });
});
