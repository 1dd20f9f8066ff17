// Poison units never stall a polling source (issue 9): on the real broker and a real moto S3/SQS,
// an object with a record nested 5,000 deep and a 611 KB gzip bomb (600 MB inflated) are
// dead-lettered with their key and reason, the checkpoint moves past them, a later root
// StopLogging is published, one pipeline.poison alert is raised per bad unit, RSS stays bounded;
// a broker that is down is retried, never skipped; the Kubernetes log tailer passes a line nested
// 4,500 deep; an SQS notification of a poison object is deleted, not redelivered forever; a record
// the broker refuses as too large is dead-lettered and the rest of its unit goes out.
import { appendFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip, gzipSync } from 'node:zlib';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Kafka, KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bus, type BusMessage, DEAD_LETTER_HEADERS } from '../../core/bus/types.js';
import { Fields } from '../../core/config.js';
import { GlasswatchError } from '../../core/errors.js';
import type { AuditEvent } from '../../core/event.js';
import { createLogger } from '../../core/log.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { alertId } from '../../detectors/alerts/alert.js';
import { type S3Checkpoint, S3Poller } from '../../ingest/cloudtrail/s3.js';
import { SqsConsumer } from '../../ingest/cloudtrail/sqs.js';
import { MemoryCheckpointStore } from '../../ingest/collector/checkpoint.js';
import { CollectorMetrics } from '../../ingest/collector/metrics.js';
import { classifyFailure, isTransientFailure } from '../../ingest/collector/poison.js';
import { COLLECTOR_DLQ_HEADERS, EventPublisher } from '../../ingest/collector/publisher.js';
import { parseK8sFields } from '../../ingest/k8s/collector.js';
import { AuditLogTailer, type TailCheckpoint } from '../../ingest/k8s/tailer.js';
import { type OktaCheckpoint, runOktaCollector } from '../../ingest/okta/collector.js';
import { LocalSystemLog, syntheticOktaEvent } from '../../ingest/okta/local-systemlog.js';
import { parseOktaFields } from '../../ingest/okta/options.js';
import { assertKafkaReachable, kafkaBrokers, waitFor } from '../bus/helpers.js';
import { syntheticAuditEvent } from '../support/k8s-events.js';
import { kafkaHarness } from '../support/kafka-harness.js';
import { type MotoServer, startMoto } from '../support/moto.js';
import { createBucket, createQueue, ctRecord, logFileKey, motoClients, putObject, queueDepth } from '../support/moto-cloudtrail.js';

const quiet = createLogger({ level: 'silent' });
const ACCOUNT = '111122223333';
const REGION = 'us-east-1';

/** `{"a":{"a":…"x"…}}` `depth` levels deep, built as text: JSON.stringify itself overflows the stack on it. */
const deepJson = (depth: number) => `${'{"a":'.repeat(depth)}"x"${'}'.repeat(depth)}`;

/** A CloudTrail object of one record whose requestParameters nest `depth` deep. */
function deepObject(depth: number, time: string): Buffer {
  const record = ctRecord('deep', 1, ACCOUNT, REGION, time);
  record.requestParameters = '__DEEP__';
  return gzipSync(JSON.stringify({ Records: [record] }).replace('"__DEEP__"', deepJson(depth)));
}

/** A root StopLogging: what an attacker would hide behind a poison object. */
function stopLoggingObject(time: string): Buffer {
  const record = {
    ...ctRecord('stop', 0, ACCOUNT, REGION, time),
    eventID: 'stop-logging-1',
    eventSource: 'cloudtrail.amazonaws.com',
    eventName: 'StopLogging',
    readOnly: false,
    requestParameters: { name: `arn:aws:cloudtrail:${REGION}:${ACCOUNT}:trail/main` },
    userIdentity: { type: 'Root', principalId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:root`, accountId: ACCOUNT },
  };
  return gzipSync(JSON.stringify({ Records: [record] }));
}

/** 600 MB of JSON whitespace gzipped by streaming (≈611 KB): never held inflated in the test either. */
async function gzipBomb(inflatedMiB = 600): Promise<Buffer> {
  const gz = createGzip({ level: 9, memLevel: 9 });
  const parts: Buffer[] = [];
  gz.on('data', (c: Buffer) => parts.push(c));
  const ended = new Promise((resolve) => gz.on('end', resolve));
  const spaces = Buffer.alloc(1 << 20, 0x20);
  gz.write('{"Records":[');
  for (let i = 0; i < inflatedMiB; i++) if (!gz.write(spaces)) await new Promise((resolve) => gz.once('drain', resolve));
  gz.end(']}');
  await ended;
  return Buffer.concat(parts);
}

const mib = (bytes: number) => Math.round(bytes / 1024 / 1024);

/** Peak RSS while `fn` runs, sampled every 5 ms. */
async function peakRss<T>(fn: () => Promise<T>): Promise<{ result: T; peak: number; before: number }> {
  const before = process.memoryUsage.rss();
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { result, peak, before };
  } finally {
    clearInterval(timer);
  }
}

const origin = (m: BusMessage) => JSON.parse(m.headers[COLLECTOR_DLQ_HEADERS.origin] ?? '{}') as { file?: string; line?: number | null };
const eventOf = (m: BusMessage) => JSON.parse(m.value.toString()) as AuditEvent;
const alertOf = (m: BusMessage) => JSON.parse(m.value.toString()) as Alert;

describe('poison units never stall a polling source (Kafka + moto)', () => {
  const { open, newTopics, consume, exactly, cleanup } = kafkaHarness('poison');
  let moto: MotoServer;
  let s3: S3Client;
  let sqs: SQSClient;
  const dirs: string[] = [];
  const newAlertsTopic = () => {
    const t = newTopics();
    return t.events; // a unique topic, deleted with the others
  };

  beforeAll(async () => {
    await assertKafkaReachable();
    moto = await startMoto();
    ({ s3, sqs } = motoClients(moto.endpoint));
  });
  afterAll(async () => {
    await cleanup();
    s3?.destroy();
    sqs?.destroy();
    await moto?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('S3 poller: a 5,000-deep record and a 600 MB gzip bomb are dead-lettered, the checkpoint passes them, a later StopLogging is published, RSS stays bounded', async () => {
    const bucket = 'poison-s3';
    await createBucket(s3, bucket);
    const spec = (time: string) => ({ account: ACCOUNT, region: REGION, time });
    const deepKey = logFileKey(spec('2025-11-20T10:00:00Z'));
    const bombKey = logFileKey(spec('2025-11-20T10:05:00Z'));
    const stopKey = logFileKey(spec('2025-11-20T10:10:00Z'));
    const bomb = await gzipBomb();
    expect(bomb.length).toBeLessThan(700 * 1024);
    await putObject(s3, bucket, deepKey, deepObject(5000, '2025-11-20T10:00:00Z'));
    await putObject(s3, bucket, bombKey, bomb);
    await putObject(s3, bucket, stopKey, stopLoggingObject('2025-11-20T10:10:00Z'));

    const t = newTopics();
    const alertsTopic = newAlertsTopic();
    const bus = open();
    const metrics = new CollectorMetrics();
    const checkpoints = new MemoryCheckpointStore<S3Checkpoint>();
    const publisher = new EventPublisher({
      bus,
      collector: 'cloudtrail',
      topics: t,
      normalize: { source: 'cloudtrail' },
      metrics,
      alertsTopic,
    });
    const poller = new S3Poller({ s3, bucket, publisher, checkpoints, startDate: '2025-11-20', settleSeconds: 0, metrics, logger: quiet });
    const events = await consume(bus, t.events);
    const dead = await consume(bus, t.deadLetters);
    const alerts = await consume(bus, alertsTopic);

    const { result: summary, peak, before } = await peakRss(() => poller.pollOnce());
    expect(summary).toMatchObject({ objects: 3, failedPrefixes: 0 });
    const regionPrefix = stopKey.slice(0, stopKey.indexOf('/2025/') + 1);
    expect(checkpoints.value?.after[regionPrefix]).toBe(stopKey);
    // The bomb stops at the 256 MiB budget; 600 MB never exists in memory.
    process.stderr.write(`[poison-pollers] S3 pass over the bomb: RSS ${mib(before)} → peak ${mib(peak)} MiB\n`);
    expect(peak - before).toBeLessThan(450 * 1024 * 1024);

    await exactly(events, 1, 'StopLogging event');
    expect(eventOf(events[0]!)).toMatchObject({ id: 'stop-logging-1', raw: { eventName: 'StopLogging' } });

    await exactly(dead, 2, 'dead letters');
    const byFile = new Map(dead.map((m) => [origin(m).file, m]));
    expect([...byFile.keys()].sort()).toEqual([`s3://${bucket}/${deepKey}`, `s3://${bucket}/${bombKey}`].sort());
    expect(byFile.get(`s3://${bucket}/${deepKey}`)!.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/deep|depth|stack|serializ/i);
    expect(byFile.get(`s3://${bucket}/${bombKey}`)!.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/inflates beyond 268435456 bytes/);

    await exactly(alerts, 2, 'pipeline.poison alerts');
    const raised = alerts.map(alertOf);
    expect(raised.every((a) => a.type === 'pipeline.poison' && a.severity === 'high')).toBe(true);
    expect(raised.map((a) => a.id).sort()).toEqual(
      [
        alertId('pipeline.poison', 'cloudtrail', `s3://${bucket}/${deepKey}`),
        alertId('pipeline.poison', 'cloudtrail', `s3://${bucket}/${bombKey}`),
      ].sort(),
    );
    expect(metrics.snapshot('cloudtrail')).toMatchObject({ events: 1, deadLetters: 2, poisonUnits: 2 });
    expect(metrics.render()).toContain('glasswatch_collector_poison_units_total{collector="cloudtrail"} 2');

    // Nothing is read twice: the next poll finds nothing new.
    expect((await poller.pollOnce()).objects).toBe(0);
  });

  it('S3 poller: an object S3 keeps refusing (archived: 403 InvalidObjectState) while later ones are readable becomes a dead letter after maxObjectRefusals polls; one over maxObjectBytes is never downloaded', async () => {
    const bucket = 'poison-s3-refused';
    await createBucket(s3, bucket);
    const archivedKey = logFileKey({ account: ACCOUNT, region: REGION, time: '2025-11-23T10:00:00Z' });
    const stopKey = logFileKey({ account: ACCOUNT, region: REGION, time: '2025-11-23T10:05:00Z' });
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: archivedKey, Body: stopLoggingObject('2025-11-23T10:00:00Z'), StorageClass: 'GLACIER' }),
    );
    await putObject(s3, bucket, stopKey, stopLoggingObject('2025-11-23T10:05:00Z'));
    const t = newTopics();
    const bus = open();
    const metrics = new CollectorMetrics();
    const checkpoints = new MemoryCheckpointStore<S3Checkpoint>();
    const publisher = new EventPublisher({ bus, collector: 'cloudtrail', topics: t, normalize: { source: 'cloudtrail' }, metrics });
    const poller = new S3Poller({
      s3,
      bucket,
      publisher,
      checkpoints,
      startDate: '2025-11-23',
      settleSeconds: 0,
      maxObjectRefusals: 3,
      metrics,
      logger: quiet,
    });
    const regionPrefix = stopKey.slice(0, stopKey.indexOf('/2025/') + 1);
    // Refused twice: retried, never skipped yet.
    for (let i = 0; i < 2; i++) expect(await poller.pollOnce()).toMatchObject({ failedPrefixes: 1, objects: 0 });
    expect(checkpoints.value?.after[regionPrefix]).toBeUndefined();
    expect(await poller.pollOnce()).toMatchObject({ failedPrefixes: 0, objects: 2, events: 1, deadLetters: 1 });
    expect(checkpoints.value?.after[regionPrefix]).toBe(stopKey);
    const dead = await consume(bus, t.deadLetters);
    await exactly(dead, 1, 'dead letter');
    expect(origin(dead[0]!).file).toBe(`s3://${bucket}/${archivedKey}`);
    expect(dead[0]!.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/S3 refused the object 3 times \(HTTP 403\).*storage class/);
    expect(metrics.snapshot('cloudtrail').poisonUnits).toBe(1);

    // An object larger than maxObjectBytes is never downloaded: a dead letter naming its size.
    const bigKey = logFileKey({ account: ACCOUNT, region: REGION, time: '2025-11-23T10:10:00Z' });
    await putObject(s3, bucket, bigKey, Buffer.alloc(5000, 0x20));
    const small = new S3Poller({ s3, bucket, publisher, checkpoints, settleSeconds: 0, maxObjectBytes: 4096, metrics, logger: quiet });
    expect(await small.pollOnce()).toMatchObject({ objects: 1, deadLetters: 1, failedPrefixes: 0 });
    expect(checkpoints.value?.after[regionPrefix]).toBe(bigKey);
    await exactly(dead, 2, 'dead letters');
    expect(dead[1]!.headers[DEAD_LETTER_HEADERS.reason]).toBe('object is 5000 bytes, over the 4096-byte limit (maxObjectBytes)');

    // A collector that can read nothing at all (its access is broken, not the object) keeps waiting for the fix.
    const lonely = 'poison-s3-refused-only';
    await createBucket(s3, lonely);
    await s3.send(new PutObjectCommand({ Bucket: lonely, Key: archivedKey, Body: Buffer.from('{}'), StorageClass: 'GLACIER' }));
    const waiting = new S3Poller({
      s3,
      bucket: lonely,
      publisher,
      checkpoints: new MemoryCheckpointStore<S3Checkpoint>(),
      startDate: '2025-11-23',
      settleSeconds: 0,
      maxObjectRefusals: 3,
      logger: quiet,
    });
    for (let i = 0; i < 5; i++) expect(await waiting.pollOnce()).toMatchObject({ failedPrefixes: 1, objects: 0 });
    expect(waiting.checkpoint?.after[regionPrefix]).toBeUndefined();
  });

  it('S3 poller: a broker that is down is retried, never skipped; the object goes out once the broker is back', async () => {
    const bucket = 'poison-s3-down';
    await createBucket(s3, bucket);
    const key = logFileKey({ account: ACCOUNT, region: REGION, time: '2025-11-21T10:00:00Z' });
    await putObject(s3, bucket, key, stopLoggingObject('2025-11-21T10:00:00Z'));
    const t = newTopics();
    const alertsTopic = newAlertsTopic();
    const checkpoints = new MemoryCheckpointStore<S3Checkpoint>();
    const metrics = new CollectorMetrics();
    // What kafkajs rejects `send()` with after its own retries on a broker that is gone: flagged non-retriable by kafkajs.
    let attempts = 0;
    const down: Bus = {
      kind: 'kafka',
      publish: async () => {
        attempts++;
        throw new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), {
          retryCount: 5,
          retryTime: 1000,
        });
      },
      subscribe: () => Promise.reject(new Error('unused')),
      close: async () => {},
    };
    expect(classifyFailure(new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('down'), { retryCount: 5, retryTime: 1 }))).toBe(
      'retriable',
    );
    const poller = (bus: Bus) =>
      new S3Poller({
        s3,
        bucket,
        checkpoints,
        startDate: '2025-11-21',
        settleSeconds: 0,
        metrics,
        logger: quiet,
        publisher: new EventPublisher({
          bus,
          collector: 'cloudtrail',
          topics: t,
          normalize: { source: 'cloudtrail' },
          metrics,
          alertsTopic,
          retry: { retries: 2, initialDelayMs: 10 },
        }),
      });
    const failing = poller(down);
    for (let i = 0; i < 2; i++) expect(await failing.pollOnce()).toMatchObject({ failedPrefixes: 1, objects: 0 });
    expect(attempts).toBe(6); // retried inside the publisher each time, then left for the next poll
    const regionPrefix = key.slice(0, key.indexOf('/2025/') + 1);
    expect(checkpoints.value?.after[regionPrefix]).toBeUndefined();
    expect(metrics.snapshot('cloudtrail').poisonUnits).toBe(0);

    const bus = open();
    const events = await consume(bus, t.events);
    expect(await poller(bus).pollOnce()).toMatchObject({ objects: 1, events: 1, deadLetters: 0, failedPrefixes: 0 });
    expect(checkpoints.value?.after[regionPrefix]).toBe(key);
    await exactly(events, 1, 'StopLogging event');
  });

  it('Kubernetes log tailer: a line whose requestObject nests 4,500 deep is a dead letter with file + offset; the valid lines arrive; the checkpoint moves', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-poison-tail-'));
    dirs.push(dir);
    const file = join(dir, 'audit.log');
    const valid = (n: number) => `${JSON.stringify(syntheticAuditEvent(n))}\n`;
    const bad = { ...syntheticAuditEvent(1), level: 'RequestResponse', requestObject: '__DEEP__' };
    const badLine = `${JSON.stringify(bad).replace('"__DEEP__"', deepJson(4500))}\n`;
    writeFileSync(file, valid(0));
    const badOffset = statSync(file).size;
    appendFileSync(file, badLine + valid(2) + valid(3) + valid(4));
    const size = statSync(file).size;

    const t = newTopics();
    const alertsTopic = newAlertsTopic();
    const bus = open();
    const metrics = new CollectorMetrics();
    const checkpoint = new MemoryCheckpointStore<TailCheckpoint>();
    const config = parseK8sFields(
      Fields.of('test.yaml', 'collectors.k8s', { tail: { file, startAt: 'beginning', pollIntervalMs: 50 } }),
      { checkpointDir: dir, alertsTopic, silenceSeconds: 3600, metrics: null },
      null,
    ).tail!;
    const publisher = new EventPublisher({ bus, collector: 'k8s-tail', topics: t, normalize: { source: 'k8s' }, metrics, alertsTopic });
    const tailer = new AuditLogTailer(config, { publisher, checkpoint, logger: quiet, metrics });
    const events = await consume(bus, t.events);
    const dead = await consume(bus, t.deadLetters);
    const alerts = await consume(bus, alertsTopic);
    const stop = new AbortController();
    const running = tailer.run(stop.signal);
    try {
      await waitFor(() => (checkpoint.value?.offset ?? 0) >= size, `checkpoint at ${size} (is ${checkpoint.value?.offset})`, 30_000);
    } finally {
      stop.abort();
      await running;
    }
    await exactly(events, 4, 'valid audit events');
    expect(events.map((m) => Number((eventOf(m).raw.annotations as Record<string, string>)['glasswatch.test/seq'])).sort()).toEqual([
      0, 2, 3, 4,
    ]);
    await exactly(dead, 1, 'dead letter');
    expect(origin(dead[0]!).file).toBe(`${file}@${badOffset}`);
    expect(dead[0]!.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/deep|depth|stack|serializ/i);
    await exactly(alerts, 1, 'pipeline.poison alert');
    expect(alertOf(alerts[0]!)).toMatchObject({
      type: 'pipeline.poison',
      id: alertId('pipeline.poison', 'k8s-tail', `${file}@${badOffset}`),
    });
    expect(metrics.snapshot('k8s-tail')).toMatchObject({ events: 4, deadLetters: 1, poisonUnits: 1 });
  });

  it('SQS: the notification of a poison object is dead-lettered and deleted, not redelivered forever', async () => {
    const bucket = 'poison-sqs';
    await createBucket(s3, bucket);
    const queueUrl = await createQueue(sqs, 'poison-notify');
    const deepKey = logFileKey({ account: ACCOUNT, region: REGION, time: '2025-11-22T10:00:00Z' });
    const stopKey = logFileKey({ account: ACCOUNT, region: REGION, time: '2025-11-22T10:05:00Z' });
    await putObject(s3, bucket, deepKey, deepObject(5000, '2025-11-22T10:00:00Z'));
    await putObject(s3, bucket, stopKey, stopLoggingObject('2025-11-22T10:05:00Z'));
    for (const key of [deepKey, stopKey]) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify({ Type: 'Notification', Message: JSON.stringify({ s3Bucket: bucket, s3ObjectKey: [key] }) }),
        }),
      );
    }
    const t = newTopics();
    const alertsTopic = newAlertsTopic();
    const bus = open();
    const metrics = new CollectorMetrics();
    const consumer = new SqsConsumer({
      sqs,
      s3,
      queueUrl,
      waitTimeSeconds: 1,
      visibilityTimeoutSeconds: 1,
      metrics,
      logger: quiet,
      publisher: new EventPublisher({ bus, collector: 'cloudtrail', topics: t, normalize: { source: 'cloudtrail' }, metrics, alertsTopic }),
    });
    const events = await consume(bus, t.events);
    const dead = await consume(bus, t.deadLetters);
    const total = { messages: 0, deleted: 0, failed: 0 };
    for (let i = 0; i < 10 && total.deleted < 2; i++) {
      const r = await consumer.receiveOnce();
      total.messages += r.messages;
      total.deleted += r.deleted;
      total.failed += r.failed;
    }
    expect(total).toEqual({ messages: 2, deleted: 2, failed: 0 });
    expect(await queueDepth(sqs, queueUrl)).toEqual({ visible: 0, inFlight: 0 });
    await new Promise((r) => setTimeout(r, 1500)); // past the visibility timeout: nothing comes back
    expect((await consumer.receiveOnce()).messages).toBe(0);
    await exactly(events, 1, 'StopLogging event');
    await exactly(dead, 1, 'dead letter');
    expect(origin(dead[0]!).file).toBe(`s3://${bucket}/${deepKey}`);
    expect(metrics.snapshot('cloudtrail').poisonUnits).toBe(1);
  });

  it('Okta poller: a page holding a 1.2 MB event is published without it (a dead letter naming the page), and the cursor moves on', async () => {
    const token = 'okta-poison-token-DO-NOT-LOG';
    const api = await new LocalSystemLog({ authorization: `SSWS ${token}` }).start();
    const t0 = Date.parse('2025-06-01T00:00:00Z');
    const huge = { ...syntheticOktaEvent(1, t0 + 1000), debugContext: { debugData: { seq: 1, requestUri: `/${'z'.repeat(1_200_000)}` } } };
    api.add([syntheticOktaEvent(0, t0), huge, syntheticOktaEvent(2, t0 + 2000)]);
    const dir = mkdtempSync(join(tmpdir(), 'gw-poison-okta-'));
    dirs.push(dir);
    const t = newTopics();
    const alertsTopic = newAlertsTopic();
    const bus = open();
    const checkpoint = new MemoryCheckpointStore<OktaCheckpoint>();
    const config = parseOktaFields(
      Fields.of('test.yaml', 'collectors.okta', {
        orgUrl: api.url,
        token,
        since: new Date(t0 - 60_000).toISOString(),
        pollIntervalSeconds: 0.2,
      }),
      { checkpointDir: dir, alertsTopic, silenceSeconds: 3600, metrics: null },
    );
    const events = await consume(bus, t.events);
    const dead = await consume(bus, t.deadLetters);
    const alerts = await consume(bus, alertsTopic);
    let pages = 0;
    const run = await runOktaCollector(config, {
      bus,
      topics: t,
      checkpoint,
      watchdog: null,
      logger: quiet,
      initialBackoffMs: 50,
      onPage: () => void pages++,
    });
    try {
      await waitFor(() => pages >= 1, 'the first page acknowledged', 30_000);
    } finally {
      await run.stop();
      await api.close();
    }
    await exactly(events, 2, 'valid Okta events');
    await exactly(dead, 1, 'dead letter');
    expect(origin(dead[0]!).file).toMatch(/^okta:\/api\/v1\/logs\?since=/);
    expect(dead[0]!.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/larger than|record limit/);
    await exactly(alerts, 1, 'pipeline.poison alert');
    expect(alertOf(alerts[0]!).type).toBe('pipeline.poison');
    expect(checkpoint.value?.next).toContain('after=');
    expect(run.metrics.snapshot('okta')).toMatchObject({ events: 2, deadLetters: 1, poisonUnits: 1 });
  });

  it('SQS: the notification of an object S3 keeps refusing is dead-lettered after maxObjectRefusals receives, then deleted', async () => {
    const bucket = 'poison-sqs-refused';
    await createBucket(s3, bucket);
    const queueUrl = await createQueue(sqs, 'poison-notify-refused');
    const archivedKey = logFileKey({ account: ACCOUNT, region: REGION, time: '2025-11-24T10:00:00Z' });
    const stopKey = logFileKey({ account: ACCOUNT, region: REGION, time: '2025-11-24T10:05:00Z' });
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: archivedKey, Body: stopLoggingObject('2025-11-24T10:00:00Z'), StorageClass: 'GLACIER' }),
    );
    await putObject(s3, bucket, stopKey, stopLoggingObject('2025-11-24T10:05:00Z'));
    for (const key of [archivedKey, stopKey]) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify({ Type: 'Notification', Message: JSON.stringify({ s3Bucket: bucket, s3ObjectKey: [key] }) }),
        }),
      );
    }
    const t = newTopics();
    const bus = open();
    const metrics = new CollectorMetrics();
    const consumer = new SqsConsumer({
      sqs,
      s3,
      queueUrl,
      waitTimeSeconds: 1,
      visibilityTimeoutSeconds: 1,
      maxObjectRefusals: 3,
      metrics,
      logger: quiet,
      publisher: new EventPublisher({ bus, collector: 'cloudtrail', topics: t, normalize: { source: 'cloudtrail' }, metrics }),
    });
    const total = { messages: 0, deleted: 0, failed: 0 };
    for (let i = 0; i < 20 && total.deleted < 2; i++) {
      const r = await consumer.receiveOnce();
      total.messages += r.messages;
      total.deleted += r.deleted;
      total.failed += r.failed;
    }
    // The refused one was received three times: left twice, dead-lettered and deleted the third time.
    expect(total).toEqual({ messages: 4, deleted: 2, failed: 2 });
    expect(await queueDepth(sqs, queueUrl)).toEqual({ visible: 0, inFlight: 0 });
    const dead = await consume(bus, t.deadLetters);
    await exactly(dead, 1, 'dead letter');
    expect(origin(dead[0]!).file).toBe(`s3://${bucket}/${archivedKey}`);
    expect(dead[0]!.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/in 3 receives of its notification \(HTTP 403\)/);
    expect(metrics.snapshot('cloudtrail')).toMatchObject({ events: 1, poisonUnits: 1 });
  });

  it('publisher: a record the broker refuses as too large (MESSAGE_TOO_LARGE) is a dead letter with the reason; the rest of the unit is published', async () => {
    const t = newTopics();
    // A topic whose broker-side limit is below the publisher's: the refusal comes from the broker itself.
    const admin = new Kafka({ clientId: 'poison-admin', brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          { topic: t.events, numPartitions: 3, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: '20000' }] },
        ],
      });
    } finally {
      await admin.disconnect();
    }
    const bus = open();
    const metrics = new CollectorMetrics();
    const publisher = new EventPublisher({ bus, collector: 'k8s-tail', topics: t, normalize: { source: 'k8s' }, metrics });
    const big = { ...syntheticAuditEvent(2), level: 'Request', requestObject: { data: 'x'.repeat(40_000) } };
    const text = [syntheticAuditEvent(1), big, syntheticAuditEvent(3)].map((e) => JSON.stringify(e)).join('\n');
    const summary = await publisher.publishUnit(publisher.normalizeBuffer(Buffer.from(`${text}\n`), '/var/log/audit.log@0'));
    expect(summary).toMatchObject({ events: 2, deadLetters: 1 });
    const events = await consume(bus, t.events);
    const dead = await consume(bus, t.deadLetters);
    // The broker wrote the request's other partitions before refusing the big record; the unit is sent
    // again one record at a time by a new producer (core/bus/producer-slot.ts), so those may be written
    // twice: at least once, never lost (reusing kafkajs' sequence numbers dropped or stalled later records).
    const auditIds = () => new Set(events.map((m) => (JSON.parse(m.value.toString()) as { raw: { auditID: string } }).raw.auditID));
    await waitFor(() => auditIds().size >= 2, 'events 1 and 3', 60_000);
    await exactly(dead, 1, 'dead letter');
    expect([...auditIds()].sort()).toEqual([syntheticAuditEvent(1).auditID, syntheticAuditEvent(3).auditID].sort());
    expect(events.length).toBeLessThanOrEqual(4);
    expect(dead[0]!.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/Kafka refused the event: .*larger than the max message size/);
    expect(origin(dead[0]!)).toMatchObject({ file: '/var/log/audit.log@0', line: 2 });
    expect(metrics.snapshot('k8s-tail')).toMatchObject({ events: 2, deadLetters: 1, poisonUnits: 1 });
  });

  it('publisher: an event over maxRecordBytes is a dead letter (text cut, size named) before Kafka ever sees it', async () => {
    const t = newTopics();
    const bus = open();
    const publisher = new EventPublisher({
      bus,
      collector: 'k8s-tail',
      topics: t,
      normalize: { source: 'k8s' },
      maxRecordBytes: 100_000,
      maxDeadLetterBytes: 4096,
    });
    const huge = { ...syntheticAuditEvent(5), level: 'Request', requestObject: { data: 'y'.repeat(200_000) } };
    const text = [huge, syntheticAuditEvent(6)].map((e) => JSON.stringify(e)).join('\n');
    const summary = await publisher.publishUnit(publisher.normalizeBuffer(Buffer.from(text), 'audit.log@0'));
    expect(summary).toMatchObject({ events: 1, deadLetters: 1 });
    const dead = await consume(bus, t.deadLetters);
    await exactly(dead, 1, 'dead letter');
    expect(dead[0]!.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/is \d+ bytes, over the 100000-byte record limit/);
    expect(dead[0]!.value.length).toBeLessThanOrEqual(4096);
    expect(Number(dead[0]!.headers[COLLECTOR_DLQ_HEADERS.truncated])).toBeGreaterThan(200_000);
  });

  it('failures are classified by cause: broker down and leader moving are retriable, bad input and refused records permanent', () => {
    const retriesExceeded = (cause: Error) => new KafkaJSNumberOfRetriesExceeded(cause, { retryCount: 5, retryTime: 1000 });
    // Shaped as kafkajs builds them from a broker error code (protocol/error.js): `type`, `code`, `retriable`.
    const protocolError = (type: string, code: number, retriable: boolean) =>
      new KafkaJSProtocolError(Object.assign(new Error(type), { type, code, retriable }));
    const leaderMoving = protocolError('NOT_LEADER_FOR_PARTITION', 6, true);
    const tooLarge = protocolError('MESSAGE_TOO_LARGE', 10, false);
    expect(classifyFailure(retriesExceeded(new KafkaJSConnectionError('ECONNREFUSED')))).toBe('retriable');
    expect(classifyFailure(retriesExceeded(leaderMoving))).toBe('retriable');
    expect(isTransientFailure(retriesExceeded(leaderMoving))).toBe(true);
    expect(classifyFailure(new GlasswatchError('BG_BUS_PUBLISH_FAILED', 'x', { cause: tooLarge }))).toBe('permanent');
    expect(isTransientFailure(new GlasswatchError('BG_BUS_PUBLISH_FAILED', 'x', { cause: tooLarge }))).toBe(false);
    expect(classifyFailure(new GlasswatchError('INPUT_TOO_LARGE', 'bomb'))).toBe('permanent');
    // Unknown errors are retried, never skipped: losing data silently is worse than a delay.
    expect(classifyFailure(new Error('something else'))).toBe('retriable');
    expect(classifyFailure(new GlasswatchError('TEST_DOWN', 'broker unreachable'))).toBe('retriable');
  });

  it('a normalizer that throws never escapes the publisher: the record is a dead letter and the rest of the page goes out', async () => {
    const t = newTopics();
    const bus = open();
    const publisher = new EventPublisher({ bus, collector: 'okta', topics: t, normalize: { source: 'okta' } });
    // A getter that throws stands for any normalizer bug a crafted record could reach.
    const hostile = Object.defineProperty({}, 'uuid', {
      enumerable: true,
      get() {
        throw new RangeError('Maximum call stack size exceeded');
      },
    });
    const t0 = Date.parse('2025-06-01T00:00:00Z');
    const page = [syntheticOktaEvent(0, t0), hostile, syntheticOktaEvent(2, t0 + 2000)];
    const results = publisher.normalizeDocument(page, { file: 'okta:/api/v1/logs?after=x', line: null, index: null });
    expect(results.filter((r) => r.kind === 'dead')).toMatchObject([{ origin: { index: 1 } }]);
    const summary = await publisher.publishUnit(results);
    // The other records of the page still go out.
    expect(summary).toMatchObject({ events: 2, deadLetters: 1 });
    const dead = await consume(bus, t.deadLetters);
    await exactly(dead, 1, 'dead letter');
    expect(dead[0]!.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/Maximum call stack size exceeded/);
  });
});
