// Revocation verified from later logs, in replay over the real store (chDB) with the IAM and Okta
// stand-ins: a revoked key that keeps working is `breakglass.revocation_ineffective` and
// `verified: false`; one whose later calls are refused is `verified: true` once the window passed
// at event time; an Okta session revoked and then used again is ineffective; Kubernetes requests
// open to every authenticated user do not count; replay is deterministic.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { printDetectorSummary } from '../../cli/output.js';
import { ConfigError, parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import type { Store } from '../../core/store/client.js';
import { migrate, openStore } from '../../core/store/index.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { buildDetector } from '../../detectors/build.js';
import { iamStandIn, k8sStandIn, oktaStandIn } from '../../detectors/revoke/standins.js';
import { buildReport } from '../../reports/registry.js';
import { renderReport } from '../../reports/render/index.js';
import type { UnauthorizedReport } from '../../reports/types.js';
import { csvRecords } from '../reports/csv-parse.js';
import { bgRole, cloudtrail, iamUser, k8s, normalize, okta } from '../support/events.js';

const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

let opened: Store | null = null;
async function theStore(): Promise<Store> {
  if (opened) return opened;
  const store = openStore({ kind: 'chdb', path: join(mkdtempSync(join(tmpdir(), 'gw-verify-')), 'store') });
  closers.unshift(() => store.close());
  await migrate(store);
  opened = store;
  return store;
}

const LOGIN = 'emergency-admin@example.com';
const IDENTITIES = [
  {
    id: 'aws-bg-user',
    source: 'cloudtrail',
    match: { 'userIdentity.userName': 'bg-admin' },
    revocation: { mode: 'auto', targets: ['aws'] },
  },
  { id: 'okta-emergency-admin', source: 'okta', match: { 'actor.alternateId': LOGIN }, revocation: { mode: 'auto', targets: ['okta'] } },
  {
    id: 'k8s-breakglass',
    source: 'k8s',
    match: { 'user.username': 'breakglass-admin' },
    revocation: { mode: 'auto', targets: ['k8s'] },
  },
  {
    id: 'aws-breakglass-role',
    source: 'cloudtrail',
    match: { 'userIdentity.arn|contains': ':assumed-role/BreakGlass' },
    revocation: { mode: 'auto', targets: ['aws'] },
  },
];

interface VerifyRow {
  revocation_id: string;
  target: string;
  outcome: string;
  verified: number | null;
  verified_at: string | null;
  verify_event_id: string;
  verify_detail: string;
}

async function replay(events: AuditEvent[], extra: Record<string, unknown> = {}) {
  const iam = await iamStandIn({ accessKeyId: 'AKIAGLASSWATCH', users: { 'bg-admin': ['AKIAbg-admin'] } });
  const oktaApi = await oktaStandIn({ token: 't0k', users: [`00u-${LOGIN}`] });
  const k8sApi = await k8sStandIn({
    token: 'sa-token',
    bindings: [
      { kind: 'ClusterRoleBinding', name: 'bg-admin', role: 'cluster-admin', subjects: [{ kind: 'User', name: 'breakglass-admin' }] },
    ],
  });
  closers.push(iam.close, oktaApi.close, k8sApi.close);
  const store = await theStore();
  // chDB allows one folder per process: each replay starts from empty evidence tables instead.
  for (const t of ['revocations', 'alerts', 'alert_deliveries', 'sessions']) await store.client.command({ query: `TRUNCATE TABLE ${t}` });
  const config = parseConfig(
    {
      identities: IDENTITIES,
      revocation: {
        aws: { endpoint: iam.url, accessKeyId: 'AKIAGLASSWATCH', secretAccessKey: 'secret' },
        okta: { orgUrl: oktaApi.url, token: 't0k' },
        k8s: { server: k8sApi.url, token: 'sa-token' },
        ...extra,
      },
    },
    'test.yml',
  );
  const alerts: Alert[] = [];
  const build = await buildDetector({ config, store, log: silentLogger, clock: 'replay', onAlert: (a) => alerts.push(a) });
  await build.detector.handle([...events].sort((a, b) => a.time.localeCompare(b.time)));
  await build.detector.flush();
  const rows = await (
    await store.client.query({
      query: `SELECT revocation_id, target, outcome, verified, toString(verified_at) AS verified_at, verify_event_id, verify_detail
              FROM revocations ORDER BY completed_at DESC, verified_at DESC NULLS LAST LIMIT 1 BY revocation_id`,
      format: 'JSONEachRow',
    })
  ).json<VerifyRow>();
  return { alerts, rows, build, detector: build.detector, iam, of: (t: string) => alerts.filter((a) => a.type === t) };
}

const at = (hhmmss: string) => `2026-11-20T${hhmmss}.000Z`;
const denied = { errorCode: 'InvalidClientTokenId', errorMessage: 'The security token included in the request is invalid.' };
/** Someone else's traffic: moves the stream's event time on. */
const others = (from: number, to: number, stepMin: number) =>
  Array.from({ length: Math.floor((to - from) / stepMin) + 1 }, (_, i) => {
    const m = from + i * stepMin;
    return cloudtrail(
      at(`${String(22 + Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}:00`),
      'ListRoles',
      iamUser('dev'),
    );
  });

const ineffectiveAws = () => [
  cloudtrail(at('22:00:00'), 'ListUsers', iamUser('bg-admin')),
  // inside the 60 s AWS allowance: IAM is still propagating the deactivation
  cloudtrail(at('22:00:40'), 'GetUser', iamUser('bg-admin')),
  cloudtrail(at('22:03:00'), 'CreateAccessKey', iamUser('bg-admin')),
];

describe('revocation verified from later logs (replay)', () => {
  it('a revoked AWS key that keeps working raises breakglass.revocation_ineffective and is recorded verified: false', async () => {
    const events = ineffectiveAws();
    const r = await replay([...events, ...others(0, 10, 5)]);
    expect(r.iam.calls.map((c) => c.Action)).toEqual(['ListAccessKeys', 'UpdateAccessKey']);
    const [alert, ...more] = r.of('breakglass.revocation_ineffective');
    expect(more).toHaveLength(0);
    expect(alert).toMatchObject({ severity: 'critical', identity: 'aws-bg-user', eventIds: [events[2]!.id], time: events[2]!.time });
    expect(alert!.summary).toContain('aws key AKIAbg-admin');
    expect(alert!.summary).toContain(events[2]!.id);
    expect(alert!.revocation).toMatchObject({ target: 'aws', outcome: 'revoked' });
    expect(r.rows).toHaveLength(1);
    expect(r.rows[0]).toMatchObject({ target: 'aws', outcome: 'revoked', verified: 0, verify_event_id: events[2]!.id });
    expect(r.rows[0]!.verified_at).toBe('2026-11-20 22:03:00.000');
    expect(r.detector.verifier.watches.size).toBe(0);

    // The unauthorized-use report shows it beside the revocation and counts it; the CSV stays flat.
    const period = { fromMs: Date.parse(at('00:00:00')), toMs: Date.parse(at('23:59:59')) };
    const report = (await buildReport('unauthorized-use', { store: await theStore(), period })) as UnauthorizedReport;
    expect(report.totals).toMatchObject({ incidents: 1, revoked: 1, ineffective: 1, verified: 0 });
    expect(report.incidents[0]!.revocations[0]).toMatchObject({
      target: 'aws',
      outcome: 'revoked',
      verified: false,
      verifiedAt: events[2]!.time,
      verifyEventId: events[2]!.id,
    });
    const [row, ...extraRows] = csvRecords(renderReport(report, 'csv').text);
    expect(extraRows).toHaveLength(0);
    expect(row).toMatchObject({ revocationOutcome: 'revoked', revocationVerified: 'false', revocationVerifyEventId: events[2]!.id });
    expect(renderReport(report, 'html').text).toContain('ineffective');
  });

  it('a revoked key whose later calls are refused is verified: true once the window passed at event time', async () => {
    const refused = cloudtrail(at('22:05:00'), 'ListRoles', iamUser('bg-admin'), denied);
    // No policy can deny sts:GetCallerIdentity: its success proves nothing about the revocation.
    const whoami = cloudtrail(at('22:06:00'), 'GetCallerIdentity', iamUser('bg-admin'), { eventSource: 'sts.amazonaws.com' });
    // The stream reaches 22:55 only: the 60 min window is not over, nothing is concluded yet.
    const early = await replay([cloudtrail(at('22:00:00'), 'ListUsers', iamUser('bg-admin')), refused, ...others(0, 55, 5)]);
    expect(early.of('breakglass.revocation_ineffective')).toHaveLength(0);
    expect(early.rows[0]!.verified).toBeNull();
    expect(early.detector.verifier.watches.size).toBe(1);

    const r = await replay([cloudtrail(at('22:00:00'), 'ListUsers', iamUser('bg-admin')), refused, whoami, ...others(0, 65, 5)]);
    // a failed (refused) event by the revoked key is the cut holding, not an ineffective revocation
    expect(r.of('breakglass.revocation_ineffective')).toHaveLength(0);
    expect(r.rows[0]).toMatchObject({ outcome: 'revoked', verified: 1, verify_event_id: whoami.id });
    expect(r.rows[0]!.verified_at).toBe('2026-11-20 23:00:00.000');
    expect(r.rows[0]!.verify_detail).toContain('aws:key:AKIAbg-admin');
    expect(r.detector.verifier.totals).toMatchObject({ watched: 1, verified: 1, ineffective: 0 });
    const period = { fromMs: Date.parse(at('00:00:00')), toMs: Date.parse(at('23:59:59')) };
    const report = (await buildReport('unauthorized-use', { store: await theStore(), period })) as UnauthorizedReport;
    expect(report.totals).toMatchObject({ verified: 1, ineffective: 0 });
    expect(report.incidents[0]!.revocations[0]).toMatchObject({
      verified: true,
      verifiedAt: '2026-11-20T23:00:00.000Z',
      verifyEventId: whoami.id,
    });
    expect(r.detector.verifier.watches.size).toBe(0);
  });

  it('an Okta session revoked, then used again by the same externalSessionId, is ineffective', async () => {
    const later = okta('2026-11-20T22:50:30Z', 'user.account.update_profile', LOGIN);
    const r = await replay([
      okta('2026-11-20T22:47:41Z', 'user.session.start', LOGIN),
      // within the 10 s Okta allowance
      okta('2026-11-20T22:47:48Z', 'user.account.privilege.grant', LOGIN),
      later,
      // failed afterwards: not counted (and not a second alert)
      okta('2026-11-20T22:51:00Z', 'user.account.update_profile', LOGIN, { outcome: { result: 'FAILURE', reason: 'INVALID_SESSION' } }),
    ]);
    const ineffective = r.of('breakglass.revocation_ineffective');
    expect(ineffective).toHaveLength(1);
    expect(ineffective[0]!.summary).toContain('okta session sess-1');
    expect(ineffective[0]!.eventIds).toEqual([later.id]);
    expect(r.rows[0]).toMatchObject({ target: 'okta', verified: 0, verify_event_id: later.id });
    // The replay summary says it under the revocation.
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    printDetectorSummary(r.build);
    spy.mockRestore();
    const text = written.join('');
    expect(text).toContain('1 INEFFECTIVE revocations');
    expect(text).toContain('INEFFECTIVE from later logs: okta session sess-1 succeeded 169 s after the revocation');
  });

  it('Kubernetes: discovery and self reviews after the bindings are gone are not use; reading a secret is', async () => {
    const admin = { username: 'breakglass-admin', groups: ['system:authenticated'] };
    const discovery = normalize(
      {
        kind: 'Event',
        apiVersion: 'audit.k8s.io/v1',
        level: 'Metadata',
        auditID: 'k8s-discovery-1',
        stage: 'ResponseComplete',
        requestURI: '/apis',
        verb: 'get',
        user: admin,
        sourceIPs: ['10.0.0.5'],
        responseStatus: { metadata: {}, code: 200 },
        requestReceivedTimestamp: '2026-11-20T22:10:00.000Z',
        stageTimestamp: '2026-11-20T22:10:00.000Z',
      },
      'prod-eu1',
    );
    const secret = k8s('2026-11-20T22:11:00.000Z', 'get', admin, { resource: 'secrets', namespace: 'payments', name: 'db' });
    const r = await replay([
      k8s('2026-11-20T22:00:00.000Z', 'list', admin, { resource: 'secrets', namespace: 'payments' }),
      k8s('2026-11-20T22:05:00.000Z', 'create', admin, { resource: 'selfsubjectaccessreviews' }, 201),
      discovery,
      secret,
    ]);
    const [ineffective, ...more] = r.of('breakglass.revocation_ineffective');
    expect(more).toHaveLength(0);
    expect(ineffective!.eventIds).toEqual([secret.id]);
    expect(ineffective!.summary).toContain('k8s user breakglass-admin');
    expect(r.rows[0]).toMatchObject({ target: 'k8s', outcome: 'revoked', verified: 0, verify_event_id: secret.id });
  });

  it('AWS role: a new role session under the revoked session name is ineffective (the old one is denied)', async () => {
    const denied2 = { errorCode: 'AccessDenied', errorMessage: 'explicit deny in an identity-based policy' };
    // Re-assumed after the revocation: new temporary key, new creation date, same role session name.
    const again = cloudtrail(at('22:20:00'), 'ListUsers', bgRole('ASIANEW', '2026-11-20T22:19:00Z'));
    const r = await replay([
      cloudtrail(at('22:00:00'), 'ListUsers', bgRole('ASIAOLD')),
      cloudtrail(at('22:05:00'), 'ListRoles', bgRole('ASIAOLD'), denied2),
      again,
    ]);
    expect(r.iam.calls.map((c) => c.Action)).toEqual(['PutRolePolicy']);
    const ineffective = r.of('breakglass.revocation_ineffective');
    expect(ineffective.map((a) => a.eventIds[0])).toEqual([again.id]);
    expect(ineffective[0]!.summary).toContain('aws role-session arn:aws:sts::111122223333:assumed-role/BreakGlassAdmin/alice');
  });

  it('is deterministic: the same events give the same alerts and verification rows', async () => {
    const events = [...ineffectiveAws(), cloudtrail(at('22:30:00'), 'ListUsers', iamUser('bg-admin')), ...others(0, 70, 7)];
    const a = await replay(events);
    const b = await replay(events);
    const view = (x: typeof a) => ({
      // (the revocation alert's own summary carries the measured time-to-revoke: not compared)
      alerts: x.alerts.map((al) => [al.id, al.type, al.time, al.eventIds.join(','), al.type.endsWith('_ineffective') ? al.summary : '']),
      rows: x.rows.map((row) => ({ ...row })),
    });
    expect(view(b)).toEqual(view(a));
    expect(a.of('breakglass.revocation_ineffective')).toHaveLength(1);
  });

  it('revocation.verify is validated naming file and field, and can be switched off', async () => {
    await expect(replay([], { verify: { allowanceSeconds: { aws: 600 }, verifyWindowMinutes: 5 } })).rejects.toThrow(
      /test\.yml.*revocation\.verify\.verifyWindowMinutes/,
    );
    await expect(replay([], { verify: { allowanceSeconds: { gcp: 5 } } })).rejects.toThrow(ConfigError);
    const off = await replay([...ineffectiveAws(), ...others(0, 70, 5)], { verify: false });
    expect(off.of('breakglass.revocation_ineffective')).toHaveLength(0);
    expect(off.rows[0]!.verified).toBeNull();
  });
});
