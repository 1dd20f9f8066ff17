// Request and approval alerts on the real live path: tickets are posted, signed, to the detector's
// tickets endpoint; the alerts go through the detector's alert path (alerts stage, delivery worker,
// routing, formats) and are observed at real local HTTP webhooks, one per format; rows in a real chDB.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../core/bus/memory.js';
import { parseConfig } from '../../core/config.js';
import { silentLogger } from '../../core/log.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { type DetectorService, startDetectorService } from '../../detectors/service.js';
import { TicketLedger } from '../../detectors/tickets/ledger.js';
import { approvalSlaOf, TicketRequestAlerts } from '../../detectors/tickets/requests.js';
import { parseTicket } from '../../detectors/tickets/ticket.js';
import { waitFor } from '../bus/helpers.js';
import { type Hook, hook, iso, postTicket, TICKETS_SECRET, ticket } from './ticket-requests-support.js';

const ofType = (h: Hook, type: string) => h.bodies.filter((b) => b.type === type);

describe('request and approval alerts (tickets endpoint → alert path → webhooks)', () => {
  let store: Store;
  let native: Hook;
  let ocsf: Hook;
  let ecs: Hook;
  let service: DetectorService;

  beforeAll(async () => {
    store = openStore({ kind: 'chdb', path: join(mkdtempSync(join(tmpdir(), 'gw-treq-')), 'store') });
    await migrate(store);
    [native, ocsf, ecs] = [await hook(), await hook(), await hook()];
    const config = parseConfig(
      {
        identities: [{ id: 'aws-root', source: 'cloudtrail', match: { 'userIdentity.type': 'Root' } }],
        // 0.05 min = 3 s: the SLA of a drill.
        tickets: { secret: TICKETS_SECRET, approvalSlaMinutes: 0.05, http: { listen: '127.0.0.1:0', secret: TICKETS_SECRET } },
        alerts: {
          webhooks: [
            { url: native.url, secret: 'hook-secret', name: 'soc' },
            { url: ocsf.url, secret: 'hook-secret', name: 'soc-ocsf', format: 'ocsf' },
            // Routing applies: this output takes only the overdue alerts.
            { url: ecs.url, secret: 'hook-secret', name: 'soc-ecs', format: 'ecs', types: ['breakglass.approval_overdue'] },
          ],
        },
      },
      'requests.yml',
    );
    service = await startDetectorService({ config, bus: new MemoryBus(), store, log: silentLogger });
  });
  afterAll(async () => {
    await service?.stop();
    for (const h of [native, ocsf, ecs]) await h?.close();
    await store?.close();
  });

  it('a request raises breakglass.requested with identity, requester, reason and window, in every format', async () => {
    const t = ticket('CHG-100', 'requested', Date.now() - 1000);
    expect(await postTicket(service.ticketsUrl!, t)).toBe(202);
    await waitFor(() => ofType(native, 'breakglass.requested').length === 1 && ocsf.bodies.length === 1, 'requested alert');
    const a = ofType(native, 'breakglass.requested')[0]!;
    expect(a).toMatchObject({
      severity: 'medium',
      identity: 'aws-root',
      source: 'cloudtrail',
      ticketId: 'CHG-100',
      reason: t.reason,
      time: t.updatedAt,
      request: {
        requester: 'alice@example.com',
        reason: t.reason,
        notBefore: t.notBefore,
        notAfter: t.notAfter,
        requestedAt: t.updatedAt,
        approvedAt: null,
        slaMinutes: 0.05,
      },
    });
    expect(a.summary).toContain('alice@example.com requested break-glass access to aws-root');
    // OCSF Detection Finding with the request in unmapped.
    const f = ocsf.bodies[0] as { class_uid: number; finding_info: { uid: string }; unmapped: { request: { requester: string } } };
    expect(f.class_uid).toBe(2004);
    expect(f.finding_info.uid).toBe(a.id);
    expect(f.unmapped.request.requester).toBe('alice@example.com');
  });

  it('an approval raises breakglass.approved with who approved and how long after the request', async () => {
    const first = ofType(native, 'breakglass.requested')[0]!;
    const requestedAt = Date.parse(String((first.request as { requestedAt: string }).requestedAt));
    const approvedAt = requestedAt + 1500;
    expect(await postTicket(service.ticketsUrl!, ticket('CHG-100', 'approved', approvedAt))).toBe(202);
    await waitFor(() => ofType(native, 'breakglass.approved').length === 1, 'approved alert');
    expect(ofType(native, 'breakglass.approved')[0]).toMatchObject({
      ticketId: 'CHG-100',
      identity: 'aws-root',
      request: { approvers: ['bob@example.com'], requestedAt: iso(requestedAt), approvedAt: iso(approvedAt), waitSeconds: 2 },
    });
    expect(String(ofType(native, 'breakglass.approved')[0]!.summary)).toContain('approved by bob@example.com 2 s after the request');
  });

  it('a request waiting past tickets.approvalSlaMinutes raises breakglass.approval_overdue once; one approved in time does not', async () => {
    const now = Date.now();
    expect(await postTicket(service.ticketsUrl!, ticket('CHG-200', 'requested', now))).toBe(202);
    expect(await postTicket(service.ticketsUrl!, ticket('CHG-300', 'requested', now))).toBe(202);
    expect(await postTicket(service.ticketsUrl!, ticket('CHG-300', 'approved', now + 500))).toBe(202);
    await waitFor(() => ofType(native, 'breakglass.approval_overdue').length >= 1 && ecs.bodies.length >= 1, 'overdue alert', 20_000);
    // Several sweeps later (every 1 s here) it is still one alert per ticket.
    await new Promise((r) => setTimeout(r, 2500));
    await service.requests.settle(true);
    const overdue = ofType(native, 'breakglass.approval_overdue');
    // CHG-100 was approved; CHG-300 was approved within the SLA.
    expect(overdue.map((a) => a.ticketId)).toEqual(['CHG-200']);
    expect(overdue[0]).toMatchObject({ severity: 'high', time: iso(now), request: { requestedAt: iso(now), slaMinutes: 0.05 } });
    expect((overdue[0]!.request as { waitSeconds: number }).waitSeconds).toBeGreaterThanOrEqual(3);
    // Routing: the ECS output took the overdue alert and nothing else.
    expect(ecs.bodies.map((b) => (b.event as { code: string }).code)).toEqual(['breakglass.approval_overdue']);
    expect((ecs.bodies[0]!.glasswatch as { request: { requester: string } }).request.requester).toBe('alice@example.com');
    // Every alert reached the native webhook exactly once, and is in the store under the same id.
    const ids = native.bodies.map((b) => b.id as string);
    expect(new Set(ids).size).toBe(ids.length);
    const rows = await (
      await store.client.query({
        query: "SELECT type, ticket_id FROM alerts WHERE type LIKE 'breakglass.%' ORDER BY detected_at, ticket_id",
        format: 'JSONEachRow',
      })
    ).json<{ type: string; ticket_id: string }>();
    expect(rows.map((r) => `${r.type} ${r.ticket_id}`).sort()).toEqual(
      [
        'breakglass.requested CHG-100',
        'breakglass.approved CHG-100',
        'breakglass.requested CHG-200',
        'breakglass.requested CHG-300',
        'breakglass.approved CHG-300',
        'breakglass.approval_overdue CHG-200',
      ].sort(),
    );
    // Waiting requests (for /metrics): CHG-200 only.
    expect([...service.requests.waiting()].map(([identity, w]) => [identity, w.count])).toEqual([['aws-root', 1]]);
  });

  it('a version more than 24 h old is history: accepted and stored, never alerted', async () => {
    const old = ticket('CHG-OLD', 'requested', Date.now() - 2 * 86_400_000);
    expect(await postTicket(service.ticketsUrl!, old)).toBe(202);
    await service.requests.settle(true);
    expect(service.build.ledger.latest('CHG-OLD')?.status).toBe('requested');
    expect(native.bodies.filter((b) => b.ticketId === 'CHG-OLD')).toEqual([]);
  });

  it('with the history horizon off (a past day replayed into a fresh store), old versions are alerted', async () => {
    const ledger = new TicketLedger();
    const raised: Alert[] = [];
    const requests = new TicketRequestAlerts({
      ledger,
      raise: async (a) => void raised.push(a),
      store,
      log: silentLogger,
      slaMinutes: null,
      historyMs: null,
    });
    requests.start();
    ledger.add(parseTicket(ticket('CHG-PAST', 'requested', Date.parse('2026-11-20T22:12:00Z')), 'test'));
    ledger.add(parseTicket(ticket('CHG-PAST', 'approved', Date.parse('2026-11-20T22:29:40Z')), 'test'));
    await requests.stop();
    expect(raised.map((a) => [a.type, a.request?.waitSeconds])).toEqual([
      ['breakglass.requested', null],
      ['breakglass.approved', 1060],
    ]);
  });

  it('tickets.approvalSlaMinutes is validated with the file and field named', () => {
    const bad = parseConfig({ tickets: { approvalSlaMinutes: 'soon' } }, 'sla.yml');
    expect(() => approvalSlaOf(bad)).toThrow(/sla\.yml.*tickets\.approvalSlaMinutes.*must be a number/);
    const zero = parseConfig({ tickets: { approvalSlaMinutes: 0 } }, 'sla.yml');
    expect(() => approvalSlaOf(zero)).toThrow(/approvalSlaMinutes.*more than 0/);
    expect(approvalSlaOf(parseConfig({ tickets: { approvalSlaMinutes: 30 } }, 'sla.yml'))).toBe(30);
    expect(approvalSlaOf(parseConfig({}, 'sla.yml'))).toBeNull();
  });
});
