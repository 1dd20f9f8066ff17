// One person across planes with several detector members. Events are keyed by actor, so the Okta
// admin's sign-in and the AWS role session the same person opens through SAML land on partitions of
// different members; each member shares the activity it sees on `topics.people`, and the member that
// owns the break-glass session links (and follows) the activity another member saw. Real broker.
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { BusMessage } from '../../core/bus/types.js';
import { Fields } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { createLogger } from '../../core/log.js';
import { identityKey } from '../../core/pipeline/stage.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { peopleOptionsOf } from '../../detectors/people/config.js';
import { PersonLinker } from '../../detectors/people/linker.js';
import { parseSighting, sightingOf } from '../../detectors/people/sightings.js';
import { iamStandIn, oktaStandIn } from '../../detectors/revoke/standins.js';
import { type DetectorService, startDetectorService } from '../../detectors/service.js';
import { deleteTopics, kafkaTestOptions, uniqueName, uniqueTopics, waitFor } from '../bus/helpers.js';
import { cloudtrail, k8s, okta } from '../support/events.js';
import { federated, liveConfig, oidcUser, PEOPLE, samlLogin } from './people-support.js';

const ADMIN = 'emergency-admin@example.com';
const topicsMade: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  await deleteTopics(topicsMade);
});

const options = () => peopleOptionsOf(new Fields('people.yml', 'detector', { people: PEOPLE }))!;

describe('person sightings between detector members', () => {
  it('a member shares new activity once, then at most four times a window, and re-shares what failed to publish', () => {
    const linker = new PersonLinker(options());
    linker.share();
    const t0 = Date.parse('2026-11-20T22:00:00Z');
    const e = (s: number) => okta(new Date(t0 + s * 1000).toISOString(), 'user.session.start', 'alice@example.com');
    linker.observe(e(0), t0);
    linker.observe(e(1), t0 + 1000);
    const first = linker.takeShared();
    expect(first.map((a) => [a.source, a.personId])).toEqual([['okta', 'alice@example.com']]);
    // The same session a minute later: not news; a quarter window (15 min) later: told again.
    linker.observe(e(60), t0 + 60_000);
    expect(linker.takeShared()).toEqual([]);
    linker.observe(e(16 * 60), t0 + 16 * 60_000);
    const again = linker.takeShared();
    expect(again).toHaveLength(1);
    linker.requeue(again);
    expect(linker.takeShared()).toHaveLength(1);
    expect(linker.takeShared()).toEqual([]);
  });

  it('another member’s activity links to this member’s break-glass session, and is never published back', () => {
    const mine = new PersonLinker(options());
    const theirs = new PersonLinker(options());
    mine.share();
    theirs.share();
    const t = Date.parse('2026-11-20T22:00:00Z');
    const saml = samlLogin('2026-11-20T22:01:00Z', ADMIN, 'OktaAdmins')[0]!;
    theirs.observe(saml, t + 60_000);
    const [shared] = theirs.takeShared();
    const wire = JSON.stringify(sightingOf(shared!, 'member-b'));
    const s = parseSighting(message(wire));
    const merged = mine.merge(s);
    expect(merged).toMatchObject({ source: 'cloudtrail', personId: ADMIN, firstMs: t + 60_000 });
    expect(mine.merge(s), 'the same sighting again tells nothing new').toBeNull();
    expect(mine.takeShared(), 'another member’s activity is theirs to tell').toEqual([]);
    // The admin's Okta session, judged here, links to the AWS activity the other member saw.
    const signIn = okta('2026-11-20T22:00:00Z', 'user.session.start', ADMIN, { authenticationContext: { externalSessionId: 'idx-1' } });
    const a = mine.observe(signIn, t)!;
    const session = {
      id: 'bgs-1',
      source: 'okta',
      startMs: t,
      endMs: t,
      personId: undefined,
      linkedSessionIds: undefined,
    } as unknown as Parameters<PersonLinker['attach']>[0];
    expect(mine.attach(session, a)).toBe(true);
    expect(mine.linksOf(session).map((l) => l.id)).toEqual([shared!.id]);
  });

  it('refuses malformed sightings, naming the field', () => {
    const good = JSON.parse(
      JSON.stringify(
        sightingOf(
          {
            id: 'act-1',
            personId: 'p',
            source: 'okta',
            key: 'idx',
            principal: null,
            principalId: null,
            firstMs: 1,
            lastMs: 2,
            lastEvent: okta('2026-11-20T22:00:00Z', 'user.session.start', 'p@example.com'),
            breakGlassSessionId: null,
            checked: false,
            sharedMs: -1,
          },
          'm',
        ),
      ),
    ) as Record<string, unknown>;
    expect(parseSighting(message(JSON.stringify(good))).personId).toBe('p');
    for (const [patch, field] of [
      [{ v: 2 }, /v must be 1/],
      [{ source: 'gcp' }, /source must be/],
      [{ personId: '' }, /personId must be/],
      [{ lastMs: 'soon' }, /lastMs must be a number/],
      [{ firstMs: 5 }, /firstMs is after lastMs/],
      [{ event: { ...(good.event as object), source: 'k8s' } }, /event must be/],
    ] as const)
      expect(() => parseSighting(message(JSON.stringify({ ...good, ...patch })))).toThrow(field);
    expect(() => parseSighting(message('{'))).toThrow(/not JSON/);
  });

  it('live, two members: the admin’s Okta session on one links and follows the AWS session the other saw', async () => {
    const iam = await iamStandIn({ accessKeyId: 'AKIAGLASSWATCH', roles: ['OktaAdmins'] });
    const oktaApi = await oktaStandIn({ token: 't0k', users: [`00u-${ADMIN}`] });
    closers.push(iam.close, oktaApi.close);
    const topics = uniqueTopics();
    topicsMade.push(...Object.values(topics));
    const config = liveConfig(topics, { iam, okta: oktaApi }, 'people-members.yml');
    const bus = new KafkaBus(kafkaTestOptions());
    closers.push(() => bus.close());
    const group = uniqueName('det');
    const alerts: Array<Alert & { member: string }> = [];
    const assigned = new Map<string, number[]>();
    const members = new Map<string, DetectorService>();
    for (const member of ['member-a', 'member-b']) {
      const log = createLogger({
        level: 'info',
        write: (line) => {
          const r = JSON.parse(line) as { msg: string; partitions?: number[] };
          if (r.msg === 'detector partitions assigned') assigned.set(member, r.partitions ?? []);
        },
      });
      const service = await startDetectorService({
        config,
        bus: member === 'member-a' ? bus : new KafkaBus(kafkaTestOptions()),
        store: null,
        log,
        groupId: group,
        instanceId: member,
        // The workers run beside member a only; both members append their orders to the same topics.
        workers: member === 'member-a',
        workerGroupPrefix: uniqueName('gw'),
        metricsServer: null,
        onAlert: (a) => alerts.push({ ...a, member }),
      });
      members.set(member, service);
      closers.push(() => service.stop());
    }
    // Both members hold partitions of the events topic (3 by default), none shared.
    await waitFor(() => {
      const a = assigned.get('member-a') ?? [];
      const b = assigned.get('member-b') ?? [];
      return a.length > 0 && b.length > 0 && a.length + b.length === 3 && !a.some((p) => b.includes(p));
    }, 'both members to hold partitions');
    const pA = assigned.get('member-a')![0]!;
    const pB = assigned.get('member-b')![0]!;
    const publish = (partition: number, events: AuditEvent[]) =>
      bus.publish(
        topics.events,
        events.map((e) => ({ key: identityKey(e), value: JSON.stringify(e), partition })),
      );
    const t = (s: number) => new Date(Date.now() + s * 1000).toISOString();
    await publish(pA, [okta(t(0), 'user.session.start', ADMIN, { authenticationContext: { externalSessionId: 'idx-members' } })]);
    await waitFor(() => oktaApi.requests.some((r) => r.method === 'DELETE'), 'the Okta worker to revoke the sign-in', 60_000);
    const unauthorized = alerts.find((a) => a.type === 'breakglass.unauthorized')!;
    expect(unauthorized.member).toBe('member-a');
    // The same person's AWS role session and Kubernetes requests, judged by member b.
    await publish(pB, [
      ...samlLogin(t(1), ADMIN, 'OktaAdmins'),
      cloudtrail(t(2), 'ListUsers', federated(ADMIN, 'OktaAdmins', t(1).replace(/\.\d{3}Z$/, 'Z'))),
      k8s(t(3), 'list', { username: oidcUser(ADMIN), groups: ['oidc:admins'] }, { resource: 'secrets' }),
    ]);
    await waitFor(
      () => alerts.filter((a) => a.type === 'breakglass.linked_session').length >= 2,
      'member a to link the activity member b saw',
      60_000,
    );
    const news = alerts.filter((a) => a.type === 'breakglass.linked_session');
    expect(news.map((a) => [a.member, a.source, a.sessionId]).sort()).toEqual([
      ['member-a', 'cloudtrail', unauthorized.sessionId],
      ['member-a', 'k8s', unauthorized.sessionId],
    ]);
    expect(members.get('member-b')!.build.detector.people!.totals.linked, 'member b owns no break-glass session').toBe(0);
    // Followed from member a: the person's role session fenced through the AWS worker.
    await waitFor(() => iam.calls.length > 0, 'the followed AWS revocation', 60_000);
    expect(iam.calls.map((c) => [c.Action, c.RoleName])).toEqual([['PutRolePolicy', 'OktaAdmins']]);
    expect(members.get('member-a')!.build.detector.people!.totals.followed).toBeGreaterThanOrEqual(1);
  }, 180_000);
});

function message(value: string): BusMessage {
  return { topic: 'people', partition: 0, offset: '7', key: null, value: Buffer.from(value), headers: {}, timestamp: 0 };
}
