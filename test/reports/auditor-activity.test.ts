/**
 * Issue 11 part 5, the activity report an auditor can hand on: per session the principal,
 * requester, approvers, scope, ticket timeline and every action; failed sign-ins one by one with
 * their source IP; the CloudTrail log validation of the objects the session came from; a flat
 * CSV; an HTML page for a 600 px pane that prints to A4. Real replay into chDB, real builders.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { verifyDigest } from '../../reports/digest.js';
import { parsePeriod } from '../../reports/period.js';
import { buildReport } from '../../reports/registry.js';
import { renderReport } from '../../reports/render/index.js';
import type { ActivityReport, ActivitySession, UnauthorizedReport } from '../../reports/types.js';
import { EARLY_USE_EVENTS, writeAuditorFixture } from './auditor-fixture.js';
import { csvRecords } from './csv-parse.js';
import { ACCOUNT, type Fixture, replayFixture } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-auditor-activity-'));
let fixture: Fixture;
let store: Store;
const period = parsePeriod('2026-03-10', '2026-03-12');
const activity = async () => (await buildReport('breakglass-activity', { store, period })) as ActivityReport;
const at = (r: ActivityReport, identity: string, start: string): ActivitySession => {
  const s = r.sessions.find((x) => x.identity === identity && x.start === start);
  expect(s, `${identity}@${start}`).toBeDefined();
  return s!;
};

beforeAll(async () => {
  fixture = writeAuditorFixture(dir);
  await replayFixture(fixture);
  store = openStore({ kind: 'chdb', path: fixture.store });
  await migrate(store);
}, 120_000);
afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('breakglass-activity: who, under which ticket, doing what', () => {
  it('gives each session its principal, requester, approvers, scope and the ticket timeline from its versions', async () => {
    const s1 = at(await activity(), 'aws-breakglass-ops', '2026-03-10T09:10:00.000Z');
    expect(s1).toMatchObject({
      principal: 'breakglass-ops',
      source: 'cloudtrail',
      requester: 'alice@example.com',
      approvers: ['bob@example.com'],
      account: ACCOUNT,
      org: null,
      cluster: null,
      sourceIps: ['198.51.100.10'],
    });
    expect(s1.ticket).toEqual({
      ticketId: 'T-100',
      status: 'closed',
      notBefore: '2026-03-10T09:00:00.000Z',
      notAfter: '2026-03-10T10:00:00.000Z',
      requestedAt: '2026-03-09T11:00:00.000Z',
      requestedBy: 'alice@example.com',
      approvedAt: '2026-03-09T12:00:00.000Z',
      approvedBy: ['bob@example.com'],
      usedAt: '2026-03-10T09:10:00.000Z',
      usedBy: 'breakglass-ops',
      closedAt: '2026-03-10T10:05:00.000Z',
      closedAs: 'closed',
      closedVia: 'file',
    });
    // Versions after the period's end are not read: the same period gives the same timeline later.
    const before = (await buildReport('breakglass-activity', {
      store,
      period: parsePeriod('2026-03-10T00:00:00Z', '2026-03-10T10:00:00Z'),
    })) as ActivityReport;
    expect(before.sessions[0]!.ticket).toMatchObject({ status: 'approved', closedAt: null, closedAs: null });
  });

  it('lists every action with time, action, target, outcome, category and event id', async () => {
    const r = await activity();
    const s1 = at(r, 'aws-breakglass-ops', '2026-03-10T09:10:00.000Z');
    expect(s1.actions).toEqual([
      {
        time: '2026-03-10T09:10:00.000Z',
        action: 'sts.amazonaws.com:GetCallerIdentity',
        target: null,
        outcome: 'success',
        category: null,
        eventId: s1.firstEventId,
      },
      {
        time: '2026-03-10T09:25:00.000Z',
        action: 'secretsmanager.amazonaws.com:GetSecretValue',
        target: 'AWS::SecretsManager::Secret prod/db',
        outcome: 'success',
        category: 'data',
        eventId: expect.stringMatching(/^ct-/),
      },
      {
        time: '2026-03-10T09:40:00.000Z',
        action: 'ec2.amazonaws.com:DescribeInstances',
        target: null,
        outcome: 'success',
        category: null,
        eventId: expect.stringMatching(/^ct-/),
      },
    ]);
    // Every event the detector counted in a session is listed, and nothing else.
    for (const s of r.sessions) expect(s.actions, s.sessionId).toHaveLength(s.events);
    expect(r.totals.actions).toBe(r.sessions.reduce((n, s) => n + s.events, 0));
    const early = at(r, 'aws-breakglass-ops', '2026-03-11T01:00:00.000Z');
    expect(early.actions).toHaveLength(EARLY_USE_EVENTS);
    expect(new Set(early.actions.map((a) => a.eventId)).size).toBe(EARLY_USE_EVENTS);
    const root = at(r, 'aws-root', '2026-03-10T22:00:00.000Z');
    expect(root.actions.map((a) => [a.action, a.category])).toEqual([
      ['signin.amazonaws.com:ConsoleLogin', null],
      ['cloudtrail.amazonaws.com:StopLogging', 'config'],
      ['secretsmanager.amazonaws.com:GetSecretValue', 'data'],
    ]);
  });

  it('lists each failed sign-in with its source IP, not only a count', async () => {
    const r = await activity();
    expect(r.totals.attempts).toBe(2);
    expect(r.attempts.map((a) => [a.time, a.identity, a.principal, a.sourceIp])).toEqual([
      ['2026-03-10T21:55:00.000Z', 'aws-root', 'Root', '203.0.113.77'],
      ['2026-03-11T03:00:00.000Z', 'aws-root', 'Root', '198.51.100.99'],
    ]);
    for (const a of r.attempts) expect(a.eventId).toMatch(/^(ct|ax)-/);
    // A failed sign-in is never one of a session's actions.
    const ids = new Set(r.attempts.map((a) => a.eventId));
    for (const s of r.sessions) for (const a of s.actions) expect(ids.has(a.eventId)).toBe(false);
  });

  it('states the CloudTrail log-file validation of the objects each session came from, worst first', async () => {
    const r0 = await activity();
    for (const s of r0.sessions) expect(s.logValidation).toEqual({ status: null, objects: [] });
    const s1 = at(r0, 'aws-breakglass-ops', '2026-03-10T09:10:00.000Z');
    const root = at(r0, 'aws-root', '2026-03-10T22:00:00.000Z');
    const row = (object_key: string, status: string, event_ids: string[]) => ({
      source: 'cloudtrail',
      bucket: 'org-trail',
      object_key,
      status,
      digest_key: '',
      reason: '',
      event_ids,
      checked_at: '2026-03-11T00:00:00.000',
    });
    const rootIds = root.actions.map((a) => a.eventId);
    await store.client.insert({
      table: 'log_validation',
      format: 'JSONEachRow',
      values: [
        row(
          'AWSLogs/a.json.gz',
          'valid',
          s1.actions.map((a) => a.eventId),
        ),
        row('AWSLogs/b.json.gz', 'valid', rootIds.slice(0, 2)),
        row('AWSLogs/c.json.gz', 'mismatch', rootIds.slice(2)),
      ],
    });
    const r = await activity();
    expect(at(r, 'aws-breakglass-ops', '2026-03-10T09:10:00.000Z').logValidation).toEqual({
      status: 'valid',
      objects: [{ objectKey: 'AWSLogs/a.json.gz', status: 'valid' }],
    });
    expect(at(r, 'aws-root', '2026-03-10T22:00:00.000Z').logValidation).toEqual({
      status: 'mismatch',
      objects: [
        { objectKey: 'AWSLogs/b.json.gz', status: 'valid' },
        { objectKey: 'AWSLogs/c.json.gz', status: 'mismatch' },
      ],
    });
    // Not validated is not valid: sessions with no validation row say null, Okta ones too.
    expect(at(r, 'okta-emergency-admin', '2026-03-10T18:05:00.000Z').logValidation.status).toBeNull();
    expect(r.totals.logValidationFailures).toBe(1);
    expect(r.digest).not.toBe(r0.digest);
    const html = renderReport(r, 'html').text;
    expect(html).toMatch(/background:#fee2e2;color:#991b1b;font-weight:600">mismatch</);
    expect(html).toContain('AWSLogs/c.json.gz');
    const objects = csvRecords(renderReport(r, 'csv').text).filter((x) => x.record === 'log_object');
    expect(objects.map((o) => [o.identity, o.objectKey, o.logValidation])).toEqual([
      ['aws-breakglass-ops', 'AWSLogs/a.json.gz', 'valid'],
      ['aws-root', 'AWSLogs/b.json.gz', 'valid'],
      ['aws-root', 'AWSLogs/c.json.gz', 'mismatch'],
    ]);
  });

  it('is the same report, digest included, when built again', async () => {
    const a = await activity();
    const b = await activity();
    expect(b).toEqual(a);
    expect(verifyDigest(JSON.parse(renderReport(a, 'json').text))).toBe(true);
  });
});

describe('flat CSV', () => {
  it('activity: one record per row (session, action, log object, attempt), every action, no JSON in a cell', async () => {
    const r = await activity();
    const rows = csvRecords(renderReport(r, 'csv').text);
    for (const x of rows) for (const v of Object.values(x)) expect(v).not.toMatch(/^[[{]/);
    const kinds = (k: string) => rows.filter((x) => x.record === k);
    expect(kinds('session')).toHaveLength(r.sessions.length);
    expect(kinds('action')).toHaveLength(r.totals.actions);
    expect(kinds('attempt').map((a) => [a.time, a.sourceIp])).toEqual([
      ['2026-03-10T21:55:00.000Z', '203.0.113.77'],
      ['2026-03-11T03:00:00.000Z', '198.51.100.99'],
    ]);
    const s1 = kinds('session').find((x) => x.ticketId === 'T-100')!;
    expect(s1).toMatchObject({
      principal: 'breakglass-ops',
      requester: 'alice@example.com',
      approvers: 'bob@example.com',
      account: ACCOUNT,
      ticketRequestedAt: '2026-03-09T11:00:00.000Z',
      ticketApprovedBy: 'bob@example.com',
      ticketClosedAt: '2026-03-10T10:05:00.000Z',
      activityData: '1',
    });
    const secret = kinds('action').find((x) => x.action === 'secretsmanager.amazonaws.com:GetSecretValue' && x.sessionId === s1.sessionId)!;
    expect(secret).toMatchObject({ target: 'AWS::SecretsManager::Secret prod/db', outcome: 'success', category: 'data' });
    expect(secret.eventId).toMatch(/^ct-/);
  });

  it('unauthorized-use: one row per revocation, the incident repeated', async () => {
    const r = (await buildReport('unauthorized-use', { store, period })) as UnauthorizedReport;
    const rows = csvRecords(renderReport(r, 'csv').text);
    expect(rows).toHaveLength(r.incidents.reduce((n, i) => n + Math.max(1, i.revocations.length), 0));
    for (const x of rows) {
      expect(x.revocationId).not.toBe('');
      expect(x.revocationOutcome).toBe('manual');
      for (const v of Object.values(x)) expect(v).not.toMatch(/^[[{]/);
    }
  });
  it('renders a kept copy from before these fields existed (no actions, attempts, ticket or validation) without failing', async () => {
    const r = await activity();
    const old = {
      ...r,
      attempts: undefined,
      sessions: r.sessions.map(({ actions: _a, logValidation: _l, ticket: _t, ...rest }) => rest),
    } as unknown as ActivityReport;
    const rows = csvRecords(renderReport(old, 'csv').text);
    expect(rows.filter((x) => x.record === 'session')).toHaveLength(r.sessions.length);
    expect(rows.filter((x) => x.record !== 'session')).toEqual([]);
    expect(renderReport(old, 'html').text).toContain('No stored events for this session');
  });
});

describe('HTML for a mail pane and for print', () => {
  const organisation = '</style><script>alert(1)</script> "Acme" & Co';

  it('has the print header (organisation, period, generated at), A4 page numbers, a 600 px column, no script, every value escaped', async () => {
    const r = await activity();
    const html = renderReport(r, 'html', { organisation, generatedAt: '2026-03-12T07:00:00.000Z' }).text;
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i);
    const style = html.slice(html.indexOf('<style>') + '<style>'.length, html.indexOf('</style>'));
    expect(style).toMatch(/@page \{ size: A4;/);
    expect(style).toMatch(/@bottom-right \{ content: "page " counter\(page\) " of " counter\(pages\)/);
    expect(style).not.toMatch(/[<>]/);
    // The organisation in the CSS header is escaped: its quote cannot close the CSS string.
    expect(style).toContain(
      String.raw`@top-left { content: "\3c \2f style\3e \3c script\3e alert(1)\3c \2f script\3e  \22 Acme\22  \26  Co: Break-glass activity"`,
    );
    expect(style).toContain('@top-right { content: "2026-03-10T00:00:00.000Z to 2026-03-12T00:00:00.000Z"');
    expect(style).toContain('generated 2026-03-12T07:00:00.000Z');
    expect(html).toContain('max-width:600px');
    expect(html).toContain('&lt;/style&gt;&lt;script&gt;alert(1)&lt;/script&gt; &quot;Acme&quot; &amp; Co');
    expect(html).toContain('Period 2026-03-10 00:00:00Z to 2026-03-12 00:00:00Z (end excluded) · generated 2026-03-12 07:00:00Z');
  });

  it('shows the first 25 actions of a session with the count, and every failed sign-in with its IP', async () => {
    const r = await activity();
    const html = renderReport(r, 'html').text;
    const early = at(r, 'aws-breakglass-ops', '2026-03-11T01:00:00.000Z');
    const shown = early.actions.filter((a) => html.includes(a.eventId));
    expect(shown).toEqual(early.actions.slice(0, 25));
    expect(html).toContain(`25 of ${EARLY_USE_EVENTS} actions shown; every action is in the JSON and CSV.`);
    expect(html).toContain('3 of 3 actions shown');
    expect(html).toMatch(/203\.0\.113\.77.*198\.51\.100\.99/s);
    expect(html).toContain('Failed sign-ins (2)');
  });

  it('shows at most 2,000 actions in the whole page, and says where the rest are', async () => {
    const r = await activity();
    const early = at(r, 'aws-breakglass-ops', '2026-03-11T01:00:00.000Z');
    const sessions = Array.from({ length: 100 }, (_, i) => ({ ...early, sessionId: `bgs-copy-${i}` }));
    const html = renderReport({ ...r, sessions }, 'html').text;
    expect(html.split(`25 of ${EARLY_USE_EVENTS} actions shown; every`).length - 1).toBe(80);
    expect(
      html.split(`0 of ${EARLY_USE_EVENTS} actions shown (the page shows at most 2000 actions); every action is in the JSON and CSV.`)
        .length - 1,
    ).toBe(20);
  });
});
