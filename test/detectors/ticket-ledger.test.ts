import { describe, expect, it } from 'vitest';
import { TicketLedger, type Use } from '../../detectors/tickets/ledger.js';
import { JIRA_PRESET, mapTicket, parseTicketText, SERVICENOW_PRESET } from '../../detectors/tickets/sources.js';
import { parseTicket } from '../../detectors/tickets/ticket.js';

const base = {
  id: 'CHG-1',
  identities: ['aws-breakglass-role'],
  requester: 'alice@example.com',
  approvers: ['bob@example.com'],
  status: 'approved',
  notBefore: '2026-11-20T09:00:00Z',
  notAfter: '2026-11-20T11:00:00Z',
  updatedAt: '2026-11-20T08:55:00Z',
};
const use = (time: string, extra: Partial<Use> = {}): Use => ({
  identity: 'aws-breakglass-role',
  source: 'cloudtrail',
  timeMs: Date.parse(time),
  account: '111122223333',
  org: null,
  cluster: null,
  ...extra,
});
const ledgerOf = (...tickets: Record<string, unknown>[]) => {
  const l = new TicketLedger();
  for (const [i, t] of tickets.entries()) l.add(parseTicket(t, `t${i}`));
  return l;
};

describe('ticket ledger verdicts', () => {
  it('authorizes a use inside an approved, two-person window', () => {
    const c = ledgerOf(base).evaluate(use('2026-11-20T09:12:03Z'));
    expect(c.verdict).toBe('authorized');
    expect(c.ticket?.id).toBe('CHG-1');
  });

  it('window bounds are inclusive', () => {
    const l = ledgerOf(base);
    expect(l.evaluate(use('2026-11-20T09:00:00Z')).verdict).toBe('authorized');
    expect(l.evaluate(use('2026-11-20T11:00:00Z')).verdict).toBe('authorized');
    expect(l.evaluate(use('2026-11-20T11:00:00.001Z'))).toMatchObject({ verdict: 'unauthorized', reason: 'outside_window' });
  });

  it('no_ticket when no ticket lists the identity', () => {
    expect(ledgerOf(base).evaluate(use('2026-11-20T09:30:00Z', { identity: 'aws-root' }))).toMatchObject({
      verdict: 'unauthorized',
      reason: 'no_ticket',
      ticket: null,
    });
  });

  it('no_ticket when the ticket was only filed after the use', () => {
    const c = ledgerOf({ ...base, updatedAt: '2026-11-20T09:40:00Z' }).evaluate(use('2026-11-20T09:30:00Z'));
    expect(c).toMatchObject({ verdict: 'unauthorized', reason: 'no_ticket' });
  });

  it('self_approved when an approver is the requester, case-insensitively', () => {
    const c = ledgerOf({ ...base, approvers: ['Alice@Example.com'] }).evaluate(use('2026-11-20T09:30:00Z'));
    expect(c).toMatchObject({ verdict: 'unauthorized', reason: 'self_approved' });
    const two = ledgerOf({ ...base, approvers: ['bob@example.com', 'alice@example.com'] }).evaluate(use('2026-11-20T09:30:00Z'));
    expect(two.reason).toBe('self_approved');
  });

  it('not_approved for requested, rejected, or approver-less tickets', () => {
    expect(ledgerOf({ ...base, status: 'requested' }).evaluate(use('2026-11-20T09:30:00Z')).reason).toBe('not_approved');
    expect(ledgerOf({ ...base, status: 'rejected' }).evaluate(use('2026-11-20T09:30:00Z')).reason).toBe('not_approved');
    expect(ledgerOf({ ...base, approvers: [] }).evaluate(use('2026-11-20T09:30:00Z')).reason).toBe('not_approved');
  });

  it('a revocation at T covers nothing after T but still covers what came before', () => {
    const l = ledgerOf(base, { ...base, status: 'revoked', updatedAt: '2026-11-20T09:45:00Z' });
    expect(l.evaluate(use('2026-11-20T09:44:59Z')).verdict).toBe('authorized');
    expect(l.evaluate(use('2026-11-20T09:45:01Z'))).toMatchObject({ verdict: 'unauthorized', reason: 'revoked' });
  });

  it('closing a ticket ends its window early', () => {
    const l = ledgerOf(base, { ...base, status: 'closed', updatedAt: '2026-11-20T10:00:00Z' });
    expect(l.evaluate(use('2026-11-20T10:30:00Z')).reason).toBe('outside_window');
  });

  it('out_of_scope when the account is not in the ticket scope', () => {
    const l = ledgerOf({ ...base, scope: { accounts: ['999988887777'] } });
    expect(l.evaluate(use('2026-11-20T09:30:00Z')).reason).toBe('out_of_scope');
    expect(l.evaluate(use('2026-11-20T09:30:00Z', { account: null })).reason).toBe('out_of_scope');
    const k8s = ledgerOf({ ...base, identities: ['k8s-bg'], scope: { clusters: ['prod-eu1'] } });
    expect(
      k8s.evaluate(use('2026-11-20T09:30:00Z', { identity: 'k8s-bg', source: 'k8s', account: null, cluster: 'prod-eu1' })).verdict,
    ).toBe('authorized');
    expect(
      k8s.evaluate(use('2026-11-20T09:30:00Z', { identity: 'k8s-bg', source: 'k8s', account: null, cluster: 'prod-us1' })).reason,
    ).toBe('out_of_scope');
  });

  it('explains with the ticket whose window holds the use before a nearby approved window (issue 10 item 1)', () => {
    const l = ledgerOf({ ...base, id: 'A', status: 'requested' }, { ...base, id: 'B', notAfter: '2026-11-20T09:10:00Z' });
    const c = l.evaluate(use('2026-11-20T09:30:00Z'));
    expect(c).toMatchObject({ verdict: 'unauthorized', reason: 'not_approved' });
    expect(c.ticket?.id).toBe('A');
  });

  it('grace lets a late approval cover the use, but not a late revocation un-cover it', () => {
    const late = ledgerOf({ ...base, status: 'requested' }, { ...base, updatedAt: '2026-11-20T09:30:40Z' });
    expect(late.evaluate(use('2026-11-20T09:30:00Z')).reason).toBe('not_approved');
    expect(late.evaluate(use('2026-11-20T09:30:00Z'), 60_000).verdict).toBe('authorized');
    expect(late.evaluate(use('2026-11-20T09:30:00Z'), 30_000).verdict).toBe('unauthorized');
  });

  it('ignores a duplicate version of the same ticket', () => {
    const l = new TicketLedger();
    expect(l.add(parseTicket(base, 'a'))).toBe(true);
    expect(l.add(parseTicket(base, 'b'))).toBe(false);
  });
});

describe('ticket sources', () => {
  it('reads JSON lines and names the line of a bad ticket', () => {
    const ok = parseTicketText(`${JSON.stringify(base)}\n\n${JSON.stringify({ ...base, id: 'CHG-2' })}\n`, 'tickets.jsonl');
    expect(ok.map((t) => t.id)).toEqual(['CHG-1', 'CHG-2']);
    expect(() => parseTicketText(`${JSON.stringify(base)}\n{"id":"CHG-3","status":"approved"`, 'tickets.jsonl')).toThrow(
      /tickets.jsonl:2: not valid JSON/,
    );
    expect(() => parseTicketText(JSON.stringify({ ...base, status: 'ok' }), 'tickets.jsonl')).toThrow(
      'tickets.jsonl:1 (ticket CHG-1): status must be one of',
    );
    expect(() => parseTicketText(JSON.stringify([{ ...base, notBefore: 'tomorrow' }]), 't.json')).toThrow(
      't.json[0] (ticket CHG-1): notBefore is not an ISO 8601 time: "tomorrow"',
    );
  });

  it('maps a Jira webhook payload', () => {
    const jira = {
      webhookEvent: 'jira:issue_updated',
      issue: {
        key: 'BG-42',
        fields: {
          summary: 'prod DB restore',
          status: { name: 'Approved' },
          reporter: { emailAddress: 'alice@example.com' },
          customfield_approvers: [{ emailAddress: 'bob@example.com' }, { emailAddress: 'carol@example.com' }],
          customfield_identities: [{ value: 'aws-breakglass-role' }],
          customfield_not_before: '2026-11-20T09:00:00.000+0000',
          customfield_not_after: '2026-11-20T11:00:00.000+0000',
          updated: '2026-11-20T08:55:00.000+0000',
        },
      },
    };
    const t = mapTicket(jira, JIRA_PRESET, 'jira');
    expect(t).toMatchObject({
      id: 'BG-42',
      status: 'approved',
      approvers: ['bob@example.com', 'carol@example.com'],
      identities: ['aws-breakglass-role'],
      notAfter: '2026-11-20T11:00:00.000Z',
    });
    expect(() =>
      mapTicket(
        { issue: { ...jira.issue, fields: { ...jira.issue.fields, status: { name: 'Weird' } } } },
        { ...JIRA_PRESET, status: { ...JIRA_PRESET.status, default: undefined } } as never,
        'jira',
      ),
    ).toThrow(/status "Weird" at issue.fields.status.name has no mapping/);
  });

  it('maps a ServiceNow payload with its UTC time format', () => {
    const t = mapTicket(
      {
        number: 'CHG0030001',
        approval: 'approved',
        requested_by: { email: 'alice@example.com' },
        approvers: [{ email: 'bob@example.com' }],
        u_breakglass_identities: 'aws-root,okta-emergency-admin',
        start_date: '2026-11-20 09:00:00',
        end_date: '2026-11-20 11:00:00',
        sys_updated_on: '2026-11-20 08:55:00',
        short_description: 'root password rotation',
      },
      SERVICENOW_PRESET,
      'servicenow',
    );
    expect(t).toMatchObject({ id: 'CHG0030001', identities: ['aws-root', 'okta-emergency-admin'], notBefore: '2026-11-20T09:00:00.000Z' });
  });
});
