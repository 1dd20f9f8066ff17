/**
 * One person across planes (issue 15), measured by `npm run bench:detect` (alone:
 * BENCH_DETECT_ONLY=linking): saturation throughput with `detector.people` alone, with revocation
 * verification too, and with sharing for other members, against both off; each round runs the four
 * modes back to back after a full GC, in a rotating order; the change is the median of the per-round
 * ratios, after one uncounted warm-up round.
 *
 * Traffic, per 20 events: 1 break-glass IAM-user event (a new unauthorized session, whose user is
 * mapped to a person), 6 Okta events, 6 IAM Identity Center role-session calls and 7 Kubernetes OIDC
 * requests by 500 people; so nearly every event maps to a person and updates its activity, and each
 * break-glass session links to its person's Okta, AWS and Kubernetes sessions.
 */
import { MemoryBus } from '../../core/bus/memory.js';
import { parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import { buildDetector } from '../../detectors/build.js';
import { sightingOf } from '../../detectors/people/sightings.js';
import { settleAppends } from '../../detectors/stages/alert-stage.js';
import { normalizeDocument } from '../../ingest/index.js';
import { benchSize, figure } from './figures.js';

const PEOPLE = 500;
type Mode = 'off' | 'linking' | 'on' | 'shared';
/** Each round in another order, so no mode always runs first (warm-up) or last. */
const ORDERS: readonly (readonly Mode[])[] = [
  ['off', 'linking', 'on', 'shared'],
  ['shared', 'off', 'linking', 'on'],
  ['on', 'shared', 'off', 'linking'],
  ['linking', 'on', 'shared', 'off'],
];
const T0 = Date.parse('2026-11-20T00:00:00Z');

function normalized(raw: Record<string, unknown>): AuditEvent {
  const r = normalizeDocument(raw, { file: 'bench', line: null, index: null }, { cluster: 'bench' })[0];
  if (r?.kind !== 'event') throw new Error('bench event did not normalize');
  return r.event;
}

export function traffic(n: number, identities: number): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (let seq = 0; seq < n; seq++) {
    const time = new Date(T0 + seq * 10).toISOString();
    const slot = seq % 20;
    if (slot === 0) {
      const user = `bg-user-${(seq / 20) % identities}`;
      out.push(
        normalized({
          eventVersion: '1.09',
          eventID: `bench-${seq}`,
          eventTime: time,
          eventSource: 'ec2.amazonaws.com',
          eventName: 'DescribeInstances',
          awsRegion: 'us-east-1',
          sourceIPAddress: `10.${(seq >> 16) & 255}.${(seq >> 8) & 255}.${seq & 255}`,
          recipientAccountId: '111122223333',
          userIdentity: { type: 'IAMUser', userName: user, principalId: `AIDA${user}`, accessKeyId: `AKIA${seq}` },
        }),
      );
      continue;
    }
    const login = `dev-${seq % PEOPLE}@example.com`;
    if (slot <= 6) {
      out.push(
        normalized({
          uuid: `okta-${seq}`,
          published: time,
          eventType: 'user.authentication.sso',
          actor: { id: `00u${seq % PEOPLE}`, type: 'User', alternateId: login },
          client: { ipAddress: '198.51.100.30' },
          outcome: { result: 'SUCCESS' },
          authenticationContext: { externalSessionId: `idx-${seq % PEOPLE}` },
        }),
      );
    } else if (slot <= 12) {
      out.push(
        normalized({
          eventVersion: '1.09',
          eventID: `bench-${seq}`,
          eventTime: time,
          eventSource: 's3.amazonaws.com',
          eventName: 'ListBuckets',
          awsRegion: 'us-east-1',
          sourceIPAddress: '198.51.100.7',
          recipientAccountId: '111122223333',
          userIdentity: {
            type: 'AssumedRole',
            principalId: `AROADEV:${login}`,
            arn: `arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Developer_0123456789abcdef/${login}`,
            accessKeyId: `ASIA${seq % PEOPLE}`,
            sessionContext: { attributes: { creationDate: '2026-11-20T00:00:00Z' } },
          },
        }),
      );
    } else {
      out.push(
        normalized({
          kind: 'Event',
          apiVersion: 'audit.k8s.io/v1',
          auditID: `k8s-${seq}`,
          stage: 'ResponseComplete',
          verb: 'list',
          user: { username: `oidc:${login}`, groups: ['oidc:developers'] },
          sourceIPs: ['10.0.0.5'],
          objectRef: { resource: 'pods', namespace: 'payments', apiVersion: 'v1' },
          responseStatus: { code: 200 },
          requestReceivedTimestamp: time,
          stageTimestamp: time,
        }),
      );
    }
  }
  return out;
}

/** Linking on vs off; `identities` are the bench's IAM-user break-glass identities (`bg-user-<i>`). */
export async function linking(identities: readonly Record<string, unknown>[], hookUrl: string): Promise<void> {
  const runs = benchSize({ full: 9, smoke: 1 });
  const n = benchSize({ full: 200_000, smoke: 2_000 });
  const events = traffic(n, identities.length);
  // Each break-glass user is a person with an Okta login (alias); the SSO role and OIDC users follow the login.
  const people = {
    windowMinutes: 60,
    k8s: { oidcUsernamePrefix: 'oidc:' },
    map: identities.map((_, i) => ({ person: `dev-${i}@example.com`, aws: [`bg-user-${i}`] })),
  };
  const rates: Record<Mode, number[]> = { on: [], off: [], shared: [], linking: [] };
  const cpu: Record<Mode, number[]> = { on: [], off: [], shared: [], linking: [] };
  let linked = 0;
  let sightings = 0;
  // Round -1 warms the JIT for all three modes and is not counted.
  for (let k = runs > 1 ? -1 : 0; k < runs; k++)
    for (const mode of ORDERS[(k + ORDERS.length) % ORDERS.length]!) {
      const bus = new MemoryBus();
      const suffix = `${mode}-${k}-${Date.now().toString(36)}`;
      const b = await buildDetector({
        config: parseConfig(
          {
            identities,
            ...(mode !== 'off' ? { detector: { people } } : {}),
            // The measure: verification and linking on, against both off.
            revocation: { webhook: { url: hookUrl, secret: 'bench' }, ...(mode === 'off' || mode === 'linking' ? { verify: false } : {}) },
            topics: { alerts: `bench-alerts-${suffix}`, revocations: `bench-revocations-${suffix}` },
          },
          'bench',
        ),
        store: null,
        log: silentLogger,
        clock: 'live',
        stages: { bus },
      });
      // shared: as with several detector members, the activity seen is taken and encoded per batch
      // for the people topic (the publish itself is the bus's cost, measured by bench:bus).
      const linker = mode === 'shared' ? b.detector.people!.linker : null;
      linker?.share();
      let told = 0;
      // A full collection first (node --expose-gc): the last run's detector must not be collected inside this one.
      (globalThis as { gc?: () => void }).gc?.();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < n; i += 500) {
        await b.detector.handle(events.slice(i, i + 500));
        await settleAppends(b.detector);
        if (linker) for (const a of linker.takeShared()) told += JSON.stringify(sightingOf(a, 'bench')).length > 0 ? 1 : 0;
      }
      const c = process.cpuUsage(c0);
      if (k >= 0) {
        rates[mode].push(n / ((performance.now() - t0) / 1000));
        cpu[mode].push(((c.user + c.system) / n) * 1000); // ns of CPU per event
      }
      if (mode === 'on') linked = b.detector.people!.totals.linked;
      if (mode === 'shared') sightings = told;
      await bus.close();
    }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const on = median(rates.on);
  const off = median(rates.off);
  const shared = median(rates.shared);
  const linkingOnly = median(rates.linking);
  // Each round's three runs share a minute of the machine: the cost is the median of the per-round ratios.
  const change = (mode: Exclude<Mode, 'off'>) => median(rates[mode].map((r, k) => ((r - rates.off[k]!) / rates.off[k]!) * 100));
  const onPct = change('on');
  const linkingPct = change('linking');
  const sharedPct = change('shared');
  figure('detect saturation, 5% break-glass, 3 planes, linking and verification off', off, 'events/s', { runs, people: PEOPLE });
  figure('detect saturation, 5% break-glass, 3 planes, linking and verification on', on, 'events/s', {
    runs,
    people: PEOPLE,
    links: linked,
  });
  figure('detect saturation, 5% break-glass, 3 planes, linking and verification on, shared with other members', shared, 'events/s', {
    runs,
    people: PEOPLE,
    sightings,
  });
  figure('detect throughput change with linking and verification on', onPct, '%', { runs, statistic: 'median of per-round ratios' });
  figure('detect throughput change with linking and verification on, shared', sharedPct, '%', {
    runs,
    statistic: 'median of per-round ratios',
  });
  figure('detect saturation, 5% break-glass, 3 planes, linking on, verification off', linkingOnly, 'events/s', { runs, people: PEOPLE });
  figure('detect throughput change with linking on (verification off)', linkingPct, '%', { runs, statistic: 'median of per-round ratios' });
  figure('detect CPU per event, linking on, verification off', median(cpu.linking), 'ns', { runs });
  figure('detect CPU per event, linking off', median(cpu.off), 'ns', { runs });
  figure('detect CPU per event, linking on and shared', median(cpu.shared), 'ns', { runs });
  figure('detect CPU per event, linking on', median(cpu.on), 'ns', { runs });
  console.log(
    `saturation (5% break-glass, Okta/AWS/Kubernetes traffic of ${PEOPLE} people, orders appended to the in-process bus) both off ${off.toFixed(0)} events/s, linking alone ${linkingOnly.toFixed(0)} events/s (${linkingPct.toFixed(1)}%), linking and verification ${on.toFixed(0)} events/s (${onPct.toFixed(1)}%), on and shared ${shared.toFixed(0)} events/s (${sharedPct.toFixed(1)}%, ${sightings} sightings); CPU per event off ${median(cpu.off).toFixed(0)} ns, linking ${median(cpu.linking).toFixed(0)} ns, both ${median(cpu.on).toFixed(0)} ns, shared ${median(cpu.shared).toFixed(0)} ns; ${linked} links in the last run; median of ${runs} rounds (changes: median of the per-round ratios ${rates.on.map((r, k) => (((r - rates.off[k]!) / rates.off[k]!) * 100).toFixed(1)).join(' ')})`,
  );
}
