import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import { verify } from '../../core/signing.js';
import { migrate, openStore, StoreWriter } from '../../core/store/index.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { AwsRevoker } from '../../detectors/revoke/aws.js';
import { MemoryRevocationLedger, RevocationDispatcher, StoreRevocationLedger } from '../../detectors/revoke/dispatcher.js';
import { K8sRevoker } from '../../detectors/revoke/k8s.js';
import { OktaRevoker } from '../../detectors/revoke/okta.js';
import { iamStandIn, k8sStandIn, oktaStandIn } from '../../detectors/revoke/standins.js';
import type { RevocationRequest } from '../../detectors/revoke/types.js';
import { WebhookRevoker } from '../../detectors/revoke/webhook.js';
import type { BreakGlassSession } from '../../detectors/sessions.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

function request(raw: Record<string, unknown>, principal: string, principalId: string | null, groups: string[] = []): RevocationRequest {
  const event = { source: 'cloudtrail', id: 'evt-1', time: '2026-11-20T22:44:12.000Z', raw } as unknown as AuditEvent;
  return {
    alert: { id: 'gw-alert-1', type: 'breakglass.unauthorized' } as Alert,
    session: { id: 'bgs-1' } as BreakGlassSession,
    identity: 'bg',
    principal,
    principalId,
    groups,
    reason: 'no_ticket',
    event,
    idempotencyKey: 'gw-alert-1:test',
  };
}

describe('Okta revocation', () => {
  it('clears the sessions with the documented call and suspends on request', async () => {
    const okta = await oktaStandIn({ token: 'tok', users: ['00u1'] });
    closers.push(okta.close);
    const r = await new OktaRevoker({ orgUrl: okta.url, authorization: 'SSWS tok', suspend: true }).revoke(
      request({}, 'emergency-admin@example.com', '00u1'),
    );
    expect(r.outcome).toBe('revoked');
    expect(okta.requests.map((q) => `${q.method} ${q.path}`)).toEqual([
      'DELETE /api/v1/users/00u1/sessions?oauthTokens=true',
      'POST /api/v1/users/00u1/lifecycle/suspend',
    ]);
    expect(okta.requests[0]!.headers.authorization).toBe('SSWS tok');
  });

  it('a 429 is retried by the dispatcher; a wrong token fails without retry storms', async () => {
    const okta = await oktaStandIn({ token: 'tok', users: ['00u1'], failFirst: 2 });
    closers.push(okta.close);
    const ledger = new MemoryRevocationLedger();
    const dispatcher = new RevocationDispatcher(
      new Map([['bg', { mode: 'auto', targets: [new OktaRevoker({ orgUrl: okta.url, authorization: 'SSWS tok' })] }]]),
      ledger,
      silentLogger,
      { initialDelayMs: 5 },
    );
    const t0 = Date.parse('2026-11-20T22:44:12.000Z');
    const [rec] = await dispatcher.revoke(request({}, 'x', '00u1'), t0, t0 + 300);
    expect(rec).toMatchObject({ outcome: 'revoked', attempts: 3, target: 'okta' });
    expect(rec!.timeToRevokeMs).toBeGreaterThanOrEqual(300);
    // idempotent: the same alert never revokes twice
    const again = await dispatcher.revoke(request({}, 'x', '00u1'), t0, t0 + 300);
    expect(again[0]!.revocationId).toBe(rec!.revocationId);
    expect(okta.requests).toHaveLength(3);

    const bad = new RevocationDispatcher(
      new Map([['bg', { mode: 'auto', targets: [new OktaRevoker({ orgUrl: okta.url, authorization: 'SSWS wrong' })] }]]),
      new MemoryRevocationLedger(),
      silentLogger,
      { initialDelayMs: 5 },
    );
    const [failed] = await bad.revoke(request({}, 'x', '00u1'), t0, t0);
    expect(failed).toMatchObject({ outcome: 'failed', attempts: 1 });
    expect(failed!.detail).toContain('HTTP 401');
  });
});

describe('AWS revocation (SDK against a local SigV4-checking IAM endpoint)', () => {
  const credentials = { accessKeyId: 'AKIAGLASSWATCHTEST01', secretAccessKey: 'test-secret' };

  it('fences an assumed role with AWSRevokeOlderSessions at the revocation time', async () => {
    const iam = await iamStandIn({ accessKeyId: credentials.accessKeyId });
    closers.push(iam.close);
    const now = new Date('2026-11-20T22:44:13.500Z');
    const revoker = new AwsRevoker({ endpoint: iam.url, credentials, now: () => now });
    const r = await revoker.revoke(
      request(
        {
          userIdentity: {
            type: 'AssumedRole',
            arn: 'arn:aws:sts::111122223333:assumed-role/BreakGlassAdmin/alice',
            sessionContext: {
              sessionIssuer: { type: 'Role', userName: 'BreakGlassAdmin', arn: 'arn:aws:iam::111122223333:role/BreakGlassAdmin' },
            },
          },
        },
        'arn:aws:sts::111122223333:assumed-role/BreakGlassAdmin/alice',
        null,
      ),
    );
    expect(r.outcome).toBe('revoked');
    expect(iam.calls).toHaveLength(1);
    expect(iam.calls[0]).toMatchObject({
      Action: 'PutRolePolicy',
      RoleName: 'BreakGlassAdmin',
      PolicyName: 'AWSRevokeOlderSessions',
      Version: '2010-05-08',
    });
    expect(JSON.parse(iam.calls[0]!.PolicyDocument!)).toEqual({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Deny', Action: ['*'], Resource: ['*'], Condition: { DateLessThan: { 'aws:TokenIssueTime': '2026-11-20T22:44:13Z' } } },
      ],
    });
    expect(String(iam.requests[0]!.headers.authorization)).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIAGLASSWATCHTEST01\/20\d{6}\/us-east-1\/iam\/aws4_request/,
    );
  });

  it('following a person into a shared role fences only that role session (aws:userid), in a policy of its own', async () => {
    const iam = await iamStandIn({ accessKeyId: credentials.accessKeyId });
    closers.push(iam.close);
    const now = new Date('2026-11-20T22:50:00.250Z');
    const revoker = new AwsRevoker({ endpoint: iam.url, credentials, now: () => now });
    const sessionEvent = {
      userIdentity: {
        type: 'AssumedRole',
        principalId: 'AROAOKTAADMINS0000001:alice@example.com',
        arn: 'arn:aws:sts::111122223333:assumed-role/OktaAdmins/alice@example.com',
        sessionContext: { sessionIssuer: { type: 'Role', userName: 'OktaAdmins', arn: 'arn:aws:iam::111122223333:role/OktaAdmins' } },
      },
    };
    const followed = { ...request(sessionEvent, 'alice@example.com', null), followedFrom: 'bgs-okta-1', followTarget: 'aws' as const };
    const r = await revoker.revoke(followed);
    expect(r).toMatchObject({ outcome: 'revoked', detail: expect.stringContaining("the role's other sessions keep working") });
    // The AssumeRoleWithSAML call itself names the session by what it returned.
    const samlCall = {
      eventName: 'AssumeRoleWithSAML',
      userIdentity: { type: 'SAMLUser', principalId: 'abc:alice@example.com', userName: 'alice@example.com' },
      requestParameters: { roleArn: 'arn:aws:iam::111122223333:role/OktaAdmins' },
      responseElements: { assumedRoleUser: { assumedRoleId: 'AROAOKTAADMINS0000001:alice@example.com' } },
    };
    await revoker.revoke({ ...request(samlCall, 'alice@example.com', null), followedFrom: 'bgs-okta-1', followTarget: 'aws' as const });
    // Not following (the identity's own session): the whole role, as before.
    await revoker.revoke(request(sessionEvent, 'alice@example.com', null));
    expect(iam.calls.map((c) => [c.RoleName, c.PolicyName])).toEqual([
      ['OktaAdmins', expect.stringMatching(/^GlasswatchRevokeSession-[0-9a-f]{16}$/)],
      ['OktaAdmins', iam.calls[0]!.PolicyName],
      ['OktaAdmins', 'AWSRevokeOlderSessions'],
    ]);
    expect(JSON.parse(iam.calls[0]!.PolicyDocument!)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Deny',
          Action: ['*'],
          Resource: ['*'],
          Condition: {
            StringEquals: { 'aws:userid': 'AROAOKTAADMINS0000001:alice@example.com' },
            DateLessThan: { 'aws:TokenIssueTime': '2026-11-20T22:50:00Z' },
          },
        },
      ],
    });
  });

  it('fences the role being entered when the event is the AssumeRole call itself', async () => {
    const iam = await iamStandIn({ accessKeyId: credentials.accessKeyId });
    closers.push(iam.close);
    await new AwsRevoker({ endpoint: iam.url, credentials }).revoke(
      request(
        {
          eventName: 'AssumeRole',
          userIdentity: { type: 'IAMUser', userName: 'alice' },
          requestParameters: { roleArn: 'arn:aws:iam::111122223333:role/ops/BreakGlassAdmin' },
        },
        'alice',
        null,
      ),
    );
    expect(iam.calls[0]).toMatchObject({ Action: 'PutRolePolicy', RoleName: 'BreakGlassAdmin' });
  });

  it('deactivates the access keys of an IAM user', async () => {
    const iam = await iamStandIn({ accessKeyId: credentials.accessKeyId, users: { 'bg-user': ['AKIA1', 'AKIA2'] } });
    closers.push(iam.close);
    const r = await new AwsRevoker({ endpoint: iam.url, credentials }).revoke(
      request({ userIdentity: { type: 'IAMUser', userName: 'bg-user' } }, 'bg-user', null),
    );
    expect(r).toMatchObject({ outcome: 'revoked' });
    expect(iam.calls.map((c) => `${c.Action} ${c.AccessKeyId ?? ''} ${c.Status ?? ''}`.trim())).toEqual([
      'ListAccessKeys',
      'UpdateAccessKey AKIA1 Inactive',
      'UpdateAccessKey AKIA2 Inactive',
    ]);
  });

  it('root is not revocable, without calling IAM', async () => {
    const iam = await iamStandIn({ accessKeyId: credentials.accessKeyId });
    closers.push(iam.close);
    const r = await new AwsRevoker({ endpoint: iam.url, credentials }).revoke(request({ userIdentity: { type: 'Root' } }, 'root', null));
    expect(r.outcome).toBe('not_revocable');
    expect(r.detail).toContain('rotate the root credentials');
    expect(iam.calls).toHaveLength(0);
  });

  it('wrong credentials are refused by the endpoint and reported', async () => {
    const iam = await iamStandIn({ accessKeyId: 'AKIAOTHER' });
    closers.push(iam.close);
    await expect(
      new AwsRevoker({ endpoint: iam.url, credentials }).revoke(request({ userIdentity: { type: 'IAMUser', userName: 'u' } }, 'u', null)),
    ).rejects.toThrow(/SignatureDoesNotMatch/);
  });
});

describe('Kubernetes revocation', () => {
  const bindings = () => [
    {
      kind: 'ClusterRoleBinding' as const,
      name: 'bg-admin',
      role: 'cluster-admin',
      subjects: [{ kind: 'User' as const, name: 'breakglass-admin' }],
    },
    {
      kind: 'RoleBinding' as const,
      name: 'bg-payments',
      namespace: 'payments',
      role: 'edit',
      subjects: [{ kind: 'Group' as const, name: 'breakglass' }],
    },
    {
      kind: 'ClusterRoleBinding' as const,
      name: 'everyone-view',
      role: 'view',
      subjects: [{ kind: 'Group' as const, name: 'system:authenticated' }],
    },
  ];

  it('deletes the bindings that name the user or its groups, never the shared ones', async () => {
    const k8s = await k8sStandIn({ token: 'sa-token', bindings: bindings() });
    closers.push(k8s.close);
    const r = await new K8sRevoker({ server: k8s.url, token: 'sa-token' }).revoke(
      request({}, 'breakglass-admin', null, ['breakglass', 'system:authenticated']),
    );
    expect(r.outcome).toBe('revoked');
    expect(k8s.bindings.map((b) => b.name)).toEqual(['everyone-view']);
    expect(k8s.requests.filter((q) => q.method === 'DELETE').map((q) => q.path)).toEqual([
      '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/bg-admin',
      '/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings/bg-payments',
    ]);
    expect(k8s.requests[0]!.headers.authorization).toBe('Bearer sa-token');
  });

  it('system:masters is not revocable: rotate the credential or CA', async () => {
    const k8s = await k8sStandIn({ token: 'sa-token', bindings: bindings() });
    closers.push(k8s.close);
    const r = await new K8sRevoker({ server: k8s.url, token: 'sa-token' }).revoke(
      request({}, 'breakglass-admin', null, ['system:masters', 'system:authenticated']),
    );
    expect(r.outcome).toBe('not_revocable');
    expect(r.detail).toMatch(/system:masters.*rotate the credential or the cluster CA/);
    expect(r.detail).toContain('deleted clusterrolebinding/bg-admin');
  });
});

describe('generic signed revocation webhook', () => {
  it('signs the request and carries the idempotency key; 409 means not revocable', async () => {
    const seen: { headers: Record<string, unknown>; body: string; valid: boolean }[] = [];
    let answer = 200;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        seen.push({ headers: req.headers, body, valid: verify('hook-secret', req.headers, body).ok });
        res.writeHead(answer, { 'content-type': 'application/json' });
        res.end(answer === 409 ? JSON.stringify({ outcome: 'not_revocable', detail: 'hardware token, revoke at the desk' }) : '{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => server.close(() => r())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/revoke`;
    const revoker = new WebhookRevoker({ url, secret: 'hook-secret' });
    expect((await revoker.revoke(request({}, 'p', 'pid'))).outcome).toBe('revoked');
    expect(seen[0]!.valid).toBe(true);
    expect(seen[0]!.headers['idempotency-key']).toBe('gw-alert-1:test');
    expect(JSON.parse(seen[0]!.body)).toMatchObject({
      identity: 'bg',
      principal: 'p',
      reason: 'no_ticket',
      sessionId: 'bgs-1',
      alert: { id: 'gw-alert-1' },
    });
    expect(verify('other-secret', seen[0]!.headers as never, seen[0]!.body).ok).toBe(false);
    answer = 409;
    expect(await revoker.revoke(request({}, 'p', 'pid'))).toEqual({
      outcome: 'not_revocable',
      detail: 'hardware token, revoke at the desk',
    });
  });
});

describe('revocation ledger on a store, through the detector batch', () => {
  it('a record whose batch failed to flush is written again when the batch comes back (it was lost before)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-revledger-'));
    const store = openStore({ kind: 'chdb', path: join(dir, 'store') });
    closers.push(async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    await migrate(store);
    const writer = new StoreWriter(store);
    const ledger = new StoreRevocationLedger(store, writer);
    const record = {
      revocationId: 'gw-alert-1:okta',
      alertId: 'gw-alert-1',
      sessionId: 'bgs-1',
      identity: 'bg',
      target: 'okta',
      principal: 'emergency-admin@example.com',
      outcome: 'revoked' as const,
      detail: 'cleared',
      attempts: 1,
      requestedAt: '2026-11-20T22:47:50.000Z',
      completedAt: '2026-11-20T22:47:50.030Z',
      timeToRevokeMs: 30,
    };
    await ledger.record(record);
    // The batch's flush fails (the table is away): its rows are gone from the writer, its offsets uncommitted.
    await store.client.command({ query: 'RENAME TABLE revocations TO revocations_away' });
    await expect(writer.flush()).rejects.toThrow();
    await store.client.command({ query: 'RENAME TABLE revocations_away TO revocations' });
    // The batch is handled again: the dispatcher asks first, and the answer must still reach the store.
    expect(await ledger.finished(record.revocationId)).toMatchObject({ outcome: 'revoked' });
    await writer.flush();
    const rows = await (await store.client.query({ query: 'SELECT revocation_id, outcome FROM revocations', format: 'JSONEachRow' })).json<{
      revocation_id: string;
      outcome: string;
    }>();
    expect(rows).toEqual([{ revocation_id: record.revocationId, outcome: 'revoked' }]);
  });
});
