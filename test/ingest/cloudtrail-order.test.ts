// Order inside one CloudTrail delivery object, live as in replay, and the configurable region
// discovery interval: real Kafka broker, real moto S3 server, the real collector.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { BusMessage } from '../../core/bus/types.js';
import { Fields } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { createLogger } from '../../core/log.js';
import { replayFiles } from '../../core/pipeline/replay.js';
import { parseCloudTrailFields, runCloudTrailCollector } from '../../ingest/cloudtrail/collector.js';
import { S3Poller } from '../../ingest/cloudtrail/s3.js';
import { MemoryCheckpointStore } from '../../ingest/collector/checkpoint.js';
import { EventPublisher } from '../../ingest/collector/publisher.js';
import { assertKafkaReachable, deleteTopics, kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';
import { type MotoServer, startMoto } from '../support/moto.js';
import { createBucket, ctRecord, logFileKey, motoClients, putLogFile, putObject } from '../support/moto-cloudtrail.js';

const quiet = createLogger({ level: 'error', bindings: { component: 'cloudtrail-order-test' } });

/** A deterministic shuffle (a fixed LCG), so a failure reproduces. */
function shuffled<T>(items: T[], seed = 7): T[] {
  const out = items.slice();
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('CloudTrail delivery order (Kafka + moto)', () => {
  let moto: MotoServer;
  let s3: S3Client;
  const buses: KafkaBus[] = [];
  const topics: string[] = [];
  const dirs: string[] = [];
  const newBus = () => {
    const bus = new KafkaBus(kafkaTestOptions({ numPartitions: 3 }));
    buses.push(bus);
    return bus;
  };
  const newTopics = () => {
    const t = { events: uniqueName('ct-order-events'), deadLetters: uniqueName('ct-order-dlq') };
    topics.push(t.events, t.deadLetters);
    return t;
  };
  const read = async (topic: string, expected: number): Promise<BusMessage[]> => {
    const got: BusMessage[] = [];
    const sub = await newBus().subscribe({
      topics: [topic],
      groupId: uniqueName('ct-order-reader'),
      fromBeginning: true,
      handler: async (m) => void got.push(m),
    });
    try {
      await waitFor(() => got.length >= expected, `${expected} messages on ${topic} (have ${got.length})`, 60_000);
    } finally {
      await sub.stop();
    }
    return got;
  };

  beforeAll(async () => {
    await assertKafkaReachable();
    moto = await startMoto();
    ({ s3 } = motoClients(moto.endpoint));
  }, 120_000);
  afterAll(async () => {
    await Promise.allSettled(buses.map((b) => b.close()));
    await deleteTopics(topics);
    s3?.destroy();
    await moto?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('records shuffled inside one object are published in event-time order per identity, the order replay judges them in', async () => {
    const bucket = 'ct-order-shuffled';
    await createBucket(s3, bucket);
    const spec = { account: '111122223333', region: 'us-east-1', time: '2025-11-20T10:05:00Z' };
    // 60 records, one second apart, five identities, then shuffled as CloudTrail may deliver them.
    const inOrder = Array.from({ length: 60 }, (_, i) =>
      ctRecord(
        'shuf',
        i,
        spec.account,
        spec.region,
        new Date(Date.parse('2025-11-20T10:00:00Z') + i * 1000).toISOString().replace('.000', ''),
      ),
    );
    const records = shuffled(inOrder);
    expect(records.map((r) => r.eventID)).not.toEqual(inOrder.map((r) => r.eventID));
    const bytes = gzipSync(JSON.stringify({ Records: records }));
    await putObject(s3, bucket, logFileKey(spec), bytes);

    const t = newTopics();
    const publisher = new EventPublisher({ bus: newBus(), collector: 'cloudtrail', topics: t, normalize: { source: 'cloudtrail' } });
    const poller = new S3Poller({
      s3,
      bucket,
      publisher,
      checkpoints: new MemoryCheckpointStore(),
      startDate: '2025-11-20',
      settleSeconds: 0,
      logger: quiet,
    });
    expect(await poller.pollOnce()).toMatchObject({ objects: 1, events: 60, deadLetters: 0 });
    const got = await read(t.events, 60);

    // Replay of the very same file: the order the stages see offline.
    const dir = mkdtempSync(join(tmpdir(), 'gw-ct-order-'));
    dirs.push(dir);
    const file = join(dir, 'object.json.gz');
    writeFileSync(file, bytes);
    const replayed: AuditEvent[] = [];
    await replayFiles({
      paths: [file],
      stages: [{ name: 'collect', handle: async (batch) => void replayed.push(...batch), flush: async () => {} }],
    });
    const byKey = (events: { key: string; id: string }[]) => {
      const m = new Map<string, string[]>();
      for (const e of events) m.set(e.key, [...(m.get(e.key) ?? []), e.id]);
      return m;
    };
    // Per identity: Kafka keeps order per key (the identity), not across keys.
    const live = byKey(got.map((m) => JSON.parse(m.value.toString()) as AuditEvent).map((e) => ({ key: e.actor.id ?? '', id: e.id })));
    const offline = byKey(replayed.map((e) => ({ key: e.actor.id ?? '', id: e.id })));
    expect(live.size).toBe(5);
    for (const [key, ids] of live) {
      expect(ids, key).toEqual(offline.get(key));
      const n = ids.map((id) => Number(id.split('-')[1]));
      expect(n, key).toEqual([...n].sort((a, b) => a - b));
    }
  }, 120_000);

  it('discoveryIntervalSeconds: a new region prefix is found on the next discovery, not after a fixed 300 s', async () => {
    const bucket = 'ct-order-discovery';
    await createBucket(s3, bucket);
    await putLogFile(s3, bucket, 'r1', 5, { account: '111122223333', region: 'us-east-1', time: '2025-11-20T12:00:00Z' });
    const dir = mkdtempSync(join(tmpdir(), 'gw-ct-disc-'));
    dirs.push(dir);
    const fields = {
      mode: 's3',
      region: 'us-east-1',
      endpoint: moto.endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      bucket,
      startDate: '2025-11-20',
      pollIntervalSeconds: 1,
      settleSeconds: 0,
      discoveryIntervalSeconds: 1,
    };
    const config = parseCloudTrailFields(Fields.of('test.yml', 'collectors.cloudtrail', fields));
    expect(config.s3?.discoveryIntervalSeconds).toBe(1);
    expect(
      parseCloudTrailFields(Fields.of('test.yml', 'collectors.cloudtrail', { ...fields, discoveryIntervalSeconds: undefined })).s3,
    ).toMatchObject({ discoveryIntervalSeconds: 300 });
    expect(() => parseCloudTrailFields(Fields.of('gw.yml', 'collectors.cloudtrail', { ...fields, discoveryIntervalSeconds: 0 }))).toThrow(
      /collectors\.cloudtrail\.discoveryIntervalSeconds/,
    );
    const t = newTopics();
    const running = await runCloudTrailCollector({ ...config, checkpointDir: dir }, { bus: newBus(), topics: t, logger: quiet });
    try {
      await waitFor(() => running.metrics.snapshot('cloudtrail').events === 5, 'the first region', 60_000);
      // A region that did not exist at the first discovery.
      await putLogFile(s3, bucket, 'r2', 7, { account: '111122223333', region: 'eu-central-1', time: '2025-11-20T12:01:00Z' });
      await waitFor(() => running.metrics.snapshot('cloudtrail').events === 12, 'the new region within a few discoveries', 20_000);
    } finally {
      await running.stop();
      await running.done;
    }
  }, 120_000);
});
