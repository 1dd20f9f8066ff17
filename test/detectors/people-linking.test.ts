// One person across planes, in replay over the real store (chDB) with the Okta, IAM and Kubernetes
// stand-ins: an Okta admin who federates into AWS (SAML) and Kubernetes (OIDC) is linked, and with
// `revocation.followLinked` followed (the AWS and Okta revocations are made, each its own record
// naming the session it followed from); without it the links are only listed; unrelated people are
// never linked; a bad mapping is a config error naming the field.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import type { Store } from '../../core/store/client.js';
import { migrate, openStore } from '../../core/store/index.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { formatAlert } from '../../detectors/alerts/formats/index.js';
import { buildDetector } from '../../detectors/build.js';
import { iamStandIn, k8sStandIn, oktaStandIn } from '../../detectors/revoke/standins.js';
import { cloudtrail, iamUser, k8s, okta } from '../support/events.js';
import { ACCOUNT, federated, identities, oidcUser, PEOPLE, samlLogin } from './people-support.js';

const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

let opened: Store | null = null;
async function theStore(): Promise<Store> {
  if (opened) return opened;
  const store = openStore({ kind: 'chdb', path: join(mkdtempSync(join(tmpdir(), 'gw-people-')), 'store') });
  closers.unshift(() => store.close());
  await migrate(store);
  opened = store;
  return store;
}

const ADMIN = 'emergency-admin@example.com';
const ALICE = 'alice@example.com';
const at = (hhmmss: string) => `2026-11-20T${hhmmss}Z`;

async function replay(events: AuditEvent[], o: { followLinked: boolean; people?: unknown; restartAt?: number }) {
  const iam = await iamStandIn({ accessKeyId: 'AKIAGLASSWATCH', roles: ['OktaAdmins', 'BreakGlassAdmin', 'Developers'] });
  const oktaApi = await oktaStandIn({ token: 't0k', users: [`00u-${ADMIN}`, `00u-${ALICE}`] });
  const k8sApi = await k8sStandIn({
    token: 'sa-token',
    bindings: [
      { kind: 'ClusterRoleBinding', name: 'oidc-alice', role: 'cluster-admin', subjects: [{ kind: 'User', name: oidcUser(ALICE) }] },
      { kind: 'ClusterRoleBinding', name: 'oidc-admin', role: 'cluster-admin', subjects: [{ kind: 'User', name: oidcUser(ADMIN) }] },
    ],
  });
  closers.push(iam.close, oktaApi.close, k8sApi.close);
  const store = await theStore();
  for (const t of ['revocations', 'alerts', 'alert_deliveries', 'sessions']) await store.client.command({ query: `TRUNCATE TABLE ${t}` });
  const config = parseConfig(
    {
      identities: identities(o.followLinked),
      detector: { people: o.people ?? PEOPLE },
      revocation: {
        aws: { endpoint: iam.url, accessKeyId: 'AKIAGLASSWATCH', secretAccessKey: 'secret' },
        okta: { orgUrl: oktaApi.url, token: 't0k' },
        k8s: { server: k8sApi.url, token: 'sa-token' },
      },
    },
    'test.yml',
  );
  const alerts: Alert[] = [];
  const make = () => buildDetector({ config, store, log: silentLogger, clock: 'replay', onAlert: (a) => alerts.push(a) });
  let build = await make();
  const sorted = [...events].sort((a, b) => a.time.localeCompare(b.time));
  if (o.restartAt !== undefined) {
    // A restart: a new detector takes the open sessions back (as from the changelog), the linker starts empty.
    await build.detector.handle(sorted.slice(0, o.restartAt));
    await build.detector.flush();
    const open = [...build.detector.seen.values()].map((s) => structuredClone(s));
    build = await make();
    build.detector.sessions.restore(open);
    for (const s of open) build.detector.seen.set(s.id, s);
  }
  await build.detector.handle(sorted.slice(o.restartAt ?? 0));
  await build.detector.flush();
  const sessions = await (
    await store.client.query({
      query: `SELECT session_id, identity, person_id, linked_session_ids FROM sessions FINAL ORDER BY start`,
      format: 'JSONEachRow',
    })
  ).json<{ session_id: string; identity: string; person_id: string; linked_session_ids: string[] }>();
  const revocations = await (
    await store.client.query({
      query: `SELECT revocation_id, session_id, target, outcome, followed_from FROM revocations FINAL ORDER BY revocation_id`,
      format: 'JSONEachRow',
    })
  ).json<{ revocation_id: string; session_id: string; target: string; outcome: string; followed_from: string }>();
  return {
    alerts,
    sessions,
    revocations,
    detector: build.detector,
    iam,
    oktaApi,
    k8sApi,
    of: (t: string) => alerts.filter((a) => a.type === t),
  };
}

/** The Okta admin signs in (break-glass, no ticket), then federates into AWS (SAML) and Kubernetes (OIDC). */
const adminNight = () => [
  okta(at('22:47:41'), 'user.session.start', ADMIN, { authenticationContext: { externalSessionId: 'idx-admin' } }),
  ...samlLogin(at('22:47:52'), ADMIN, 'OktaAdmins'),
  cloudtrail(at('22:48:30'), 'ListUsers', federated(ADMIN, 'OktaAdmins', '2026-11-20T22:47:52Z')),
  k8s(at('22:49:10'), 'list', { username: oidcUser(ADMIN), groups: ['oidc:admins', 'system:authenticated'] }, { resource: 'secrets' }),
];

/** Someone else, at the same time, in all three planes: never linked to the admin. */
const carol = () => [
  okta(at('22:47:45'), 'user.session.start', 'carol@example.com', { authenticationContext: { externalSessionId: 'idx-carol' } }),
  ...samlLogin(at('22:47:55'), 'carol@example.com', 'Developers'),
  k8s(at('22:49:20'), 'get', { username: oidcUser('carol@example.com'), groups: ['system:authenticated'] }, { resource: 'pods' }),
  // An IAM user whose name is the admin's local part: not the admin (no map entry says so).
  cloudtrail(at('22:48:40'), 'ListRoles', iamUser('emergency-admin')),
];

describe('one person across planes (replay)', () => {
  it('an Okta admin who federates into AWS (SAML) and Kubernetes (OIDC) is linked and, with followLinked, followed', async () => {
    const r = await replay([...adminNight(), ...carol()], { followLinked: true });
    const [unauthorized, ...more] = r.of('breakglass.unauthorized');
    expect(more).toHaveLength(0);
    expect(unauthorized).toMatchObject({ identity: 'okta-emergency-admin', linkedSessions: [] });

    // The AWS role session and the Kubernetes user came after the verdict: linked when seen, and followed.
    const session = r.detector.seen.get(unauthorized!.sessionId!)!;
    expect(session.personId).toBe(ADMIN);
    expect(session.linkedSessionIds).toHaveLength(2);
    const row = r.sessions.find((s) => s.session_id === session.id)!;
    expect(row).toMatchObject({ person_id: ADMIN, linked_session_ids: session.linkedSessionIds });

    // AWS: the admin's own SAML role session fenced (the documented deny narrowed by aws:userid), not
    // the whole OktaAdmins role (other admins share it) and not carol's role.
    expect(r.iam.calls.map((c) => [c.Action, c.RoleName])).toEqual([['PutRolePolicy', 'OktaAdmins']]);
    expect(r.iam.calls[0]!.PolicyName).toMatch(/^GlasswatchRevokeSession-[0-9a-f]{16}$/);
    const policy = JSON.parse(r.iam.calls[0]!.PolicyDocument!) as { Statement: { Condition: Record<string, unknown> }[] };
    expect(Object.keys(policy.Statement[0]!.Condition.DateLessThan as object)).toEqual(['aws:TokenIssueTime']);
    expect(policy.Statement[0]!.Condition.StringEquals).toEqual({
      'aws:userid': expect.stringMatching(new RegExp(`^AROA[A-Z0-9]+:${ADMIN}$`)),
    });
    // Okta: the admin's own sessions cleared once (its own revocation); carol's never.
    expect(r.oktaApi.requests.map((q) => `${q.method} ${q.path}`)).toEqual([
      `DELETE /api/v1/users/${encodeURIComponent(`00u-${ADMIN}`)}/sessions?oauthTokens=true`,
    ]);
    // Kubernetes: only the admin's OIDC user's binding is gone.
    expect(r.k8sApi.bindings.map((b) => b.name)).toEqual(['oidc-alice']);

    // Each followed revocation is its own record naming the session it followed from.
    const followed = r.revocations.filter((x) => x.followed_from);
    expect(followed.map((x) => [x.target, x.outcome, x.followed_from])).toEqual(
      expect.arrayContaining([
        ['aws', 'revoked', session.id],
        ['k8s', 'revoked', session.id],
      ]),
    );
    expect(followed).toHaveLength(2);
    for (const x of followed) expect(session.linkedSessionIds).toContain(x.session_id);
    const alerts = r.of('breakglass.revocation').filter((a) => a.summary.includes('linked'));
    expect(alerts).toHaveLength(2);
    for (const a of alerts) expect(a.summary).toContain(`of the person behind unauthorized session ${session.id}`);

    // Found after the unauthorized alert: each link is its own alert, urgent, saying it is being revoked.
    const news = r.of('breakglass.linked_session');
    expect(news.map((a) => [a.source, a.sessionId, a.linkedSessions?.[0]?.sessionId])).toEqual([
      ['cloudtrail', session.id, session.linkedSessionIds![0]],
      ['k8s', session.id, session.linkedSessionIds![1]],
    ]);
    for (const a of news) expect(a).toMatchObject({ severity: 'high', identity: 'okta-emergency-admin', reason: 'no_ticket' });
    expect(news[0]!.summary).toContain('arn:aws:sts::111122223333:assumed-role/OktaAdmins/emergency-admin@example.com');
    expect(news[0]!.summary).toContain('revoking it too');

    // carol is linked to nobody and nothing of hers was revoked.
    expect(r.of('breakglass.revocation_ineffective')).toHaveLength(0);
    expect(r.sessions.every((s) => s.person_id !== 'carol@example.com')).toBe(true);
    expect(r.detector.people!.totals).toMatchObject({ linked: 2, followed: 2 });
  });

  it('a followed revocation is verified from the later logs too: the fenced role session still working is ineffective', async () => {
    // 128 s after the fence (AWS allowance 60 s): the role session's credentials still work.
    const still = cloudtrail(at('22:50:00'), 'GetSecretValue', federated(ADMIN, 'OktaAdmins', '2026-11-20T22:47:52Z'));
    const r = await replay([...adminNight(), still], { followLinked: true });
    const [ineffective, ...more] = r.of('breakglass.revocation_ineffective');
    expect(more).toHaveLength(0);
    const aws = r.revocations.find((x) => x.followed_from && x.target === 'aws')!;
    expect(ineffective).toMatchObject({ identity: 'okta-emergency-admin', sessionId: aws.session_id, eventIds: [still.id] });
    expect(ineffective!.summary).toContain('ASIA');
    expect(r.detector.verifier.totals).toMatchObject({ ineffective: 1 });
  });

  it('an unauthorized AWS break-glass session lists the Okta and Kubernetes sessions before it, and follows them (Okta revoked)', async () => {
    const events = [
      okta(at('22:00:00'), 'user.session.start', ALICE, { authenticationContext: { externalSessionId: 'idx-alice' } }),
      k8s(at('22:00:30'), 'list', { username: oidcUser(ALICE), groups: ['system:authenticated'] }, { resource: 'pods' }),
      ...samlLogin(at('22:01:00'), ALICE, 'BreakGlassAdmin'),
      cloudtrail(at('22:01:30'), 'ListUsers', federated(ALICE, 'BreakGlassAdmin', '2026-11-20T22:01:00Z')),
      ...carol(),
    ];
    const r = await replay(events, { followLinked: true });
    const aws = r.of('breakglass.unauthorized').find((a) => a.identity === 'aws-breakglass-role')!;
    expect(aws.linkedSessions?.map((l) => [l.source, l.principal, l.personId, l.breakGlass])).toEqual([
      ['okta', ALICE, ALICE, false],
      ['k8s', oidcUser(ALICE), ALICE, false],
    ]);
    // The SOC formats carry them: ECS related.user for the pivot, OCSF in unmapped.
    expect((formatAlert(aws, 'ecs') as unknown as { related: { user: string[] } }).related.user).toEqual(
      expect.arrayContaining([ALICE, oidcUser(ALICE)]),
    );
    expect((formatAlert(aws, 'ocsf') as unknown as { unmapped: { linked_sessions: unknown[] } }).unmapped.linked_sessions).toHaveLength(2);
    // Followed: alice's Okta sessions cleared (her Okta user id, read from her Okta session's events).
    expect(r.oktaApi.requests.map((q) => `${q.method} ${q.path}`)).toEqual([
      `DELETE /api/v1/users/${encodeURIComponent(`00u-${ALICE}`)}/sessions?oauthTokens=true`,
    ]);
    expect(r.k8sApi.bindings.map((b) => b.name)).toEqual(['oidc-admin']);
    const followed = r.revocations.filter((x) => x.followed_from === aws.sessionId);
    expect(followed.map((x) => [x.target, x.outcome]).sort()).toEqual([
      ['k8s', 'revoked'],
      ['okta', 'revoked'],
    ]);
    // its own revocation: the role fenced once
    expect(r.iam.calls.map((c) => c.RoleName)).toEqual(['BreakGlassAdmin']);
  });

  it('after a restart, an unauthorized session taken back still follows the links found from then on', async () => {
    const events = [
      okta(at('22:47:41'), 'user.session.start', ADMIN, { authenticationContext: { externalSessionId: 'idx-admin' } }),
      okta(at('22:47:44'), 'user.session.access_admin_app', ADMIN, { authenticationContext: { externalSessionId: 'idx-admin' } }),
      ...samlLogin(at('22:47:52'), ADMIN, 'OktaAdmins'),
    ];
    const r = await replay(events, { followLinked: true, restartAt: 1 });
    const unauthorized = r.of('breakglass.unauthorized');
    expect(unauthorized).toHaveLength(1);
    expect(r.iam.calls.map((c) => [c.Action, c.RoleName])).toEqual([['PutRolePolicy', 'OktaAdmins']]);
    const followed = r.revocations.filter((x) => x.followed_from);
    expect(followed.map((x) => [x.target, x.outcome, x.followed_from])).toEqual([['aws', 'revoked', unauthorized[0]!.sessionId]]);
    // The revocation alert hangs off the same unauthorized alert id as before the restart.
    const alert = r.of('breakglass.revocation').find((a) => a.summary.includes('linked aws session'))!;
    expect(alert.sessionId).toBe(unauthorized[0]!.sessionId);
    expect(r.oktaApi.requests.filter((q) => q.method === 'DELETE')).toHaveLength(1);
  });

  it('without followLinked the links are only listed: no revocation beyond the identity’s own', async () => {
    const events = [
      okta(at('22:00:00'), 'user.session.start', ALICE, { authenticationContext: { externalSessionId: 'idx-alice' } }),
      ...samlLogin(at('22:01:00'), ALICE, 'BreakGlassAdmin'),
      cloudtrail(at('22:01:30'), 'ListUsers', federated(ALICE, 'BreakGlassAdmin', '2026-11-20T22:01:00Z')),
      ...adminNight(),
    ];
    const r = await replay(events, { followLinked: false });
    const aws = r.of('breakglass.unauthorized').find((a) => a.identity === 'aws-breakglass-role')!;
    expect(aws.linkedSessions?.map((l) => l.principal)).toEqual([ALICE]);
    expect(r.revocations.filter((x) => x.followed_from)).toHaveLength(0);
    expect(r.oktaApi.requests.map((q) => q.path)).toEqual([
      `/api/v1/users/${encodeURIComponent(`00u-${ADMIN}`)}/sessions?oauthTokens=true`,
    ]);
    expect(r.iam.calls.map((c) => c.RoleName)).toEqual(['BreakGlassAdmin']);
    // The admin's later sessions are linked on its row all the same, and told: nobody revokes them.
    const admin = r.sessions.find((s) => s.identity === 'okta-emergency-admin')!;
    expect(admin.person_id).toBe(ADMIN);
    expect(admin.linked_session_ids).toHaveLength(2);
    const news = r.of('breakglass.linked_session');
    expect(news.map((a) => a.linkedSessions?.[0]?.sessionId)).toEqual(admin.linked_session_ids);
    for (const a of news) expect(a.summary).toContain('cut it off by hand');
  });

  it('EKS: a Kubernetes user authenticated by an IAM Identity Center role session is that session’s person', async () => {
    const sso = (login: string) => `arn:aws:sts::${ACCOUNT}:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/${login}`;
    // aws-iam-authenticator / access entries: user.extra carries the authenticating role session.
    const eks = (login: string, username: string) => ({
      username,
      uid: `aws-iam-authenticator:${ACCOUNT}:AROAEXAMPLESSO`,
      groups: ['system:authenticated'],
      extra: {
        accessKeyId: ['ASIAEXAMPLESSO000001'],
        arn: [sso(login)],
        canonicalArn: [`arn:aws:iam::${ACCOUNT}:role/AWSReservedSSO_Admin_0123456789abcdef`],
        principalId: ['AROAEXAMPLESSO'],
        sessionName: [login],
      },
    });
    const events = [
      // a shared username (an aws-auth mapping): the session ARN in extra decides who it is
      k8s(at('22:00:10'), 'list', eks(ALICE, 'eks-admin'), { resource: 'secrets' }),
      k8s(at('22:00:20'), 'list', eks('carol@example.com', 'eks-admin'), { resource: 'pods' }),
      // an access entry's default username is the role session ARN itself
      k8s(at('22:00:30'), 'get', { username: sso(ALICE), groups: ['system:authenticated'] }, { resource: 'pods' }),
      ...samlLogin(at('22:01:00'), ALICE, 'BreakGlassAdmin'),
    ];
    const r = await replay(events, { followLinked: false });
    const aws = r.of('breakglass.unauthorized')[0]!;
    expect(aws.linkedSessions?.map((l) => [l.source, l.principal, l.personId])).toEqual([
      ['k8s', 'eks-admin', ALICE],
      ['k8s', sso(ALICE), ALICE],
    ]);
  });

  it('links only within the window, and map aliases join logins that differ', async () => {
    const people = { ...PEOPLE, windowMinutes: 10, map: [{ person: 'alice', okta: [ALICE], k8s: ['alice-admin'] }] };
    const events = [
      // 30 min before: outside the 10 min window
      k8s(at('21:30:00'), 'list', { username: oidcUser(ALICE), groups: [] }, { resource: 'pods' }),
      k8s(at('22:00:10'), 'list', { username: 'alice-admin', groups: [] }, { resource: 'pods' }),
      ...samlLogin(at('22:01:00'), ALICE, 'BreakGlassAdmin'),
    ];
    const r = await replay(events, { followLinked: false, people });
    const aws = r.of('breakglass.unauthorized')[0]!;
    expect(aws.linkedSessions?.map((l) => [l.principal, l.personId])).toEqual([['alice-admin', 'alice']]);
  });
});

describe('people mapping config', () => {
  const build = (people: unknown, ids: unknown = identities(false)) =>
    buildDetector({
      config: parseConfig({ identities: ids, detector: { people }, revocation: { okta: { orgUrl: 'https://x', token: 't' } } }, 'gw.yml'),
      store: null,
      log: silentLogger,
      clock: 'replay',
      deliver: false,
    });
  const refused = async (people: unknown, path: string, ids?: unknown) => {
    const err = await build(people, ids).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(path);
  };

  it('a bad mapping is an error naming the field', async () => {
    await refused({ windowMinutes: 0 }, 'detector.people.windowMinutes');
    await refused({ oidcPrefix: 'x' }, 'detector.people.oidcPrefix');
    await refused({ k8s: { oidcUsernamePrefix: 5 } }, 'detector.people.k8s.oidcUsernamePrefix');
    await refused({ aws: { federatedRoles: ['role/with/slash'] } }, 'detector.people.aws.federatedRoles');
    await refused({ map: { person: 'x' } }, 'detector.people.map');
    await refused({ map: [{ okta: ['a@x'] }] }, 'detector.people.map[0].person');
    await refused({ map: [{ person: 'a' }] }, 'detector.people.map[0].person');
    await refused({ map: [{ person: 'a', okta: 'a@x', slack: 'a' }] }, 'detector.people.map[0].slack');
    await refused(
      {
        map: [
          { person: 'a', aws: ['shared'] },
          { person: 'b', aws: ['shared'] },
        ],
      },
      'detector.people.map[1].aws',
    );
    const manual = identities(true).map((i) => ({ ...i, revocation: { ...i.revocation, mode: 'manual' } }));
    await refused(PEOPLE, 'identities[0].revocation.followLinked', manual);
    const notBool = identities(false).map((i) => ({ ...i, revocation: { ...i.revocation, followLinked: 'yes' } }));
    await refused(PEOPLE, 'identities[0].revocation.followLinked', notBool);
  });

  it('a session taken back after a restart (changelog, store) is linked again from its next event', async () => {
    // Manual revocation: the restart is the point here, not the Okta call.
    const manual = identities(false).map((i) => ({ ...i, revocation: { mode: 'manual' } }));
    const first = (await build(PEOPLE, manual)).detector;
    const login = okta(at('22:47:41'), 'user.session.start', ADMIN, { authenticationContext: { externalSessionId: 'idx-admin' } });
    await first.handle([login]);
    const session = structuredClone([...first.seen.values()][0]!);
    expect(session.personId).toBe(ADMIN);
    const restarted = (await build(PEOPLE, manual)).detector;
    restarted.sessions.restore([session]);
    await restarted.handle([
      okta(at('22:47:45'), 'user.session.access_admin_app', ADMIN, { authenticationContext: { externalSessionId: 'idx-admin' } }),
      ...samlLogin(at('22:47:52'), ADMIN, 'OktaAdmins'),
    ]);
    expect(restarted.sessions.get(session.id)!.linkedSessionIds).toHaveLength(1);
  });

  it('linking is off without detector.people, and on with its defaults', async () => {
    expect((await build(undefined)).detector.people).toBeNull();
    const on = (await build({})).detector.people!;
    expect(on.linker.options.windowMs).toBe(60 * 60_000);
    expect(on.linker.options.federatedRoles.some((r) => r.test('AWSReservedSSO_Admin_0123abcd'))).toBe(true);
    expect(on.linker.options.oidcUsernamePrefix).toBeNull();
    expect(ACCOUNT).toBe('111122223333');
  });
});
