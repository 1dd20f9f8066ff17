import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { buildDetector } from '../../detectors/build.js';
import { oktaStandIn } from '../../detectors/revoke/standins.js';
import { bgRole, cloudtrail, iamUser, k8s, okta, root } from '../support/events.js';

const IDENTITIES = [
  { id: 'aws-root', source: 'cloudtrail', match: { 'userIdentity.type': 'Root' }, revocation: { mode: 'off' } },
  {
    id: 'aws-breakglass-role',
    source: 'cloudtrail',
    match: [
      { 'userIdentity.arn|contains': ':assumed-role/BreakGlass' },
      { eventName: 'AssumeRole', 'requestParameters.roleArn|endswith': ':role/BreakGlassAdmin' },
    ],
    revocation: { mode: 'manual' },
  },
  {
    id: 'okta-emergency-admin',
    source: 'okta',
    match: { 'actor.alternateId': 'emergency-admin@example.com' },
    revocation: { mode: 'off' },
  },
  {
    id: 'k8s-breakglass',
    source: 'k8s',
    match: [{ 'user.username': 'breakglass-admin' }, { 'user.groups': 'system:masters' }],
    revocation: { mode: 'off' },
  },
];

const ticket = (extra: Record<string, unknown> = {}) => ({
  id: 'CHG-1',
  identities: ['aws-breakglass-role'],
  requester: 'alice@example.com',
  approvers: ['bob@example.com'],
  status: 'approved',
  notBefore: '2026-11-20T09:00:00Z',
  notAfter: '2026-11-20T10:00:00Z',
  updatedAt: '2026-11-20T08:50:00Z',
  ...extra,
});

async function run(events: AuditEvent[], tickets: Record<string, unknown>[] = [], extraConfig: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'gw-det-'));
  const file = join(dir, 'tickets.jsonl');
  writeFileSync(file, tickets.map((t) => JSON.stringify(t)).join('\n'));
  const config = parseConfig({ identities: IDENTITIES, ...extraConfig }, 'test.yml');
  const alerts: Alert[] = [];
  const build = await buildDetector({
    config,
    store: null,
    log: silentLogger,
    clock: 'replay',
    ticketFiles: [file],
    onAlert: (a) => alerts.push(a),
  });
  const sorted = [...events].sort((a, b) => a.time.localeCompare(b.time));
  await build.detector.handle(sorted);
  await build.detector.flush();
  const of = (type: string) => alerts.filter((a) => a.type === type);
  return { alerts, of, detector: build.detector, sessions: [...build.detector.seen.values()] };
}

describe('verdicts', () => {
  it('an approved two-person ticket authorizes the session: one authorized alert, activity reviewed', async () => {
    const key = 'ASIABG1';
    const r = await run(
      [
        cloudtrail('2026-11-20T09:10:00Z', 'AssumeRole', iamUser('alice'), {
          requestParameters: { roleArn: 'arn:aws:iam::111122223333:role/BreakGlassAdmin', roleSessionName: 'alice' },
        }),
        cloudtrail('2026-11-20T09:11:00Z', 'ListUsers', bgRole(key)),
        cloudtrail('2026-11-20T09:12:00Z', 'GetSecretValue', bgRole(key), { requestParameters: { secretId: 'prod/db' } }),
        cloudtrail('2026-11-20T09:13:00Z', 'AttachUserPolicy', bgRole(key), {
          requestParameters: { userName: 'x', policyArn: 'arn:aws:iam::aws:policy/AdministratorAccess' },
        }),
      ],
      [ticket()],
    );
    expect(r.of('breakglass.authorized')).toHaveLength(1);
    expect(r.of('breakglass.unauthorized')).toHaveLength(0);
    expect(r.sessions).toHaveLength(1);
    expect(r.sessions[0]).toMatchObject({ verdict: 'authorized', ticketId: 'CHG-1', approvers: ['bob@example.com'], events: 4 });
    const categories = new Set(r.of('breakglass.activity').map((a) => a.category));
    expect(categories).toEqual(new Set(['command', 'data', 'config']));
    expect(r.sessions[0]!.activity.data).toBe(1);
    expect(r.sessions[0]!.activity.config).toBe(1);
    for (const a of r.of('breakglass.activity'))
      expect(a).toMatchObject({ sessionId: r.sessions[0]!.id, ticketId: 'CHG-1', ruleAuthor: 'glasswatch' });
  });

  const reasons: [string, Record<string, unknown>[]][] = [
    ['no_ticket', []],
    ['outside_window', [ticket({ notBefore: '2026-11-20T11:00:00Z', notAfter: '2026-11-20T12:00:00Z' })]],
    ['self_approved', [ticket({ approvers: ['alice@example.com'] })]],
    ['not_approved', [ticket({ status: 'requested' })]],
    ['revoked', [ticket(), ticket({ status: 'revoked', updatedAt: '2026-11-20T09:05:00Z' })]],
    ['out_of_scope', [ticket({ scope: { accounts: ['999999999999'] } })]],
  ];
  for (const [reason, tickets] of reasons) {
    it(`unauthorized with reason ${reason}: one alert per session, not per event`, async () => {
      const r = await run(
        [
          cloudtrail('2026-11-20T09:30:00Z', 'ListUsers', bgRole('ASIAX')),
          cloudtrail('2026-11-20T09:31:00Z', 'ListRoles', bgRole('ASIAX')),
        ],
        tickets,
      );
      expect(r.of('breakglass.unauthorized')).toHaveLength(1);
      expect(r.of('breakglass.unauthorized')[0]).toMatchObject({ reason, identity: 'aws-breakglass-role', severity: 'critical' });
      expect(r.sessions[0]).toMatchObject({ verdict: 'unauthorized', reason, events: 2 });
    });
  }

  it('activity after the ticket window closes turns the session unauthorized from that event on', async () => {
    const events = [
      cloudtrail('2026-11-20T09:50:00Z', 'ListUsers', bgRole('ASIAW')),
      cloudtrail('2026-11-20T09:59:59Z', 'ListRoles', bgRole('ASIAW')),
      cloudtrail('2026-11-20T10:05:00Z', 'CreateUser', bgRole('ASIAW')),
      cloudtrail('2026-11-20T10:06:00Z', 'DeleteUser', bgRole('ASIAW')),
    ];
    const r = await run(events, [ticket()]);
    expect(r.of('breakglass.authorized')).toHaveLength(1);
    const un = r.of('breakglass.unauthorized');
    expect(un).toHaveLength(1);
    expect(un[0]).toMatchObject({ reason: 'outside_window', ticketId: 'CHG-1' });
    expect(un[0]!.eventIds[0]).toBe(events[2]!.id);
    expect(un[0]!.eventIds).toContain(events[0]!.id);
    expect(r.sessions[0]).toMatchObject({ verdict: 'unauthorized', unauthorizedEventId: events[2]!.id, events: 4 });
  });

  it('graceSeconds lets a late approval cover the use', async () => {
    const late = [ticket({ status: 'requested', updatedAt: '2026-11-20T09:00:00Z' }), ticket({ updatedAt: '2026-11-20T09:30:30Z' })];
    const events = [cloudtrail('2026-11-20T09:30:00Z', 'ListUsers', bgRole('ASIAG'))];
    expect((await run(events, late)).of('breakglass.unauthorized')).toHaveLength(1);
    const withGrace = await run(events, late, { detector: { graceSeconds: 60 } });
    expect(withGrace.of('breakglass.unauthorized')).toHaveLength(0);
    expect(withGrace.of('breakglass.authorized')).toHaveLength(1);
  });
});

describe('attempts', () => {
  it('failed sign-ins are attempts: alerted, no session, never revoked', async () => {
    const r = await run([
      cloudtrail('2026-11-20T22:41:10Z', 'ConsoleLogin', root(), {
        responseElements: { ConsoleLogin: 'Failure' },
        errorMessage: 'Failed authentication',
      }),
      okta('2026-11-20T22:47:03Z', 'user.session.start', 'emergency-admin@example.com', {
        outcome: { result: 'FAILURE', reason: 'INVALID_CREDENTIALS' },
      }),
      k8s(
        '2026-11-20T22:52:40Z',
        'list',
        { username: 'breakglass-admin', groups: ['system:masters'] },
        { resource: 'secrets', namespace: 'kube-system' },
        401,
      ),
    ]);
    expect(
      r
        .of('breakglass.attempt')
        .map((a) => a.identity)
        .sort(),
    ).toEqual(['aws-root', 'k8s-breakglass', 'okta-emergency-admin']);
    expect(r.of('breakglass.unauthorized')).toHaveLength(0);
    expect(r.sessions).toHaveLength(0);
    expect(r.detector.revocationRecords).toHaveLength(0);
  });
});

describe('sessions', () => {
  it('AWS: a console sign-in, its console key and a key created in it are one session', async () => {
    const ip = { sourceIPAddress: '203.0.113.77' };
    const r = await run([
      cloudtrail('2026-11-20T22:41:52Z', 'ConsoleLogin', root(), { ...ip, responseElements: { ConsoleLogin: 'Success' } }),
      cloudtrail('2026-11-20T22:42:30Z', 'ListUsers', root('ASIACONSOLE'), ip),
      cloudtrail('2026-11-20T22:44:12Z', 'StopLogging', root('AKIANEWKEY'), ip),
      // another root session from elsewhere, an hour later: a new session
      cloudtrail('2026-11-20T23:50:00Z', 'ListUsers', root('AKIAOTHER'), { sourceIPAddress: '192.0.2.1' }),
    ]);
    expect(r.sessions.map((s) => s.events)).toEqual([3, 1]);
    expect(r.of('breakglass.unauthorized')).toHaveLength(2);
  });

  it('Okta: sessions follow externalSessionId', async () => {
    const login = 'emergency-admin@example.com';
    const r = await run([
      okta('2026-11-20T22:47:41Z', 'user.session.start', login, { authenticationContext: { externalSessionId: 'A' } }),
      okta('2026-11-20T22:48:10Z', 'user.session.access_admin_app', login, { authenticationContext: { externalSessionId: 'A' } }),
      okta('2026-11-20T22:49:00Z', 'user.session.start', login, {
        authenticationContext: { externalSessionId: 'B' },
        client: { ipAddress: '192.0.2.50' },
      }),
    ]);
    expect(r.sessions.map((s) => s.events).sort()).toEqual([1, 2]);
  });

  it('Kubernetes: user and source IP with an idle gap', async () => {
    const u = { username: 'breakglass-admin', groups: ['system:masters'] };
    const r = await run(
      [
        k8s('2026-11-20T22:53:00Z', 'list', u, { resource: 'secrets', namespace: 'payments' }),
        k8s('2026-11-20T22:54:00Z', 'get', u, { resource: 'secrets', namespace: 'payments', name: 'db' }),
        k8s('2026-11-20T23:30:00Z', 'list', u, { resource: 'pods', namespace: 'payments' }),
      ],
      [],
      { detector: { sessionIdleSeconds: 600 } },
    );
    expect(r.sessions.map((s) => s.events)).toEqual([2, 1]);
    expect(r.sessions[0]!.cluster).toBe('prod-eu1');
  });
});

describe('revocation from the detector', () => {
  it('an unauthorized Okta session is cut off through the Okta API, once', async () => {
    const stand = await oktaStandIn({ token: 't0k', users: ['00u-emergency-admin@example.com'] });
    try {
      const identities = IDENTITIES.map((i) =>
        i.id === 'okta-emergency-admin' ? { ...i, revocation: { mode: 'auto', targets: ['okta'] } } : i,
      );
      const dir = mkdtempSync(join(tmpdir(), 'gw-det-'));
      const config = parseConfig({ identities, revocation: { okta: { orgUrl: stand.url, token: 't0k' } } }, 'test.yml');
      const build = await buildDetector({
        config,
        store: null,
        log: silentLogger,
        clock: 'replay',
        ticketFiles: [],
        alertsOut: join(dir, 'alerts.jsonl'),
      });
      const login = 'emergency-admin@example.com';
      await build.detector.handle([
        okta('2026-11-20T22:47:41Z', 'user.session.start', login),
        okta('2026-11-20T22:48:10Z', 'user.account.privilege.grant', login, {
          target: [{ id: '00umallory', type: 'User', alternateId: 'mallory@example.com' }],
        }),
      ]);
      await build.detector.flush();
      expect(build.detector.revocationRecords).toHaveLength(1);
      expect(build.detector.revocationRecords[0]).toMatchObject({ target: 'okta', outcome: 'revoked', identity: 'okta-emergency-admin' });
      expect(stand.requests.map((q) => `${q.method} ${q.path}`)).toEqual([
        `DELETE /api/v1/users/${encodeURIComponent('00u-emergency-admin@example.com')}/sessions?oauthTokens=true`,
      ]);
    } finally {
      await stand.close();
    }
  });
});

describe('live restart', () => {
  it('a restarted live detector continues the open session instead of alerting on it again', async () => {
    const { openStore, migrate } = await import('../../core/store/index.js');
    const dir = mkdtempSync(join(tmpdir(), 'gw-restart-'));
    const store = openStore({ kind: 'chdb', path: join(dir, 'store') });
    try {
      await migrate(store);
      const config = parseConfig({ identities: IDENTITIES }, 'test.yml');
      const now = Date.now();
      const at = (s: number) => new Date(now - s * 1000).toISOString();
      const ip = { sourceIPAddress: '203.0.113.9' };
      const alerts: Alert[] = [];
      const first = await buildDetector({ config, store, log: silentLogger, clock: 'live', onAlert: (a) => alerts.push(a) });
      await first.detector.handle([
        cloudtrail(at(120), 'ListUsers', root('AKIAR1'), ip),
        cloudtrail(at(110), 'ListRoles', root('AKIAR1'), ip),
      ]);
      await first.detector.flush();
      expect(alerts.filter((a) => a.type === 'breakglass.unauthorized')).toHaveLength(1);

      // "restart": a new detector over the same store
      const second = await buildDetector({ config, store, log: silentLogger, clock: 'live', onAlert: (a) => alerts.push(a) });
      expect(second.detector.sessions.openCount).toBe(1);
      await second.detector.handle([cloudtrail(at(60), 'CreateUser', root('AKIAR1'), ip)]);
      await second.detector.flush();
      expect(alerts.filter((a) => a.type === 'breakglass.unauthorized')).toHaveLength(1);
      const rows = await (
        await store.client.query({
          query: 'SELECT session_id, events FROM sessions ORDER BY version DESC LIMIT 1 BY session_id',
          format: 'JSONEachRow',
        })
      ).json<{ session_id: string; events: number }>();
      expect(rows).toHaveLength(1);
      expect(Number(rows[0]!.events)).toBe(3);
    } finally {
      await store.close();
    }
  });
});

describe('live: a session ends when its partition moves on in event time', () => {
  it('raises breakglass.session_closed once the idle gap passed at the event-time watermark, and PagerDuty resolves the incident', async () => {
    const { pagerDutyEvent } = await import('../../detectors/alerts/outputs/pagerduty.js');
    const config = parseConfig({ identities: IDENTITIES, detector: { sessionIdleSeconds: 600 } }, 'test.yml');
    const alerts: Alert[] = [];
    const build = await buildDetector({ config, store: null, log: silentLogger, clock: 'live', onAlert: (a) => alerts.push(a) });
    const t0 = Date.parse('2026-11-20T10:00:00Z');
    const at = (s: number) => new Date(t0 + s * 1000).toISOString();
    const ip = { sourceIPAddress: '203.0.113.9' };
    const other = (s: number) => cloudtrail(at(s), 'ListBuckets', iamUser('carol'), { sourceIPAddress: '198.51.100.1' });
    await build.detector.handle([cloudtrail(at(0), 'ListUsers', root('AKIAR1'), ip), other(60)]);
    await build.detector.flush();
    expect(alerts.filter((a) => a.type === 'breakglass.unauthorized')).toHaveLength(1);
    // Other traffic within the gap: the session stays open (and an old-timestamp stream is not closed by the wall clock).
    await build.detector.handle([other(590)]);
    await build.detector.flush();
    expect(alerts.filter((a) => a.type === 'breakglass.session_closed')).toEqual([]);
    expect(build.detector.sessions.openCount).toBe(1);
    // The partition's event time passes the gap: the session ends, once.
    await build.detector.handle([other(700)]);
    await build.detector.flush();
    await build.detector.handle([other(800)]);
    await build.detector.flush();
    const closed = alerts.filter((a) => a.type === 'breakglass.session_closed');
    expect(closed).toHaveLength(1);
    const unauthorized = alerts.find((a) => a.type === 'breakglass.unauthorized')!;
    expect(closed[0]!.sessionId).toBe(unauthorized.sessionId);
    expect(closed[0]!.severity).toBe('informational');
    expect(closed[0]!.time).toBe(at(0));
    expect(build.detector.sessions.openCount).toBe(0);
    const trigger = pagerDutyEvent(unauthorized as never, 'k'.repeat(32), 'native');
    const resolve = pagerDutyEvent(closed[0]! as never, 'k'.repeat(32), 'native');
    expect(trigger.event_action).toBe('trigger');
    expect(resolve).toEqual({ routing_key: 'k'.repeat(32), event_action: 'resolve', dedup_key: trigger.dedup_key });
  });

  it('replay raises no session_closed (its output is unchanged)', async () => {
    const config = parseConfig({ identities: IDENTITIES, detector: { sessionIdleSeconds: 600 } }, 'test.yml');
    const alerts: Alert[] = [];
    const build = await buildDetector({ config, store: null, log: silentLogger, clock: 'replay', onAlert: (a) => alerts.push(a) });
    const t0 = Date.parse('2026-11-20T10:00:00Z');
    const at = (s: number) => new Date(t0 + s * 1000).toISOString();
    await build.detector.handle([
      cloudtrail(at(0), 'ListUsers', root('AKIAR1'), { sourceIPAddress: '203.0.113.9' }),
      cloudtrail(at(5000), 'ListUsers', root('AKIAR1'), { sourceIPAddress: '203.0.113.9' }),
    ]);
    await build.detector.flush();
    expect(alerts.filter((a) => a.type === 'breakglass.session_closed')).toEqual([]);
    expect(alerts.filter((a) => a.type === 'breakglass.unauthorized')).toHaveLength(2);
  });
});
