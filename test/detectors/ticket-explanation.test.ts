import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { buildDetector } from '../../detectors/build.js';
import { TicketLedger, type Use } from '../../detectors/tickets/ledger.js';
import { parseTicket } from '../../detectors/tickets/ticket.js';
import { bgRole, cloudtrail } from '../support/events.js';

/**
 * Which ticket explains an unauthorized use (issue 10, item 1), step by step:
 *  1. the ticket the use's session was authorized under;
 *  2. else the closest ticket version in force whose window holds the use;
 *  3. else the nearest approved window within detector.nearWindowMinutes (early uses too);
 *  4. else no_ticket, ticketId null. Another identity's ticket never explains.
 * Each case runs through the detector (alerts and session rows) and the ledger alike.
 */
const IDENTITIES = [
  { id: 'aws-root', source: 'cloudtrail', match: { 'userIdentity.type': 'Root' }, revocation: { mode: 'off' } },
  {
    id: 'aws-breakglass-role',
    source: 'cloudtrail',
    match: { 'userIdentity.arn|contains': ':assumed-role/BreakGlass' },
    revocation: { mode: 'off' },
  },
];

const ticket = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  identities: ['aws-breakglass-role'],
  requester: 'alice@example.com',
  approvers: ['bob@example.com'],
  status: 'approved',
  notBefore: '2026-11-20T09:00:00Z',
  notAfter: '2026-11-20T10:00:00Z',
  updatedAt: '2026-11-20T08:50:00Z',
  ...extra,
});

async function run(events: AuditEvent[], tickets: Record<string, unknown>[], detector: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'gw-explain-'));
  const file = join(dir, 'tickets.jsonl');
  writeFileSync(file, tickets.map((t) => JSON.stringify(t)).join('\n'));
  const config = parseConfig({ identities: IDENTITIES, ...(Object.keys(detector).length ? { detector } : {}) }, 'test.yml');
  const alerts: Alert[] = [];
  const build = await buildDetector({
    config,
    store: null,
    log: silentLogger,
    clock: 'replay',
    ticketFiles: [file],
    onAlert: (a) => alerts.push(a),
  });
  await build.detector.handle([...events].sort((a, b) => a.time.localeCompare(b.time)));
  await build.detector.flush();
  const unauthorized = alerts.filter((a) => a.type === 'breakglass.unauthorized');
  return { alerts, unauthorized, sessions: [...build.detector.seen.values()] };
}

/** One use, one unauthorized alert: its reason and ticket, and the session row's, which must agree. */
async function explained(tickets: Record<string, unknown>[], time: string, detector: Record<string, unknown> = {}) {
  const r = await run([cloudtrail(time, 'ListUsers', bgRole('ASIAONE'))], tickets, detector);
  expect(r.unauthorized).toHaveLength(1);
  const a = r.unauthorized[0]!;
  expect(r.sessions[0]).toMatchObject({ verdict: 'unauthorized', reason: a.reason, ticketId: a.ticketId });
  return { reason: a.reason, ticketId: a.ticketId };
}

const use = (time: string): Use => ({
  identity: 'aws-breakglass-role',
  source: 'cloudtrail',
  timeMs: Date.parse(time),
  account: '111122223333',
  org: null,
  cluster: null,
});
const ledgerOf = (...tickets: Record<string, unknown>[]) => {
  const l = new TicketLedger();
  for (const [i, t] of tickets.entries()) l.add(parseTicket(t, `t${i}`));
  return l;
};

describe('step 1: the ticket the session was authorized under', () => {
  it('a session that overran its own ticket is explained with that ticket, not an older unrelated one', async () => {
    const events = [
      cloudtrail('2026-11-20T09:50:00Z', 'ListUsers', bgRole('ASIAOWN')),
      cloudtrail('2026-11-20T10:05:00Z', 'CreateUser', bgRole('ASIAOWN')),
    ];
    // CHG-0: an older ticket for another account, whose window still holds the overrun.
    const r = await run(events, [
      ticket('CHG-0', { notBefore: '2026-11-19T09:00:00Z', notAfter: '2026-11-20T12:00:00Z', scope: { accounts: ['999988887777'] } }),
      ticket('CHG-1'),
    ]);
    expect(r.alerts.filter((a) => a.type === 'breakglass.authorized').map((a) => a.ticketId)).toEqual(['CHG-1']);
    expect(r.unauthorized).toHaveLength(1);
    expect(r.unauthorized[0]).toMatchObject({ reason: 'outside_window', ticketId: 'CHG-1' });
    expect(r.sessions[0]).toMatchObject({ verdict: 'unauthorized', reason: 'outside_window', ticketId: 'CHG-1' });
  });

  it('the session ticket revoked mid-session gives revoked, even when a request holds the use', async () => {
    const events = [
      cloudtrail('2026-11-20T09:10:00Z', 'ListUsers', bgRole('ASIAREV')),
      cloudtrail('2026-11-20T09:25:00Z', 'CreateUser', bgRole('ASIAREV')),
    ];
    const r = await run(events, [
      ticket('CHG-1'),
      ticket('CHG-1', { status: 'revoked', updatedAt: '2026-11-20T09:20:00Z' }),
      ticket('CHG-9', { status: 'approved', approvers: ['alice@example.com'] }),
    ]);
    expect(r.unauthorized[0]).toMatchObject({ reason: 'revoked', ticketId: 'CHG-1' });
  });

  it('the ledger takes the session ticket from the caller', () => {
    const l = ledgerOf(
      ticket('CHG-0', { notBefore: '2026-11-19T09:00:00Z', notAfter: '2026-11-20T12:00:00Z', scope: { accounts: ['1'] } }),
      ticket('CHG-1'),
    );
    expect(l.evaluate(use('2026-11-20T10:05:00Z'), { sessionTicketId: 'CHG-1' })).toMatchObject({
      verdict: 'unauthorized',
      reason: 'outside_window',
      ticket: { id: 'CHG-1' },
      step: 1,
    });
    expect(l.evaluate(use('2026-11-20T10:05:00Z'))).toMatchObject({ reason: 'out_of_scope', ticket: { id: 'CHG-0' }, step: 2 });
  });
});

describe('step 2: the closest ticket whose window holds the use', () => {
  it('an approved ticket from another day does not beat the requested ticket whose window holds the use', async () => {
    const e = await explained(
      [
        ticket('CHG-OLD', { notBefore: '2026-11-19T09:00:00Z', notAfter: '2026-11-19T10:00:00Z', updatedAt: '2026-11-19T08:00:00Z' }),
        ticket('CHG-NEW', { status: 'requested', notBefore: '2026-11-20T14:00:00Z', notAfter: '2026-11-20T16:00:00Z' }),
      ],
      '2026-11-20T15:00:00Z',
    );
    expect(e).toEqual({ reason: 'not_approved', ticketId: 'CHG-NEW' });
  });

  it('ranks scope mismatch > self-approval > revoked > requested/rejected/missing approval', () => {
    const requested = ticket('A-requested', { status: 'requested' });
    const rejected = ticket('B-rejected', { status: 'rejected' });
    const noApprover = ticket('C-none', { approvers: [] });
    const revoked = ticket('D-revoked', { status: 'revoked' });
    const self = ticket('E-self', { approvers: ['Alice@Example.com'] });
    const scope = ticket('F-scope', { scope: { accounts: ['999988887777'] } });
    const at = use('2026-11-20T09:30:00Z');
    expect(ledgerOf(requested, rejected, noApprover).evaluate(at)).toMatchObject({ reason: 'not_approved', step: 2 });
    expect(ledgerOf(requested, rejected, noApprover, revoked).evaluate(at)).toMatchObject({
      reason: 'revoked',
      ticket: { id: 'D-revoked' },
    });
    expect(ledgerOf(requested, revoked, self).evaluate(at)).toMatchObject({ reason: 'self_approved', ticket: { id: 'E-self' } });
    expect(ledgerOf(scope, self, revoked, requested).evaluate(at)).toMatchObject({ reason: 'out_of_scope', ticket: { id: 'F-scope' } });
  });

  it('a ticket closed before the use is outside_window of that ticket, and beats a request', async () => {
    const e = await explained(
      [
        ticket('CHG-1', { notAfter: '2026-11-20T12:00:00Z' }),
        ticket('CHG-1', { notAfter: '2026-11-20T12:00:00Z', status: 'closed', updatedAt: '2026-11-20T10:00:00Z' }),
        ticket('CHG-2', { status: 'requested', notAfter: '2026-11-20T12:00:00Z' }),
      ],
      '2026-11-20T10:30:00Z',
    );
    expect(e).toEqual({ reason: 'outside_window', ticketId: 'CHG-1' });
  });

  it('only versions in force at event time count: a request filed after the use does not explain it', async () => {
    const e = await explained(
      [
        ticket('CHG-LATE', {
          status: 'requested',
          notBefore: '2026-11-20T14:00:00Z',
          notAfter: '2026-11-20T16:00:00Z',
          updatedAt: '2026-11-20T15:30:00Z',
        }),
      ],
      '2026-11-20T15:00:00Z',
    );
    expect(e).toEqual({ reason: 'no_ticket', ticketId: null });
  });
});

describe('step 3: the nearest approved window within detector.nearWindowMinutes', () => {
  it('an early use names the approved ticket whose window opens within 120 minutes', async () => {
    expect(
      await explained([ticket('CHG-1', { notBefore: '2026-11-20T10:00:00Z', notAfter: '2026-11-20T11:00:00Z' })], '2026-11-20T09:15:00Z'),
    ).toEqual({
      reason: 'outside_window',
      ticketId: 'CHG-1',
    });
  });

  it('a late use names the approved ticket whose window closed within the limit; the nearest wins', async () => {
    const e = await explained(
      [
        ticket('CHG-FAR', { notBefore: '2026-11-20T07:00:00Z', notAfter: '2026-11-20T08:00:00Z', updatedAt: '2026-11-20T06:00:00Z' }),
        ticket('CHG-NEAR', { notBefore: '2026-11-20T08:00:00Z', notAfter: '2026-11-20T09:00:00Z', updatedAt: '2026-11-20T06:00:00Z' }),
      ],
      '2026-11-20T09:40:00Z',
    );
    expect(e).toEqual({ reason: 'outside_window', ticketId: 'CHG-NEAR' });
  });

  it('a window further than nearWindowMinutes is no explanation; the limit is configurable', async () => {
    const far = [ticket('CHG-1', { notBefore: '2026-11-20T12:00:00Z', notAfter: '2026-11-20T13:00:00Z' })];
    expect(await explained(far, '2026-11-20T09:30:00Z')).toEqual({ reason: 'no_ticket', ticketId: null });
    expect(await explained(far, '2026-11-20T09:30:00Z', { nearWindowMinutes: 180 })).toEqual({
      reason: 'outside_window',
      ticketId: 'CHG-1',
    });
    expect(ledgerOf(...far).evaluate(use('2026-11-20T09:59:59Z'))).toMatchObject({ reason: 'no_ticket', ticket: null, step: 4 });
    expect(ledgerOf(...far).evaluate(use('2026-11-20T10:00:00Z'))).toMatchObject({ reason: 'outside_window', step: 3 });
  });

  it('a request or a self-approved ticket near in time is not an approved window', async () => {
    const near = { notBefore: '2026-11-20T10:00:00Z', notAfter: '2026-11-20T11:00:00Z' };
    expect(
      await explained(
        [ticket('R', { ...near, status: 'requested' }), ticket('S', { ...near, approvers: ['alice@example.com'] })],
        '2026-11-20T09:30:00Z',
      ),
    ).toEqual({ reason: 'no_ticket', ticketId: null });
  });
});

describe('step 4: no_ticket', () => {
  it('no ticket at all: no_ticket with ticketId null', async () => {
    expect(await explained([], '2026-11-20T09:30:00Z')).toEqual({ reason: 'no_ticket', ticketId: null });
  });

  it("another identity's ticket never explains, even one whose window holds the use", async () => {
    const e = await explained([ticket('ROOT-1', { identities: ['aws-root'], status: 'requested' })], '2026-11-20T09:30:00Z');
    expect(e).toEqual({ reason: 'no_ticket', ticketId: null });
  });
});
