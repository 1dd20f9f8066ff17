import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportCommand } from '../../cli/report.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { verifyDigest } from '../../reports/digest.js';
import { parsePeriod } from '../../reports/period.js';
import { buildReport } from '../../reports/registry.js';
import { renderReport } from '../../reports/render/index.js';
import type { ActivityReport, CoverageReport, RotationReport, UnauthorizedReport } from '../../reports/types.js';
import { type Fixture, HOSTILE_REQUESTER, PERIOD, replayFixture, writeFixture } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-reports-'));
let fixture: Fixture;
let store: Store;
const period = parsePeriod(PERIOD.from, PERIOD.to);

beforeAll(async () => {
  fixture = writeFixture(dir);
  await replayFixture(fixture);
  store = openStore({ kind: 'chdb', path: fixture.store });
  await migrate(store);
});
afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const byIdentityStart = <T extends { identity: string; start: string }>(rows: T[]) =>
  rows.map((r) => `${r.identity}@${r.start.slice(11, 16)}`);

describe('breakglass-activity', () => {
  it('lists every session with verdict, ticket, activity and timings, and totals', async () => {
    const r = (await buildReport('breakglass-activity', { store, period })) as ActivityReport;
    expect(Object.keys(r)).toEqual(['report', 'from', 'to', 'digest', 'totals', 'sessions', 'attempts']);
    expect(r).toMatchObject({ report: 'breakglass-activity', from: '2026-03-10T00:00:00.000Z', to: '2026-03-12T00:00:00.000Z' });
    expect(r.totals).toEqual({
      sessions: 4,
      authorized: 1,
      unauthorized: 3,
      attempts: 1,
      revocations: 3,
      actions: 12,
      logValidationFailures: 0,
    });
    expect(byIdentityStart(r.sessions)).toEqual([
      'aws-breakglass-ops@09:10',
      'aws-breakglass-ops@13:10',
      'okta-emergency-admin@18:05',
      'aws-root@22:00',
    ]);
    const [s1, s2, s3, s4] = r.sessions;
    expect(s1).toMatchObject({
      verdict: 'authorized',
      reason: null,
      ticketId: 'T-100',
      approvers: ['bob@example.com'],
      start: '2026-03-10T09:10:00.000Z',
      end: '2026-03-10T09:40:00.000Z',
      durationMs: 1_800_000,
      events: 3,
      activity: { command: 0, data: 1, config: 0 },
      timeToRevokeMs: null,
      revocation: null,
    });
    expect(s1!.timeToDetectMs).toBeGreaterThanOrEqual(0);
    expect(s1!.timeToDetectMs).toBeLessThan(60_000);
    // Began under T-101, turned unauthorized at 13:45 when the window had closed.
    expect(s2).toMatchObject({ verdict: 'unauthorized', reason: 'outside_window', events: 3, revocation: 'manual', timeToRevokeMs: null });
    expect(s2!.timeToDetectMs).toBeGreaterThanOrEqual(35 * 60_000);
    expect(s3).toMatchObject({
      verdict: 'unauthorized',
      reason: 'self_approved',
      ticketId: 'T-103',
      approvers: [HOSTILE_REQUESTER],
      activity: { command: 0, data: 0, config: 1 },
    });
    expect(s4).toMatchObject({
      identity: 'aws-root',
      verdict: 'unauthorized',
      reason: 'no_ticket',
      ticketId: null,
      events: 3,
      activity: { command: 0, data: 1, config: 1 },
    });
    for (const s of r.sessions)
      expect(Object.keys(s)).toEqual([
        'sessionId',
        'identity',
        'source',
        'principal',
        'verdict',
        'reason',
        'ticketId',
        'requester',
        'approvers',
        'account',
        'org',
        'cluster',
        'sourceIps',
        'firstEventId',
        'start',
        'end',
        'durationMs',
        'events',
        'activity',
        'timeToDetectMs',
        'timeToRevokeMs',
        'revocation',
        'ticket',
        'actions',
        'logValidation',
      ]);
  });

  it('restricts to sessions starting in the period', async () => {
    const r = (await buildReport('breakglass-activity', {
      store,
      period: parsePeriod('2026-03-10T12:00:00Z', '2026-03-10T20:00:00Z'),
    })) as ActivityReport;
    expect(byIdentityStart(r.sessions)).toEqual(['aws-breakglass-ops@13:10', 'okta-emergency-admin@18:05']);
    expect(r.totals).toMatchObject({ sessions: 2, authorized: 0, unauthorized: 2, attempts: 0 });
  });
});

describe('unauthorized-use', () => {
  it('gives each incident its reason, response times and revocation records', async () => {
    const r = (await buildReport('unauthorized-use', { store, period })) as UnauthorizedReport;
    expect(r.totals).toEqual({
      incidents: 3,
      revoked: 0,
      failed: 0,
      notRevocable: 0,
      manual: 3,
      unrevoked: 0,
      verified: 0,
      ineffective: 0,
    });
    expect(r.incidents.map((i) => [i.identity, i.reason])).toEqual([
      ['aws-breakglass-ops', 'outside_window'],
      ['okta-emergency-admin', 'self_approved'],
      ['aws-root', 'no_ticket'],
    ]);
    const root = r.incidents[2]!;
    expect(root).toMatchObject({
      source: 'cloudtrail',
      principal: 'Root',
      account: '111122223333',
      sourceIps: ['203.0.113.77'],
      revocation: 'manual',
    });
    expect(root.detectedAt).not.toBeNull();
    expect(root.revocations).toHaveLength(1);
    expect(root.revocations[0]).toMatchObject({ target: 'manual', outcome: 'manual', attempts: 0, timeToRevokeMs: null });
    expect(root.revocations[0]!.detail).toMatch(/manual/);
  });
});

describe('ticket-coverage', () => {
  it('finds unused tickets, uses without tickets, self-approvals and window overruns', async () => {
    const r = (await buildReport('ticket-coverage', { store, period })) as CoverageReport;
    expect(r.totals).toEqual({ tickets: 4, unusedTickets: 1, usesWithoutTicket: 1, selfApprovals: 1, earlyUses: 0, windowOverruns: 1 });
    expect(r.findings.map((f) => [f.kind, f.ticketId])).toEqual([
      ['self_approval', 'T-103'],
      ['unused_ticket', 'T-102'],
      ['use_without_ticket', null],
      ['window_overrun', 'T-101'],
    ]);
    // A self-approval is a finding about its use: the session, in the period it started in.
    expect(r.findings[0]).toMatchObject({
      requester: HOSTILE_REQUESTER,
      approvers: [HOSTILE_REQUESTER],
      uses: null,
      start: '2026-03-10T18:05:00.000Z',
    });
    expect(r.findings[0]!.sessionId).toMatch(/^bgs-/);
    expect(r.findings[1]).toMatchObject({ identities: ['k8s-breakglass'], uses: 0, notAfter: '2026-03-10T16:00:00.000Z' });
    expect(r.findings[2]).toMatchObject({ identities: ['aws-root'], reason: 'no_ticket', start: '2026-03-10T22:00:00.000Z' });
    expect(r.findings[3]).toMatchObject({ identities: ['aws-breakglass-ops'], end: '2026-03-10T13:45:00.000Z', overrunMs: 15 * 60_000 });
  });
});

describe('rotation-compliance', () => {
  it('recognises rotations per credential kind after each use and by age', async () => {
    const r = (await buildReport('rotation-compliance', {
      store,
      period,
      rotation: { afterUseHours: 24, maxAgeDays: 90 },
    })) as RotationReport;
    const rows = r.findings.map((f) => [f.check, f.identity, f.kind, f.status, f.evidence]);
    expect(rows).toEqual([
      ['after-use', 'aws-breakglass-ops', 'aws-iam-user', 'rotated', 'iam:UpdateLoginProfile'],
      ['after-use', 'aws-breakglass-ops', 'aws-iam-user', 'late', 'iam:CreateAccessKey+DeleteAccessKey'],
      ['after-use', 'aws-root', 'aws-root', 'missing', null],
      ['after-use', 'okta-emergency-admin', 'okta-user', 'rotated', 'user.account.reset_password'],
      ['max-age', 'aws-breakglass-ops', 'aws-iam-user', 'ok', 'iam:CreateAccessKey+DeleteAccessKey'],
      // No rotation of Root seen, and the store's history of the account is 2 days, not 90: nothing proves it old.
      ['max-age', 'aws-root', 'aws-root', 'no_history', null],
      ['max-age', 'okta-emergency-admin', 'okta-user', 'ok', 'user.account.reset_password'],
    ]);
    expect(r.totals).toEqual({ credentials: 3, uses: 4, rotated: 2, late: 1, missing: 1, pending: 0, overdue: 0, noHistory: 1 });
    expect(r.findings[1]).toMatchObject({
      usedAt: '2026-03-10T13:45:00.000Z',
      dueBy: '2026-03-11T13:45:00.000Z',
      rotatedAt: '2026-03-11T20:05:00.000Z',
    });
  });

  it('uses no evidence after the period: a due date still ahead is pending, and a longer grace turns late into rotated', async () => {
    const early = (await buildReport('rotation-compliance', { store, period: parsePeriod('2026-03-10', '2026-03-11') })) as RotationReport;
    expect(early.findings.filter((f) => f.check === 'after-use').map((f) => f.status)).toEqual([
      'rotated',
      'pending',
      'pending',
      'pending',
    ]);
    const lenient = (await buildReport('rotation-compliance', {
      store,
      period,
      rotation: { afterUseHours: 48, maxAgeDays: 90 },
    })) as RotationReport;
    expect(lenient.findings[1]!.status).toBe('rotated');
    expect(lenient.afterUseHours).toBe(48);
  });
});

describe('digest', () => {
  it('verifies an untouched copy and fails a tampered one', async () => {
    for (const name of ['breakglass-activity', 'unauthorized-use', 'ticket-coverage', 'rotation-compliance']) {
      const r = await buildReport(name, { store, period });
      const copy = JSON.parse(renderReport(r, 'json').text);
      expect(verifyDigest(copy)).toBe(true);
      // Key order does not matter, content does.
      expect(verifyDigest(Object.fromEntries(Object.entries(copy).reverse()))).toBe(true);
      const rowsKey = Object.keys(copy).find((k) => Array.isArray(copy[k]))!;
      const tampered = structuredClone(copy);
      tampered[rowsKey].pop();
      expect(verifyDigest(tampered)).toBe(false);
      const totals = structuredClone(copy);
      totals.totals[Object.keys(totals.totals)[0]!] += 1;
      expect(verifyDigest(totals)).toBe(false);
      expect(verifyDigest({ ...copy, digest: 'f'.repeat(64) })).toBe(false);
    }
  });

  it('is the same when the report is built again', async () => {
    const a = await buildReport('breakglass-activity', { store, period });
    const b = await buildReport('breakglass-activity', { store, period });
    expect(a.digest).toBe(b.digest);
    expect(a.digest).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('formats', () => {
  it('CSV is RFC 4180: CRLF, header, quoted fields with doubled quotes', async () => {
    const r = await buildReport('ticket-coverage', { store, period });
    const csv = renderReport(r, 'csv').text;
    expect(csv.endsWith('\r\n')).toBe(true);
    expect(csv.replace(/\r\n/g, '')).not.toMatch(/\n|\r/);
    const lines = csv.split('\r\n');
    expect(lines[0]).toBe(
      'kind,ticketId,identities,sessionId,requester,approvers,notBefore,notAfter,start,end,uses,earlyMs,overrunMs,reason',
    );
    expect(lines[1]).toMatch(
      /^self_approval,T-103,okta-emergency-admin,bgs-[0-9a-f]{20},"<b>Mallory<\/b>, ""ops"" & co","<b>Mallory<\/b>, ""ops"" & co",2026-03-10T18:00:00\.000Z,2026-03-10T19:00:00\.000Z,2026-03-10T18:05:00\.000Z,2026-03-10T18:10:00\.000Z,,,,self_approved$/,
    );
    expect(lines).toHaveLength(6);
  });

  it('HTML escapes every value and draws an inline SVG chart with no external resources', async () => {
    const r = await buildReport('ticket-coverage', { store, period });
    const html = renderReport(r, 'html').text;
    expect(html).not.toContain('<b>Mallory</b>');
    expect(html).toContain('&lt;b&gt;Mallory&lt;/b&gt;, &quot;ops&quot; &amp; co');
    expect(html).toMatch(/<svg [^>]*>.*<rect /s);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain(r.digest);
  });
});

describe('glasswatch report (CLI)', () => {
  it('run writes the chosen format to --out', async () => {
    const out = join(dir, 'activity.json');
    await store.close();
    try {
      expect(
        await reportCommand([
          'run',
          'breakglass-activity',
          '--from',
          PERIOD.from,
          '--to',
          PERIOD.to,
          '--format',
          'json',
          '--out',
          out,
          '--store',
          fixture.store,
        ]),
      ).toBe(0);
      const json = JSON.parse(readFileSync(out, 'utf8'));
      expect(json.totals.sessions).toBe(4);
      expect(verifyDigest(json)).toBe(true);
      const csv = join(dir, 'rotation.csv');
      expect(
        await reportCommand([
          'run',
          'rotation-compliance',
          '--from',
          PERIOD.from,
          '--to',
          PERIOD.to,
          '--format',
          'csv',
          '--out',
          csv,
          '--config',
          fixture.config,
        ]),
      ).toBe(0);
      expect(readFileSync(csv, 'utf8').split('\r\n')[0]).toBe(
        'check,identity,principal,kind,scope,sessionId,usedAt,dueBy,rotatedAt,evidence,historySince,status',
      );
    } finally {
      store = openStore({ kind: 'chdb', path: fixture.store });
    }
  });

  it('rejects a bad name, bad dates, from >= to and a bad format with exit 2', async () => {
    const base = ['--store', fixture.store];
    expect(await reportCommand(['run', 'nope', '--from', '2026-03-10', '--to', '2026-03-11', ...base])).toBe(2);
    expect(await reportCommand(['run', 'breakglass-activity', '--from', 'yesterday', '--to', '2026-03-11', ...base])).toBe(2);
    expect(await reportCommand(['run', 'breakglass-activity', '--from', '2026-03-10T10:00:00', '--to', '2026-03-11', ...base])).toBe(2);
    expect(await reportCommand(['run', 'breakglass-activity', '--from', '2026-03-11', '--to', '2026-03-11', ...base])).toBe(2);
    expect(await reportCommand(['run', 'breakglass-activity', '--from', '2026-03-12', '--to', '2026-03-11', ...base])).toBe(2);
    expect(
      await reportCommand(['run', 'breakglass-activity', '--from', '2026-03-10', '--to', '2026-03-11', '--format', 'pdf', ...base]),
    ).toBe(2);
    expect(await reportCommand(['frobnicate'])).toBe(2);
    expect(await reportCommand(['send', 'breakglass-activity', '--from', '2026-03-10', '--to', '2026-03-11', ...base])).toBe(2);
  });
});
