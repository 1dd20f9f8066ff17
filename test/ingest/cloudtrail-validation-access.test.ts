// Log-file validation when the collector may read the logs but not the digests (S3 answers 403
// AccessDenied for the CloudTrail-Digest folder, as a bucket policy or a narrow role does): with
// validateLogFiles unset it turns itself off and says why; set to true it stays on and fails loudly.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../core/bus/memory.js';
import { createLogger } from '../../core/log.js';
import { createS3Client } from '../../ingest/cloudtrail/aws.js';
import { type S3Checkpoint, S3Poller } from '../../ingest/cloudtrail/s3.js';
import { SqsConsumer } from '../../ingest/cloudtrail/sqs.js';
import { PublicKeySource } from '../../ingest/cloudtrail/validation/keys.js';
import { discardingRecorder } from '../../ingest/cloudtrail/validation/record.js';
import { LogFileValidator } from '../../ingest/cloudtrail/validation/validator.js';
import { MemoryCheckpointStore } from '../../ingest/collector/checkpoint.js';
import { CollectorMetrics } from '../../ingest/collector/metrics.js';
import { EventPublisher } from '../../ingest/collector/publisher.js';
import { type MotoServer, startMoto } from '../support/moto.js';
import { createBucket, createQueue, motoClients, motoConnection, putLogFile } from '../support/moto-cloudtrail.js';

const quiet = createLogger({ level: 'error', bindings: { component: 'ct-validation-access-test' } });

describe('log-file validation with unreadable digests', () => {
  let moto: MotoServer;
  let direct: S3Client;
  let denying: S3Client;
  let proxy: Server;
  const denied: string[] = [];

  beforeAll(async () => {
    moto = await startMoto();
    ({ s3: direct } = motoClients(moto.endpoint));
    // Forwards to moto, except that anything under a CloudTrail-Digest folder is 403 AccessDenied.
    proxy = createServer((req, res) => {
      if (decodeURIComponent(req.url ?? '').includes('CloudTrail-Digest')) {
        denied.push(`${req.method} ${req.url}`);
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
        return;
      }
      const upstream = request(`${moto.endpoint}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    denying = createS3Client(motoConnection(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`));
    await createBucket(direct, 'ctv-denied');
    await putLogFile(direct, 'ctv-denied', 'den', 3, { account: '111122223333', region: 'us-east-1', time: '2025-11-20T10:05:00Z' });
  });
  afterAll(async () => {
    direct?.destroy();
    denying?.destroy();
    await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
    await moto?.stop();
  });

  const poller = (explicit: boolean, metrics: CollectorMetrics) => {
    const bus = new MemoryBus();
    const topics = { events: 'events', deadLetters: 'dead' };
    const validator = new LogFileValidator({
      s3: denying,
      keys: new PublicKeySource({ credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, endpoint: 'http://127.0.0.1:9' }),
      recorder: discardingRecorder,
      bus,
      alertsTopic: 'alerts',
      region: 'us-east-1',
    });
    return new S3Poller({
      s3: denying,
      bucket: 'ctv-denied',
      publisher: new EventPublisher({ bus, collector: 'cloudtrail', topics, logger: quiet }),
      checkpoints: new MemoryCheckpointStore<S3Checkpoint>(),
      startDate: '2025-11-20',
      settleSeconds: 0,
      validator,
      validationExplicit: explicit,
      metrics,
      logger: quiet,
    });
  };

  it('validateLogFiles unset: events flow, validation turns itself off and the status says why', async () => {
    const metrics = new CollectorMetrics();
    const p = poller(false, metrics);
    expect(p.validationOff).toBeNull();
    expect(await p.pollOnce()).toMatchObject({ objects: 1, events: 3, failedPrefixes: 0 });
    expect(denied.length).toBeGreaterThan(0);
    expect(p.validationOff).toMatch(/^digests not readable \(.*Access Denied.*\); set validateLogFiles: true to make this an error$/);
    const before = denied.length;
    await p.pollOnce();
    expect(denied.length).toBe(before); // off: the digest folder is not asked again
  });

  it('validateLogFiles: true: validation stays on and every poll counts the refusal as an error', async () => {
    const metrics = new CollectorMetrics();
    const p = poller(true, metrics);
    expect(await p.pollOnce()).toMatchObject({ objects: 1, events: 3 });
    await p.pollOnce();
    expect(p.validationOff).toBeNull();
    expect(metrics.snapshot('cloudtrail').errors.receiving).toBeGreaterThanOrEqual(2);
  });

  it('SQS, validateLogFiles unset: a digest search S3 refuses turns validation off, with no false missing_digest alert', async () => {
    const { sqs } = motoClients(moto.endpoint);
    try {
      const clock = { now: Date.now() };
      const bus = new MemoryBus();
      const validator = new LogFileValidator({
        s3: denying,
        keys: new PublicKeySource({ credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, endpoint: 'http://127.0.0.1:9' }),
        recorder: discardingRecorder,
        bus,
        alertsTopic: 'alerts',
        region: 'us-east-1',
        searchDigests: true,
        now: () => clock.now,
      });
      const queueUrl = await createQueue(sqs, 'ctv-denied-q');
      const { key } = await putLogFile(direct, 'ctv-denied', 'den-q', 2, {
        account: '111122223333',
        region: 'us-east-1',
        time: '2025-11-20T11:05:00Z',
      });
      const notify = (k: string) =>
        sqs.send(
          new SendMessageCommand({
            QueueUrl: queueUrl,
            MessageBody: JSON.stringify({
              Records: [
                { eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'ctv-denied' }, object: { key: k } } },
              ],
            }),
          }),
        );
      await notify(key);
      const consumer = new SqsConsumer({
        sqs,
        s3: denying,
        queueUrl,
        waitTimeSeconds: 1,
        publisher: new EventPublisher({ bus, collector: 'cloudtrail', topics: { events: 'events', deadLetters: 'dead' }, logger: quiet }),
        validator,
        logger: quiet,
      });
      expect(await consumer.receiveOnce()).toMatchObject({ messages: 1, events: 2, deleted: 1 });
      expect(consumer.validationOff).toBeNull();
      clock.now += 121 * 60_000;
      await consumer.receiveOnce();
      expect(consumer.validationOff).toMatch(/^digests not readable \(.*Access Denied.*\)/);
      expect(validator.alerts).toEqual([]);
    } finally {
      sqs.destroy();
    }
  });
});
