// The live detector judges the other partitions' events while one flush waits for the store.
// Measured (bench:live, issue 14): intake → verdict p50 0.6–2.3 s at half saturation, because
// the detector took one fetched partition at a time and judged nothing while it wrote that
// partition's sessions and alerts (chDB runs one query at a time, behind the sink's inserts).
// Here the store is held busy by a real long query, as the sink's inserts hold it at load.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import { parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { type DetectorService, startDetectorService } from '../../detectors/service.js';
import { deleteTopics, kafkaBrokers, kafkaTestOptions, uniqueName, uniqueTopics } from '../bus/helpers.js';
import { cloudtrail, iamUser } from '../support/events.js';

const topics = uniqueTopics();
let store: Store | null = null;
let service: DetectorService | null = null;
let bus: KafkaBus | null = null;
afterAll(async () => {
  await service?.stop();
  await bus?.close();
  await store?.close();
  await deleteTopics(Object.values(topics));
});

/** Holds chDB's one query slot for about `ms` (a real query: every later insert waits behind it). */
function holdStore(s: Store, ms: number): Promise<number> {
  const rows = Math.ceil(ms / 250);
  return s.client
    .command({
      query: `SELECT sleepEachRow(0.25) FROM numbers(${rows}) FORMAT Null`,
      clickhouse_settings: { max_block_size: '1' },
    })
    .then(() => Date.now());
}

describe('detector flushes overlap judging', () => {
  it("judges the other partitions' events of a fetch while one partition's writes wait for the store", async () => {
    store = openStore({ kind: 'chdb', path: join(mkdtempSync(join(tmpdir(), 'gw-overlap-')), 'store') });
    await migrate(store);
    const identities = ['a', 'b', 'c'].map((n) => ({
      id: `bg-${n}`,
      source: 'cloudtrail',
      match: { 'userIdentity.arn|contains': `:user/bg-${n}` },
      revocation: { mode: 'off' },
    }));
    const config = parseConfig(
      {
        bus: { kind: 'kafka', brokers: kafkaBrokers() },
        topics,
        identities,
        detector: { builtinRules: false },
        tickets: { secret: 'tickets-secret' },
      },
      'overlap.yml',
    );
    bus = new KafkaBus(kafkaTestOptions({ numPartitions: 3 }));
    for (const t of Object.values(topics)) await bus.ensureTopic(t, { compacted: t === topics.tickets });
    const raisedAt = new Map<string, number>();
    const onAlert = (a: Alert) => {
      if (a.type === 'breakglass.unauthorized' && a.identity) raisedAt.set(a.identity, Date.now());
    };
    service = await startDetectorService({ config, bus, store, log: silentLogger, onAlert, groupId: uniqueName('detector') });
    const use = (user: string): AuditEvent => cloudtrail(new Date().toISOString(), 'ListUsers', iamUser(user));
    const detector = service.build.detector;

    // A is judged; its flush takes A's rows and state, and its insert waits behind the hold.
    const hold = holdStore(store, 3000);
    await detector.handle([use('bg-a')], { partition: 0, offset: '0', defer: true });
    expect(raisedAt.has('bg-a')).toBe(true);
    let flushedAt = 0;
    const flushing = detector.flush().then(() => {
      flushedAt = Date.now();
    });
    // Meanwhile B and C, of other partitions, are judged: before, they waited for the whole flush.
    await detector.handle([use('bg-b')], { partition: 1, offset: '0', defer: true });
    await detector.handle([use('bg-c')], { partition: 2, offset: '0', defer: true });
    const judgedAt = Date.now();
    const heldUntil = await hold;
    await flushing;
    console.log('judged before the hold ended (ms)', heldUntil - judgedAt, 'flush ended after it (ms)', flushedAt - heldUntil);
    expect(heldUntil - judgedAt).toBeGreaterThan(1500);
    // The flush itself still waited for the store: it resolves only once A's rows are written.
    expect(flushedAt).toBeGreaterThanOrEqual(heldUntil);
    const stored = async () =>
      (
        await (
          await store!.client.query({
            query: "SELECT identity FROM alerts WHERE type = 'breakglass.unauthorized' ORDER BY identity",
            format: 'JSONEachRow',
          })
        ).json<{ identity: string }>()
      ).map((r) => r.identity);
    expect(await stored()).toContain('bg-a');
    // The next flush writes what was judged during the first one.
    await detector.flush();
    expect(await stored()).toEqual(['bg-a', 'bg-b', 'bg-c']);
  }, 90_000);
});
