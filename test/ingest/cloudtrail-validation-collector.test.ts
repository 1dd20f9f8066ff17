// CloudTrail log-file validation around the collectors: a restart (pending objects back from the
// store), the SQS consumer, runCloudTrailCollector with its status, and the config keys.
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import { Fields } from '../../core/config.js';
import { parseCloudTrailFields, runCloudTrailCollector } from '../../ingest/cloudtrail/collector.js';
import { SqsConsumer } from '../../ingest/cloudtrail/sqs.js';
import { PublicKeySource } from '../../ingest/cloudtrail/validation/keys.js';
import { StoreValidationRecorder } from '../../ingest/cloudtrail/validation/record.js';
import { LogFileValidator } from '../../ingest/cloudtrail/validation/validator.js';
import { EventPublisher } from '../../ingest/collector/publisher.js';
import { logValidationForEvents } from '../../reports/log-validation.js';
import { kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';
import { DigestWriter, putDigest, type TrailSpec } from '../support/cloudtrail-digests.js';
import { ACCOUNT, at, quiet, REGION, startValidationEnv, type ValidationEnv, validationRig } from '../support/cloudtrail-validation-rig.js';
import { createBucket, createQueue, logFileBytes, logFileKey, putObject } from '../support/moto-cloudtrail.js';

describe('CloudTrail log-file validation: restart, SQS, collector, config (moto + Kafka + chDB)', () => {
  let env: ValidationEnv;
  beforeAll(async () => {
    env = await startValidationEnv();
  });
  afterAll(async () => {
    await env?.stop();
  });
  const rig = (bucket: string, options?: Parameters<typeof validationRig>[2]) => validationRig(env, bucket, options);

  it('after a restart: pending objects come back from the store, settled by their digest or missing after the window', async () => {
    const r = await rig('ctv-restart');
    const h10 = await r.log('rs-a', 2, '2025-11-20T10:05:00Z');
    const h11 = await r.log('rs-b', 2, '2025-11-20T11:05:00Z');
    await r.poller.pollOnce(); // both published and pending; then the process dies
    const restarted = (offsetMs: number) =>
      new LogFileValidator({
        s3: env.s3,
        keys: new PublicKeySource({ credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, endpoint: env.keysApi.url }),
        recorder: new StoreValidationRecorder(env.store, quiet),
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
    expect(await new StoreValidationRecorder(env.store).pending(10, r.bucket)).toEqual([
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
    await env.s3.send(new DeleteObjectCommand({ Bucket: r.bucket, Key: h10.key }));
    const again = restarted(2000);
    again.scope = () => 'published';
    await again.digestObject(r.bucket, d.key, d.body, { signature: d.signature });
    expect(again.alerts[0]?.reason).toContain('was deleted');
    expect(await r.statuses([h10])).toEqual(['mismatch']);
  });

  it('SQS: a digest notified before its objects settles them; one never notified is found in S3; an object no digest lists goes missing', async () => {
    const r = await rig('ctv-sqs', { searchDigests: true });
    const queueUrl = await createQueue(env.sqs, uniqueName('ctv-q'));
    const a = await r.log('sqs-a', 3, '2025-11-20T10:05:00Z');
    const b = await r.log('sqs-b', 2, '2025-11-20T10:25:00Z');
    const c = await r.log('sqs-c', 2, '2025-11-20T11:05:00Z');
    const orphan = await r.log('sqs-d', 2, '2025-11-20T12:05:00Z');
    const d = r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [a, b]);
    await r.put(d);
    // Delivered to S3, but the queue only carries log-file notifications (CloudTrail SNS): found by the search.
    await r.put(r.writer.write(at('2025-11-20T11:00:00Z'), at('2025-11-20T12:00:00Z'), [c]));
    const notify = (keys: string[]) =>
      env.sqs.send(
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
      sqs: env.sqs,
      s3: env.s3,
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
    await createBucket(env.s3, bucket);
    const trail: TrailSpec = { bucket, account: ACCOUNT, region: REGION, trail: 'gw-trail', homeRegion: REGION };
    const spec = { account: ACCOUNT, region: REGION, time: '2025-11-20T10:05:00Z' };
    const k = logFileKey(spec);
    const { bytes, ids } = logFileBytes('run-a', 4, spec);
    await putObject(env.s3, bucket, k, bytes);
    await putDigest(
      env.s3,
      bucket,
      new DigestWriter(env.key, trail).write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [
        { bucket, key: k, gz: bytes, raw: gunzipSync(bytes) },
      ]),
    );
    const section = (extra: Record<string, unknown>) =>
      parseCloudTrailFields(
        Fields.of('test.yml', 'collectors.cloudtrail', {
          mode: 's3',
          region: REGION,
          endpoint: env.moto.endpoint,
          credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
          bucket,
          startDate: '2025-11-20',
          pollIntervalSeconds: 1,
          settleSeconds: 0,
          cloudTrailEndpoint: env.keysApi.url,
          ...extra,
        }),
      );
    const bus = new KafkaBus(kafkaTestOptions());
    env.buses.push(bus);
    const t = { events: uniqueName('ctv-run-events'), deadLetters: uniqueName('ctv-run-dlq') };
    env.topics.push(t.events, t.deadLetters);
    const checkpointDir = join(env.dir, 'run-checkpoints');
    const on = await runCloudTrailCollector(
      { ...section({}), checkpointDir },
      {
        bus,
        topics: t,
        logger: quiet,
        // The store still opening (as in `start`, where collectors come first): statuses wait, events do not.
        validationStore: new Promise((resolve) => setTimeout(() => resolve(env.store), 500)),
        watchdog: null,
      },
    );
    expect(on.validation).toMatchObject({ state: 'on', reason: 'statuses stored in log_validation' });
    await waitFor(() => (on.validation.validator?.counts.valid ?? 0) === 1, 'the object to validate');
    await on.stop();
    expect(Object.fromEntries(await logValidationForEvents(env.store, ids.slice(0, 1)))).toEqual({
      [ids[0] as string]: { objectKey: k, status: 'valid' },
    });

    const off = await runCloudTrailCollector(
      { ...section({ validateLogFiles: false }), checkpointDir: join(env.dir, 'run-off') },
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
