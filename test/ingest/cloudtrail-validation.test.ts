// CloudTrail log-file validation on real parts: moto S3 (objects, digests with their signature in
// the S3 metadata), a real Kafka broker (events, dead letters, pipeline.tamper alerts), chDB
// (log_validation), and a ListPublicKeys stand-in that checks the documented request. Digests are
// written and signed as CloudTrail does (test/support/cloudtrail-digests.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import { type BusMessage, DEAD_LETTER_HEADERS } from '../../core/bus/types.js';
import { Fields } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { parseCloudTrailFields, runCloudTrailCollector } from '../../ingest/cloudtrail/collector.js';
import { type S3Checkpoint, S3Poller } from '../../ingest/cloudtrail/s3.js';
import { SqsConsumer } from '../../ingest/cloudtrail/sqs.js';
import { PublicKeySource } from '../../ingest/cloudtrail/validation/keys.js';
import { StoreValidationRecorder } from '../../ingest/cloudtrail/validation/record.js';
import { LogFileValidator } from '../../ingest/cloudtrail/validation/validator.js';
import { MemoryCheckpointStore } from '../../ingest/collector/checkpoint.js';
import { EventPublisher } from '../../ingest/collector/publisher.js';
import { logValidationForEvents } from '../../reports/log-validation.js';
import { assertKafkaReachable, deleteTopics, kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';
import {
  type DigestedFile,
  DigestWriter,
  newSigningKey,
  type PublicKeysStandIn,
  putDigest,
  type SigningKey,
  startPublicKeysStandIn,
  type TrailSpec,
} from '../support/cloudtrail-digests.js';
import { type MotoServer, startMoto } from '../support/moto.js';
import { createBucket, createQueue, logFileBytes, logFileKey, motoClients, putObject } from '../support/moto-cloudtrail.js';

const quiet = createLogger({ level: 'error', bindings: { component: 'ct-validation-test' } });
const ACCOUNT = '111122223333';
const REGION = 'us-east-1';
const HOUR = 3_600_000;

describe('CloudTrail log-file validation (moto + Kafka + chDB + ListPublicKeys stand-in)', () => {
  let moto: MotoServer;
  let s3: S3Client;
  let sqsClient: SQSClient;
  let store: Store;
  let key: SigningKey;
  let keysApi: PublicKeysStandIn;
  const dir = mkdtempSync(join(tmpdir(), 'gw-ct-validation-'));
  const buses: KafkaBus[] = [];
  const topics: string[] = [];

  beforeAll(async () => {
    await assertKafkaReachable();
    moto = await startMoto();
    ({ s3, sqs: sqsClient } = motoClients(moto.endpoint));
    store = openStore({ kind: 'chdb', path: join(dir, 'store') });
    await migrate(store);
    key = newSigningKey();
    // A second, older key of the region: the digest's fingerprint picks the right one.
    keysApi = await startPublicKeysStandIn([newSigningKey(new Date('2019-01-01T00:00:00Z')), key]);
  });
  afterAll(async () => {
    await Promise.allSettled(buses.map((b) => b.close()));
    await deleteTopics(topics);
    await keysApi?.close();
    s3?.destroy();
    sqsClient?.destroy();
    await moto?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A bucket with a trail, a poller that validates, a clock the test moves. */
  async function rig(bucket: string, options: { maxDigestBytes?: number; searchDigests?: boolean } = {}) {
    await createBucket(s3, bucket);
    const trail: TrailSpec = { bucket, account: ACCOUNT, region: REGION, trail: 'gw-trail', homeRegion: REGION };
    const bus = new KafkaBus(kafkaTestOptions());
    buses.push(bus);
    const t = { events: uniqueName('ctv-events'), deadLetters: uniqueName('ctv-dlq'), alerts: uniqueName('ctv-alerts') };
    topics.push(t.events, t.deadLetters, t.alerts);
    const clock = { now: Date.now() + 1000 };
    const validator = new LogFileValidator({
      s3,
      keys: new PublicKeySource({ credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, endpoint: keysApi.url }),
      recorder: new StoreValidationRecorder(store, quiet),
      bus,
      alertsTopic: t.alerts,
      region: REGION,
      windowMinutes: 120,
      ...(options.maxDigestBytes ? { maxDigestBytes: options.maxDigestBytes } : {}),
      searchDigests: options.searchDigests ?? false,
      logger: quiet,
      now: () => clock.now,
    });
    const publisher = new EventPublisher({ bus, collector: 'cloudtrail', topics: t, alertsTopic: t.alerts, logger: quiet });
    const poller = new S3Poller({
      s3,
      bucket,
      publisher,
      checkpoints: new MemoryCheckpointStore<S3Checkpoint>(),
      startDate: '2025-11-20',
      settleSeconds: 0,
      validator,
      validationExplicit: true,
      logger: quiet,
      now: () => clock.now,
    });
    const writer = new DigestWriter(key, trail);
    /** Uploads a log file of `count` records delivered at `time`. */
    const log = async (tag: string, count: number, time: string): Promise<DigestedFile & { ids: string[] }> => {
      const spec = { account: ACCOUNT, region: REGION, time };
      const k = logFileKey(spec);
      const { bytes, ids } = logFileBytes(tag, count, spec);
      await putObject(s3, bucket, k, bytes);
      return { bucket, key: k, gz: bytes, raw: gunzipSync(bytes), ids };
    };
    const statuses = async (files: { ids: string[] }[]) => {
      const map = await logValidationForEvents(
        store,
        files.flatMap((f) => f.ids),
      );
      return files.map((f) => map.get(f.ids[0] as string)?.status ?? 'none');
    };
    const readAlerts = async (expected: number): Promise<Alert[]> =>
      (await read(t.alerts, expected)).map((m) => JSON.parse(m.value.toString()) as Alert);
    const read = async (topic: string, expected: number): Promise<BusMessage[]> => {
      const got: BusMessage[] = [];
      const sub = await bus.subscribe({
        topics: [topic],
        groupId: uniqueName('ctv-reader'),
        fromBeginning: true,
        handler: async (m) => void got.push(m),
      });
      try {
        await waitFor(() => got.length >= expected, `${expected} messages on ${topic} (have ${got.length})`);
      } finally {
        await sub.stop();
      }
      return got;
    };
    return {
      topics: t,
      read,
      bus,
      bucket,
      clock,
      validator,
      poller,
      writer,
      log,
      statuses,
      readAlerts,
      put: (d: Parameters<typeof putDigest>[2]) => putDigest(s3, bucket, d),
    };
  }

  const at = (iso: string) => new Date(iso);

  it('a genuine set of log objects and chained digests validates: every object valid, no alert, one key request', async () => {
    const r = await rig('ctv-genuine');
    const a = [await r.log('gen-a', 5, '2025-11-20T10:05:00Z'), await r.log('gen-b', 3, '2025-11-20T10:35:00Z')];
    const b = [await r.log('gen-c', 4, '2025-11-20T11:10:00Z')];
    await r.put(r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), a));
    await r.put(r.writer.write(at('2025-11-20T11:00:00Z'), at('2025-11-20T12:00:00Z'), b));
    // An empty digest (no activity that hour) is chained too.
    await r.put(r.writer.write(at('2025-11-20T12:00:00Z'), at('2025-11-20T13:00:00Z'), []));
    const before = keysApi.requests.length;

    const summary = await r.poller.pollOnce();
    expect(summary).toMatchObject({ objects: 3, events: 12, deadLetters: 0, failedPrefixes: 0 });
    expect(r.validator.counts).toMatchObject({ objects: 3, valid: 3, mismatch: 0, digests: 3, badDigests: 0, chainBreaks: 0, alerts: 0 });
    expect(await r.statuses([...a, ...b])).toEqual(['valid', 'valid', 'valid']);
    expect(keysApi.refused).toEqual([]);
    expect(keysApi.requests.slice(before)).toEqual([
      { region: REGION, start: Date.parse('2025-11-20T10:00:00Z') / 1000, end: Date.parse('2025-11-20T11:00:00Z') / 1000 },
    ]);

    // Hours later, nothing is pending any more: the sweep finds nothing to flag.
    r.clock.now += 5 * HOUR;
    await r.poller.pollOnce();
    expect(r.validator.counts.missingDigest).toBe(0);
    expect(r.validator.alerts).toEqual([]);
  });

  it('a log object modified after delivery is a mismatch with a pipeline.tamper alert; its events still flow', async () => {
    const r = await rig('ctv-mismatch');
    const good = await r.log('mm-a', 4, '2025-11-20T10:05:00Z');
    const victim = await r.log('mm-b', 4, '2025-11-20T10:20:00Z');
    await r.put(r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [good, victim]));
    // Someone with write access rewrites one record of the delivered file (same key, still valid gzip).
    const doc = JSON.parse(victim.raw.toString()) as { Records: Record<string, unknown>[] };
    (doc.Records[0] as Record<string, unknown>).eventName = 'ListBuckets';
    await putObject(s3, r.bucket, victim.key, gzipSync(JSON.stringify(doc)));

    expect(await r.poller.pollOnce()).toMatchObject({ objects: 2, events: 8 });
    expect(await r.statuses([good, victim])).toEqual(['valid', 'mismatch']);
    const alerts = await r.readAlerts(1);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ type: 'pipeline.tamper', severity: 'high', source: 'cloudtrail' });
    expect(alerts[0]?.reason).toContain(victim.key);
    expect(alerts[0]?.reason).toContain('SHA-256');
  });

  it('a digest deleted from the middle: the chain gap is flagged at once, its objects become missing_digest after the window', async () => {
    const r = await rig('ctv-gap');
    const h10 = await r.log('gap-a', 3, '2025-11-20T10:05:00Z');
    const h11 = await r.log('gap-b', 3, '2025-11-20T11:05:00Z');
    const h12 = await r.log('gap-c', 3, '2025-11-20T12:05:00Z');
    await r.put(r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [h10]));
    r.writer.write(at('2025-11-20T11:00:00Z'), at('2025-11-20T12:00:00Z'), [h11]); // written by CloudTrail, then deleted
    await r.put(r.writer.write(at('2025-11-20T12:00:00Z'), at('2025-11-20T13:00:00Z'), [h12]));

    await r.poller.pollOnce();
    expect(await r.statuses([h10, h11, h12])).toEqual(['valid', 'pending', 'valid']);
    expect(r.validator.counts.chainBreaks).toBe(1);
    expect(r.validator.alerts.map((a) => a.reason)).toEqual([
      expect.stringMatching(/digest chain broken: the previous digest .*20251120T120000Z\.json\.gz is gone/),
    ]);

    // Within the window nothing more; after it, the object no digest listed is missing_digest, alerted.
    r.clock.now += 60 * 60_000;
    await r.poller.pollOnce();
    expect(await r.statuses([h11])).toEqual(['pending']);
    r.clock.now += 61 * 60_000;
    await r.poller.pollOnce();
    expect(await r.statuses([h10, h11, h12])).toEqual(['valid', 'missing_digest', 'valid']);
    const alerts = await r.readAlerts(2);
    expect(alerts.map((a) => a.type)).toEqual(['pipeline.tamper', 'pipeline.tamper']);
    expect(alerts.find((a) => a.reason?.includes(h11.key))?.reason).toContain('no digest');
  });

  it('log objects deleted before the collector read them: the digest proves they existed (mismatch, pipeline.tamper)', async () => {
    const r = await rig('ctv-deleted');
    const early = await r.log('del-a', 2, '2025-11-20T10:05:00Z');
    const kept = await r.log('del-b', 2, '2025-11-20T10:10:00Z');
    const last = await r.log('del-c', 2, '2025-11-20T10:20:00Z');
    await r.put(r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [early, kept, last]));
    for (const f of [early, last]) await s3.send(new DeleteObjectCommand({ Bucket: r.bucket, Key: f.key }));

    expect(await r.poller.pollOnce()).toMatchObject({ objects: 1, events: 2 });
    // Before the checkpoint: known at once to be gone. After it: the poller may just be behind, so it waits a window.
    const esc = (k: string) => k.replaceAll('.', '\\.');
    const deleted = (k: string) =>
      new RegExp(`^s3://ctv-deleted/${esc(k)}: log object listed by digest .*_20251120T110000Z\\.json\\.gz was deleted$`);
    expect(r.validator.alerts.map((a) => a.reason)).toEqual([expect.stringMatching(deleted(early.key))]);
    expect(await r.statuses([kept])).toEqual(['valid']);
    r.clock.now += 121 * 60_000;
    await r.poller.pollOnce();
    expect(r.validator.alerts.map((a) => a.reason)).toEqual([
      expect.stringMatching(deleted(early.key)),
      expect.stringMatching(deleted(last.key)),
    ]);
    expect(r.validator.counts).toMatchObject({ valid: 1, mismatch: 2, missingDigest: 0 });
    const rows = await (
      await store.client.query({
        query:
          "SELECT object_key, status, reason FROM log_validation WHERE bucket = {b:String} AND status = 'mismatch' ORDER BY object_key",
        query_params: { b: r.bucket },
        format: 'JSONEachRow',
      })
    ).json();
    expect(rows).toEqual([
      { object_key: early.key, status: 'mismatch', reason: 'listed by its digest but deleted from the bucket' },
      { object_key: last.key, status: 'mismatch', reason: 'listed by its digest but deleted from the bucket' },
    ]);
  });

  it('a validly signed digest whose previousDigestSignature does not match the digest before it breaks the chain', async () => {
    const r = await rig('ctv-link');
    const h10 = await r.log('link-a', 2, '2025-11-20T10:05:00Z');
    const h11 = await r.log('link-b', 2, '2025-11-20T11:05:00Z');
    await r.put(r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [h10]));
    await r.put(r.writer.write(at('2025-11-20T11:00:00Z'), at('2025-11-20T12:00:00Z'), [h11], { previousSignature: 'ab'.repeat(256) }));

    await r.poller.pollOnce();
    expect(r.validator.counts).toMatchObject({ chainBreaks: 1, badDigests: 0, valid: 2 });
    expect(r.validator.alerts[0]?.reason).toMatch(/previousDigestSignature \/ previousDigestHashValue do not match the previous digest/);
  });

  it('a bad signature, a foreign key and hostile digest files are dead letters with the reason; the collector goes on', async () => {
    const r = await rig('ctv-hostile', { maxDigestBytes: 64 * 1024 });
    const h10 = await r.log('bad-a', 2, '2025-11-20T10:05:00Z');
    const h11 = await r.log('bad-b', 2, '2025-11-20T11:05:00Z');
    const forged = await r.log('bad-c', 2, '2025-11-20T12:05:00Z');
    await r.put(r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [h10], { badSignature: true }));
    await r.put(r.writer.write(at('2025-11-20T11:00:00Z'), at('2025-11-20T12:00:00Z'), [h11]));
    // Signed by a key CloudTrail never published.
    const rogue = new DigestWriter(newSigningKey(), {
      bucket: r.bucket,
      account: ACCOUNT,
      region: REGION,
      trail: 'gw-trail',
      homeRegion: REGION,
    });
    await r.put(rogue.write(at('2025-11-20T12:00:00Z'), at('2025-11-20T13:00:00Z'), [forged]));
    const folder = `AWSLogs/${ACCOUNT}/CloudTrail-Digest/${REGION}/2025/11/20/`;
    const hostile = [
      { name: 'notgzip', body: Buffer.from('not json at all') },
      { name: 'bomb', body: gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20)) },
      { name: 'fields', body: gzipSync(JSON.stringify({ logFiles: 'x' })) },
      { name: 'nosig', body: gzipSync(JSON.stringify({ digestPublicKeyFingerprint: 'aa', logFiles: [] })) },
    ];
    for (const h of hostile)
      await putObject(
        s3,
        r.bucket,
        `${folder}${ACCOUNT}_CloudTrail-Digest_${REGION}_gw-trail_${REGION}_20251120T14${h.name}.json.gz`,
        h.body,
      );

    const summary = await r.poller.pollOnce();
    expect(summary.failedPrefixes).toBe(0);
    // A bus hiccup on the shared broker ends a digest pass where it stood (retried next poll, as it should be).
    const last = `${folder}${ACCOUNT}_CloudTrail-Digest_${REGION}_gw-trail_${REGION}_20251120T14notgzip.json.gz`;
    const digestFolder = `AWSLogs/${ACCOUNT}/CloudTrail-Digest/${REGION}/`;
    for (let i = 0; i < 3 && r.poller.checkpoint?.after[digestFolder] !== last; i++) await r.poller.pollOnce();
    expect(r.poller.checkpoint?.after[digestFolder]).toBe(last);
    const reasons = [...new Set(r.validator.alerts.map((a) => a.reason))];
    expect(reasons).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/20251120T110000Z\.json\.gz: digest file rejected: signature verification failed$/),
        expect.stringMatching(/public key not found for fingerprint/),
        expect.stringMatching(/signature verification failed: no hex x-amz-meta-signature/),
        expect.stringMatching(/invalid format: not JSON/),
        expect.stringMatching(/invalid format: .*64 KiB|invalid format: .*65536|invalid format/),
        expect.stringMatching(/field digestPublicKeyFingerprint is missing/),
      ]),
    );
    expect(reasons).toHaveLength(6);
    // The genuine digest in between still validates its object; the others' objects wait, then go missing.
    expect(await r.statuses([h10, h11, forged])).toEqual(['pending', 'valid', 'pending']);
    r.clock.now += 3 * HOUR;
    await r.poller.pollOnce();
    expect(await r.statuses([h10, h11, forged])).toEqual(['missing_digest', 'valid', 'missing_digest']);
    // Every rejected digest was checkpointed past: later polls read none of them again.
    const read = r.validator.counts.digests;
    await r.poller.pollOnce();
    expect(r.validator.counts.digests).toBe(read);
    // Each is a dead letter naming its key and why.
    const letters = await r.read(r.topics.deadLetters, 6);
    const why = [...new Set(letters.map((m) => String(m.headers[DEAD_LETTER_HEADERS.reason])))];
    expect(why).toHaveLength(6);
    expect(why.every((w) => /^CloudTrail digest s3:\/\/ctv-hostile\/AWSLogs\/.*CloudTrail-Digest.* rejected: /.test(w))).toBe(true);
    expect(why.filter((w) => w.includes('20251120T14bomb'))).toEqual([expect.stringMatching(/invalid format: .*65536/)]);
  });

  it('after a restart: pending objects come back from the store, settled by their digest or missing after the window', async () => {
    const r = await rig('ctv-restart');
    const h10 = await r.log('rs-a', 2, '2025-11-20T10:05:00Z');
    const h11 = await r.log('rs-b', 2, '2025-11-20T11:05:00Z');
    await r.poller.pollOnce(); // both published and pending; then the process dies
    const restarted = (offsetMs: number) =>
      new LogFileValidator({
        s3,
        keys: new PublicKeySource({ credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, endpoint: keysApi.url }),
        recorder: new StoreValidationRecorder(store, quiet),
        bus: r.bus,
        alertsTopic: r.topics.alerts,
        region: REGION,
        logger: quiet,
        now: () => r.clock.now + offsetMs,
      });
    const next = restarted(1000);
    // Another bucket's pending objects are not this collector's to sweep.
    expect(await next.restore('some-other-bucket')).toBe(0);
    expect(await next.restore(r.bucket)).toBe(2);
    const firstSeen = new Date(r.clock.now).toISOString();
    expect(await new StoreValidationRecorder(store).pending(10, r.bucket)).toEqual([
      { bucket: r.bucket, objectKey: h10.key, checkedAt: firstSeen },
      { bucket: r.bucket, objectKey: h11.key, checkedAt: firstSeen },
    ]);
    // h10's digest comes: the object is read again (its hash was lost with the process) and is valid.
    const d = r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [h10]);
    expect(await next.digestObject(r.bucket, d.key, d.body, { signature: d.signature })).toBeNull();
    expect(await r.statuses([h10, h11])).toEqual(['valid', 'pending']);
    // Still within the window counted from when h11 was first seen (restored from the store, not from the restart).
    r.clock.now += 119 * 60_000;
    await next.sweep();
    expect(await r.statuses([h11])).toEqual(['pending']);
    r.clock.now -= 119 * 60_000;
    // h11's never does: missing_digest once the window since it was first seen has passed.
    r.clock.now += 121 * 60_000;
    await next.sweep();
    expect(await r.statuses([h10, h11])).toEqual(['valid', 'missing_digest']);
    expect(next.alerts.map((a) => a.reason)).toEqual([expect.stringContaining(h11.key)]);

    // Deleted from the bucket after it was published: the digest proves it existed.
    await s3.send(new DeleteObjectCommand({ Bucket: r.bucket, Key: h10.key }));
    const again = restarted(2000);
    again.scope = () => 'published';
    await again.digestObject(r.bucket, d.key, d.body, { signature: d.signature });
    expect(again.alerts[0]?.reason).toContain('was deleted');
    expect(await r.statuses([h10])).toEqual(['mismatch']);
  });

  it('SQS: a digest notified before its objects settles them; one never notified is found in S3; an object no digest lists goes missing', async () => {
    const r = await rig('ctv-sqs', { searchDigests: true });
    const queueUrl = await createQueue(sqsClient, uniqueName('ctv-q'));
    const a = await r.log('sqs-a', 3, '2025-11-20T10:05:00Z');
    const b = await r.log('sqs-b', 2, '2025-11-20T10:25:00Z');
    const c = await r.log('sqs-c', 2, '2025-11-20T11:05:00Z');
    const orphan = await r.log('sqs-d', 2, '2025-11-20T12:05:00Z');
    const d = r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [a, b]);
    await r.put(d);
    // Delivered to S3, but the queue only carries log-file notifications (CloudTrail SNS): found by the search.
    await r.put(r.writer.write(at('2025-11-20T11:00:00Z'), at('2025-11-20T12:00:00Z'), [c]));
    const notify = (keys: string[]) =>
      sqsClient.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify({
            Records: keys.map((k) => ({
              eventSource: 'aws:s3',
              eventName: 'ObjectCreated:Put',
              s3: { bucket: { name: r.bucket }, object: { key: k } },
            })),
          }),
        }),
      );
    await notify([d.key]);
    await notify([a.key, b.key]);
    await notify([c.key, orphan.key]);
    const consumer = new SqsConsumer({
      sqs: sqsClient,
      s3,
      queueUrl,
      waitTimeSeconds: 1,
      publisher: new EventPublisher({ bus: r.bus, collector: 'cloudtrail', topics: r.topics, alertsTopic: r.topics.alerts, logger: quiet }),
      validator: r.validator,
      logger: quiet,
    });
    let messages = 0;
    while (messages < 3) messages += (await consumer.receiveOnce()).messages;
    expect(await r.statuses([a, b, c, orphan])).toEqual(['valid', 'valid', 'pending', 'pending']);
    r.clock.now += 121 * 60_000;
    await consumer.receiveOnce();
    expect(await r.statuses([a, b, c, orphan])).toEqual(['valid', 'valid', 'valid', 'missing_digest']);
    expect(r.validator.alerts.map((x) => x.reason)).toEqual([expect.stringContaining(orphan.key)]);
  });

  it('runCloudTrailCollector: on by default with a store (statuses stored); validateLogFiles: false is off and says so', async () => {
    const bucket = 'ctv-run';
    await createBucket(s3, bucket);
    const trail: TrailSpec = { bucket, account: ACCOUNT, region: REGION, trail: 'gw-trail', homeRegion: REGION };
    const spec = { account: ACCOUNT, region: REGION, time: '2025-11-20T10:05:00Z' };
    const k = logFileKey(spec);
    const { bytes, ids } = logFileBytes('run-a', 4, spec);
    await putObject(s3, bucket, k, bytes);
    await putDigest(
      s3,
      bucket,
      new DigestWriter(key, trail).write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [
        { bucket, key: k, gz: bytes, raw: gunzipSync(bytes) },
      ]),
    );
    const section = (extra: Record<string, unknown>) =>
      parseCloudTrailFields(
        Fields.of('test.yml', 'collectors.cloudtrail', {
          mode: 's3',
          region: REGION,
          endpoint: moto.endpoint,
          credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
          bucket,
          startDate: '2025-11-20',
          pollIntervalSeconds: 1,
          settleSeconds: 0,
          cloudTrailEndpoint: keysApi.url,
          ...extra,
        }),
      );
    const bus = new KafkaBus(kafkaTestOptions());
    buses.push(bus);
    const t = { events: uniqueName('ctv-run-events'), deadLetters: uniqueName('ctv-run-dlq') };
    topics.push(t.events, t.deadLetters);
    const checkpointDir = join(dir, 'run-checkpoints');
    const on = await runCloudTrailCollector(
      { ...section({}), checkpointDir },
      { bus, topics: t, logger: quiet, validationStore: store, watchdog: null },
    );
    expect(on.validation).toMatchObject({ state: 'on', reason: 'statuses stored in log_validation' });
    await waitFor(() => (on.validation.validator?.counts.valid ?? 0) === 1, 'the object to validate');
    await on.stop();
    expect(Object.fromEntries(await logValidationForEvents(store, ids.slice(0, 1)))).toEqual({
      [ids[0] as string]: { objectKey: k, status: 'valid' },
    });

    const off = await runCloudTrailCollector(
      { ...section({ validateLogFiles: false }), checkpointDir: join(dir, 'run-off') },
      { bus, topics: t, logger: quiet, watchdog: null },
    );
    expect(off.validation).toEqual({ state: 'off', reason: 'validateLogFiles: false', validator: null });
    await off.stop();
  });

  it('config: validateLogFiles and digestWindowMinutes are validated, only for s3 and sqs', () => {
    const base = { mode: 's3', region: REGION, bucket: 'b' };
    const parse = (v: Record<string, unknown>) => parseCloudTrailFields(Fields.of('gw.yml', 'collectors.cloudtrail', v));
    expect(parse(base).validation).toEqual({ enabled: true, explicit: false, windowMinutes: 120, endpoint: null });
    expect(parse({ ...base, validateLogFiles: true, digestWindowMinutes: 90 }).validation).toMatchObject({
      enabled: true,
      explicit: true,
      windowMinutes: 90,
    });
    expect(() => parse({ ...base, validateLogFiles: 'yes' })).toThrow(/validateLogFiles.*must be true or false/);
    expect(() => parse({ ...base, digestWindowMinutes: 30 })).toThrow(/digestWindowMinutes/);
    expect(() => parse({ ...base, cloudTrailEndpoint: 'cloudtrail.local' })).toThrow(/cloudTrailEndpoint.*http/);
    expect(() => parse({ mode: 'eventbridge', apiKey: 'k', validateLogFiles: true })).toThrow(/validateLogFiles.*only used with mode: s3/);
  });
});
