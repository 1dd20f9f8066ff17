// One person across planes, live: the detector service on the real broker with the real store
// (chDB). The Okta admin's unauthorized sign-in is revoked by the Okta worker; the AWS role session
// and the Kubernetes user the same person opens through SAML and OIDC are linked when their events
// come, and the followed revocations go through the durable revocation stage (orders on the
// revocations topic, carried out by the AWS and Kubernetes workers, each its own ledger record).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import { identityKey } from '../../core/pipeline/stage.js';
import { migrate, openStore } from '../../core/store/index.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { iamStandIn, k8sStandIn, oktaStandIn } from '../../detectors/revoke/standins.js';
import { startDetectorService } from '../../detectors/service.js';
import { deleteTopics, kafkaTestOptions, uniqueName, uniqueTopics, waitFor } from '../bus/helpers.js';
import { cloudtrail, k8s, okta } from '../support/events.js';
import { federated, liveConfig, oidcUser, samlLogin } from './people-support.js';

const ADMIN = 'emergency-admin@example.com';
const topicsMade: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  await deleteTopics(topicsMade);
});

describe('one person across planes, live (Kafka, chDB, stand-ins)', () => {
  it('the Okta admin’s AWS and Kubernetes sessions are linked and followed through the revocation stage', async () => {
    const iam = await iamStandIn({ accessKeyId: 'AKIAGLASSWATCH', roles: ['OktaAdmins'] });
    const oktaApi = await oktaStandIn({ token: 't0k', users: [`00u-${ADMIN}`] });
    const k8sApi = await k8sStandIn({
      token: 'sa-token',
      bindings: [
        { kind: 'ClusterRoleBinding', name: 'oidc-admin', role: 'cluster-admin', subjects: [{ kind: 'User', name: oidcUser(ADMIN) }] },
      ],
    });
    closers.push(iam.close, oktaApi.close, k8sApi.close);
    const store = openStore({ kind: 'chdb', path: join(mkdtempSync(join(tmpdir(), 'gw-people-live-')), 'store') });
    closers.push(() => store.close());
    await migrate(store);
    const topics = uniqueTopics();
    topicsMade.push(...Object.values(topics));
    const config = liveConfig(topics, { iam, okta: oktaApi, k8s: k8sApi }, 'people-live.yml');
    const bus = new KafkaBus(kafkaTestOptions());
    closers.push(() => bus.close());
    const alerts: Alert[] = [];
    const service = await startDetectorService({
      config,
      bus,
      store,
      log: silentLogger,
      groupId: uniqueName('det'),
      workerGroupPrefix: uniqueName('gw'),
      metricsServer: null,
      onAlert: (alert) => alerts.push(alert),
    });
    closers.push(() => service.stop());
    const publish = (events: AuditEvent[]) =>
      bus.publish(
        topics.events,
        events.map((e) => ({ key: identityKey(e), value: JSON.stringify(e) })),
      );
    const t = (s: number) => new Date(Date.now() + s * 1000).toISOString();
    const login = t(0);
    await publish([okta(login, 'user.session.start', ADMIN, { authenticationContext: { externalSessionId: 'idx-live' } })]);
    await waitFor(() => oktaApi.requests.some((r) => r.method === 'DELETE'), 'the Okta worker to revoke the sign-in', 60_000);
    await publish([
      ...samlLogin(t(1), ADMIN, 'OktaAdmins'),
      cloudtrail(t(2), 'ListUsers', federated(ADMIN, 'OktaAdmins', t(1).replace(/\.\d{3}Z$/, 'Z'))),
      k8s(t(3), 'list', { username: oidcUser(ADMIN), groups: ['oidc:admins'] }, { resource: 'secrets' }),
    ]);
    await waitFor(() => iam.calls.length > 0 && k8sApi.bindings.length === 0, 'the followed AWS and Kubernetes revocations', 60_000);
    expect(iam.calls.map((c) => [c.Action, c.RoleName])).toEqual([['PutRolePolicy', 'OktaAdmins']]);
    const rows = async () =>
      (
        await store.client.query({
          query: `SELECT target, outcome, followed_from FROM revocations FINAL WHERE followed_from != '' ORDER BY target`,
          format: 'JSONEachRow',
        })
      ).json<{ target: string; outcome: string; followed_from: string }>();
    let followed = await rows();
    for (let i = 0; i < 100 && followed.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      followed = await rows();
    }
    const unauthorized = alerts.find((a) => a.type === 'breakglass.unauthorized')!;
    expect(followed).toEqual([
      { target: 'aws', outcome: 'revoked', followed_from: unauthorized.sessionId },
      { target: 'k8s', outcome: 'revoked', followed_from: unauthorized.sessionId },
    ]);
    // One Okta revocation only: the identity's own.
    expect(oktaApi.requests.filter((r) => r.method === 'DELETE')).toHaveLength(1);
    expect(service.build.detector.people!.totals).toMatchObject({ linked: 2, followed: 2 });
    const news = alerts.filter((a) => a.type === 'breakglass.linked_session');
    expect(news.map((a) => a.source).sort()).toEqual(['cloudtrail', 'k8s']);
    for (const a of news) expect(a.sessionId).toBe(unauthorized.sessionId);

    // The followed revocations are watched like any other: the fenced role session used again two
    // minutes later (event time, past the 60 s AWS allowance) is ineffective, read from the ledger.
    const watched = service.build.detector.verifier.watches.all().filter((w) => w.revocationId.includes(':follow:'));
    expect(watched.map((w) => w.target).sort()).toEqual(['aws', 'k8s']);
    const still = cloudtrail(t(120), 'GetSecretValue', federated(ADMIN, 'OktaAdmins', t(1).replace(/\.\d{3}Z$/, 'Z')));
    await publish([still]);
    await waitFor(() => alerts.some((a) => a.type === 'breakglass.revocation_ineffective'), 'the ineffective followed revocation', 60_000);
    const ineffective = alerts.find((a) => a.type === 'breakglass.revocation_ineffective')!;
    expect(ineffective.eventIds).toEqual([still.id]);
    expect(ineffective.revocation).toMatchObject({ target: 'aws', outcome: 'revoked' });
  }, 180_000);
});
