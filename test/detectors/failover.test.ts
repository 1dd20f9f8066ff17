import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { AuditEvent } from '../../core/event.js';
import { identityKey } from '../../core/pipeline/stage.js';
import { migrate, openStore } from '../../core/store/index.js';
import { StoreWriter } from '../../core/store/writer.js';
import { sessionRow } from '../../detectors/detector.js';
import { openSessionsFromStore } from '../../detectors/restore.js';
import { SessionTracker } from '../../detectors/sessions.js';
import { kafkaTestOptions, waitFor } from '../bus/helpers.js';
import { cloudtrail, iamUser } from '../support/events.js';
import { type Harness, harness, verdictsByPrincipal } from './state-harness.js';

/**
 * Detector members in one group on the real broker, as child processes; one is killed with
 * SIGKILL mid-load. The survivors take its partitions and, restoring its open sessions from the
 * changelog, continue them: no session is alerted twice, no event goes unjudged.
 */
const USERS = 24;
const PARTITIONS = 6;

let h: Harness | null = null;
afterEach(() => h?.stopAll());

/** Event `i` of user `u`: its own source IP, so users never share a session. */
function event(u: number, i: number, base: number): AuditEvent {
  const e = cloudtrail(new Date(base + i * 1000).toISOString(), 'ListUsers', iamUser(`bg-${u}`), {
    sourceIPAddress: `203.0.113.${u + 1}`,
  });
  return e;
}

async function publishRounds(bus: KafkaBus, topic: string, from: number, to: number, base: number, all: AuditEvent[]) {
  for (let i = from; i < to; i++) {
    const round = Array.from({ length: USERS }, (_, u) => event(u, i, base));
    all.push(...round);
    await bus.publish(
      topic,
      round.map((e) => ({ key: identityKey(e), value: JSON.stringify(e) })),
    );
    await new Promise((r) => setTimeout(r, 40));
  }
}

/**
 * Users whose session does not count exactly `perUser` events: an event re-delivered after the
 * kill (handled, offset not yet committed) must not be applied to the session a second time.
 */
function countsOff(alerts: ReturnType<Harness['alerts']>, perUser: number): string[] {
  const most = new Map<string, number>();
  for (const a of alerts) {
    if (a.type !== 'breakglass.activity' || !a.principal) continue;
    most.set(a.principal, Math.max(most.get(a.principal) ?? 0, a.sessionEvents ?? 0));
  }
  return [...most].filter(([, n]) => n !== perUser).map(([p, n]) => `${p}: ${n}`);
}

async function failover(members: number) {
  h = harness();
  const bus = new KafkaBus(kafkaTestOptions({ numPartitions: PARTITIONS }));
  await bus.ensureTopic(h.topics.events, {});
  const children: ChildProcess[] = [];
  for (let m = 0; m < members; m++) children.push(await h.start(`m${m}`));
  // Every member in the group before the load (a join during the load is a rebalance of its own).
  await new Promise((r) => setTimeout(r, 4000));
  const all: AuditEvent[] = [];
  const base = Date.parse('2026-11-20T09:00:00Z');
  await publishRounds(bus, h.topics.events, 0, 10, base, all);
  const judged = () =>
    new Set(
      h!
        .alerts()
        .filter((a) => a.type === 'breakglass.activity')
        .flatMap((a) => a.eventIds),
    ).size;
  await waitFor(() => judged() >= all.length, 'the first rounds judged', 60_000);
  const victim = h.alerts().find((a) => a.member === 'm0');
  expect(victim, 'member m0 owned partitions with open sessions').toBeDefined();
  // Killed mid-load: it has handled events whose offsets are not committed yet (re-delivered to a survivor).
  const load = publishRounds(bus, h.topics.events, 10, 30, base, all);
  const handledBefore = judged();
  await waitFor(() => judged() >= handledBefore + 2 * USERS, 'the member to be busy with the next rounds', 30_000);
  children[0]!.kill('SIGKILL');
  await load;
  await waitFor(() => judged() >= all.length, 'every event judged after the kill', 90_000);
  await bus.close();

  const alerts = h.alerts();
  const ids = new Set(all.map((e) => e.id));
  const judgedIds = new Set(alerts.filter((a) => a.type === 'breakglass.activity').flatMap((a) => a.eventIds));
  expect([...ids].filter((id) => !judgedIds.has(id))).toEqual([]);
  // The dead member's users were judged by a survivor afterwards: failover happened with sessions open.
  const m0Users = new Set(alerts.filter((a) => a.member === 'm0').map((a) => a.principal));
  const takenOver = [...m0Users].filter((p) => alerts.some((a) => a.member !== 'm0' && a.principal === p));
  expect(takenOver.length).toBeGreaterThan(0);
  const verdicts = verdictsByPrincipal(alerts);
  expect(verdicts.size).toBe(USERS);
  const split = [...verdicts].filter(([, v]) => v.sessions.size !== 1).map(([p, v]) => `${p}: ${[...v.sessions].join(',')}`);
  expect(split).toEqual([]);
  expect(countsOff(alerts, 30)).toEqual([]);
  const reRaised = [...verdicts.values()].filter((v) => v.raised > 1).length;
  return { events: all.length, takenOver: takenOver.length, reRaised };
}

describe('detector failover on Kafka (members as processes, one SIGKILLed)', () => {
  it('two members: the survivor continues the dead member open sessions; 0 alerted twice, 0 unjudged', async () => {
    const r = await failover(2);
    console.log('failover 2 members', r);
    // The same verdict raised again (same alert id) only if the kill fell between the alert and its changelog write.
    expect(r.reRaised).toBeLessThanOrEqual(1);
  }, 240_000);

  it('three members: the same with the dead member partitions spread over two survivors', async () => {
    const r = await failover(3);
    console.log('failover 3 members', r);
    expect(r.reRaised).toBeLessThanOrEqual(1);
  }, 240_000);

  it('a restart with old-timestamp sessions open continues them (no split, no second alert)', async () => {
    h = harness();
    const bus = new KafkaBus(kafkaTestOptions({ numPartitions: PARTITIONS }));
    await bus.ensureTopic(h.topics.events, {});
    const first = await h.start('a');
    const all: AuditEvent[] = [];
    // Events of 2020: restore must judge "still open" by event time, not by the wall clock.
    const base = Date.parse('2020-01-01T00:00:00Z');
    await publishRounds(bus, h.topics.events, 0, 3, base, all);
    const judged = () =>
      new Set(
        h!
          .alerts()
          .filter((a) => a.type === 'breakglass.activity')
          .flatMap((a) => a.eventIds),
      ).size;
    await waitFor(() => judged() >= all.length, 'the first rounds judged', 60_000);
    first.kill('SIGKILL');
    await h.start('b');
    await publishRounds(bus, h.topics.events, 3, 6, base, all);
    await waitFor(() => judged() >= all.length, 'the rounds after the restart judged', 90_000);
    await bus.close();
    const alerts = h.alerts();
    expect(alerts.some((a) => a.member === 'b' && a.type === 'breakglass.activity')).toBe(true);
    const verdicts = verdictsByPrincipal(alerts);
    expect(verdicts.size).toBe(USERS);
    expect([...verdicts.values()].filter((v) => v.sessions.size !== 1)).toEqual([]);
    expect(countsOff(alerts, 6)).toEqual([]);
  }, 240_000);
});

describe('restart from the store (one process on chDB)', () => {
  it('restores the sessions open by event time, not by the wall clock: old-timestamp sessions survive', async () => {
    const store = openStore({ kind: 'chdb', path: join(mkdtempSync(join(tmpdir(), 'gw-restore-')), 'store') });
    try {
      await migrate(store);
      const writer = new StoreWriter(store, { batchSize: 10 });
      const tracker = new SessionTracker({ idleSeconds: 1800 });
      // Two days old (well past the idle timeout by the wall clock, within the store's TTL retention,
      // which drops older rows at its merges): a session still open at its identity's last event,
      // and one closed long before it.
      const t = Math.floor(Date.now() / 1000) * 1000 - 2 * 86_400_000;
      const ev = (key: string, ms: number, ip: string) =>
        cloudtrail(new Date(ms).toISOString(), 'ListUsers', { ...iamUser('bg-old'), accessKeyId: key }, { sourceIPAddress: ip });
      const closed = tracker.assign('bg-users', ev('AKIAOLD1', t - 7_200_000, '203.0.113.1'), t - 7_200_000).session;
      const open = tracker.assign('bg-users', ev('AKIAOLD2', t, '203.0.113.2'), t).session;
      for (const s of [closed, open]) await writer.add('sessions', sessionRow(s));
      await writer.flush();
      const restored = await openSessionsFromStore(store, 1800);
      expect(restored.map((s) => s.id)).toEqual([open.id]);
      // The next event of the identity continues it.
      const again = new SessionTracker({ idleSeconds: 1800 });
      again.restore(restored);
      const next = again.assign('bg-users', ev('AKIAOLD2', t + 60_000, '203.0.113.2'), t + 60_000);
      expect(next).toMatchObject({ created: false, session: { id: open.id } });
    } finally {
      await store.close();
    }
  }, 60_000);
});
