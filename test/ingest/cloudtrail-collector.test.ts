// The live CloudTrail collector on a real Kafka broker and a real moto S3/SQS server:
// S3 poller (layouts, digest, rollover, crash + restart), SQS consumer (direct, SNS-wrapped,
// failure, poison), EventBridge endpoint (auth, envelopes, backpressure), runCloudTrailCollector.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import { type Bus, type BusMessage, DEAD_LETTER_HEADERS } from '../../core/bus/types.js';
import { Fields } from '../../core/config.js';
import { GlasswatchError } from '../../core/errors.js';
import type { AuditEvent } from '../../core/event.js';
import { createLogger } from '../../core/log.js';
import { parseCloudTrailFields, runCloudTrailCollector } from '../../ingest/cloudtrail/collector.js';
import { type EventBridgeReceiver, startEventBridgeReceiver } from '../../ingest/cloudtrail/eventbridge.js';
import { parseNotification } from '../../ingest/cloudtrail/notifications.js';
import { type S3Checkpoint, S3Poller } from '../../ingest/cloudtrail/s3.js';
import { SqsConsumer } from '../../ingest/cloudtrail/sqs.js';
import { FileCheckpointStore, MemoryCheckpointStore } from '../../ingest/collector/checkpoint.js';
import { CollectorMetrics } from '../../ingest/collector/metrics.js';
import { EventPublisher } from '../../ingest/collector/publisher.js';
import { assertKafkaReachable, deleteTopics, kafkaBrokers, kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';
import { type MotoServer, startMoto } from '../support/moto.js';
import {
  createBucket,
  createQueue,
  digestKey,
  logFileBytes,
  motoClients,
  putLogFile,
  putObject,
  queueDepth,
} from '../support/moto-cloudtrail.js';

const quiet = createLogger({ level: 'error', bindings: { component: 'cloudtrail-test' } });

/** Exact number of messages in a topic (sum of partition high watermarks). */
async function topicSize(topic: string): Promise<number> {
  const admin = new Kafka({ clientId: 'ct-count', brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) return 0;
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, o) => sum + Number(o.high) - Number(o.low), 0);
  } finally {
    await admin.disconnect();
  }
}

describe('CloudTrail collector (Kafka + moto)', () => {
  let moto: MotoServer;
  let s3: S3Client;
  let sqs: SQSClient;
  const buses: KafkaBus[] = [];
  const topics: string[] = [];
  const dirs: string[] = [];
  const newBus = () => {
    const bus = new KafkaBus(kafkaTestOptions({ numPartitions: 3 }));
    buses.push(bus);
    return bus;
  };
  const newTopics = () => {
    const t = { events: uniqueName('ct-events'), deadLetters: uniqueName('ct-dlq') };
    topics.push(t.events, t.deadLetters);
    return t;
  };
  /** Every message of `topic`, once the topic holds `expected` (then checked exact with the watermarks). */
  const readTopic = async (topic: string, expected: number): Promise<BusMessage[]> => {
    const got: BusMessage[] = [];
    const sub = await newBus().subscribe({
      topics: [topic],
      groupId: uniqueName('ct-reader'),
      fromBeginning: true,
      handler: async (m) => void got.push(m),
    });
    try {
      await waitFor(() => got.length >= expected, `${expected} messages on ${topic} (have ${got.length})`);
    } finally {
      await sub.stop();
    }
    expect(await topicSize(topic)).toBe(expected);
    return got;
  };
  const eventsOf = (messages: BusMessage[]) => messages.map((m) => ({ key: m.key, event: JSON.parse(m.value.toString()) as AuditEvent }));

  beforeAll(async () => {
    await assertKafkaReachable();
    moto = await startMoto();
    ({ s3, sqs } = motoClients(moto.endpoint));
  });
  afterAll(async () => {
    await Promise.allSettled(buses.map((b) => b.close()));
    await deleteTopics(topics);
    s3?.destroy();
    sqs?.destroy();
    await moto?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('S3 poller: account and org layouts, digest ignored, key order per identity, checkpoint per region prefix, day rollover', async () => {
    const bucket = 'ct-layouts';
    await createBucket(s3, bucket);
    const prefix = 'trail/';
    const files = [
      { tag: 'a1', n: 30, spec: { prefix, account: '111122223333', region: 'us-east-1', time: '2025-11-19T23:55:00Z' } },
      { tag: 'a2', n: 25, spec: { prefix, account: '111122223333', region: 'us-east-1', time: '2025-11-20T00:05:00Z' } },
      { tag: 'a3', n: 20, spec: { prefix, account: '111122223333', region: 'eu-west-1', time: '2025-11-20T00:10:00Z' } },
      {
        tag: 'o1',
        n: 15,
        spec: { prefix, org: 'o-abcdefghij', account: '444455556666', region: 'us-east-1', time: '2025-11-20T00:00:00Z' },
      },
      {
        tag: 'o2',
        n: 10,
        spec: { prefix, org: 'o-abcdefghij', account: '444455556666', region: 'us-east-1', time: '2025-11-20T00:15:00Z' },
      },
    ];
    const uploaded: { key: string; ids: string[] }[] = [];
    for (const f of files) uploaded.push(await putLogFile(s3, bucket, f.tag, f.n, f.spec));
    // A digest in its real folder, and one misfiled among the logs: neither may produce events.
    const digest = { digestS3Object: 'x', logFiles: [], digestPublicKeyFingerprint: 'f' };
    await putObject(s3, bucket, digestKey(files[0]!.spec), Buffer.from(JSON.stringify(digest)));
    const misfiled = `${prefix}AWSLogs/111122223333/CloudTrail/us-east-1/2025/11/20/111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20251120T0100Z.json.gz`;
    await putObject(s3, bucket, misfiled, Buffer.from(JSON.stringify(digest)));

    const t = newTopics();
    const metrics = new CollectorMetrics();
    const checkpoints = new MemoryCheckpointStore<S3Checkpoint>();
    const publisher = new EventPublisher({
      bus: newBus(),
      collector: 'cloudtrail',
      topics: t,
      normalize: { source: 'cloudtrail' },
      metrics,
    });
    const poller = new S3Poller({
      s3,
      bucket,
      prefix: 'trail',
      publisher,
      checkpoints,
      startDate: '2025-11-19',
      settleSeconds: 0,
      metrics,
      logger: quiet,
    });
    const first = await poller.pollOnce();
    expect(first).toMatchObject({ prefixes: 3, objects: 6, events: 100, deadLetters: 0, skipped: 1, failedPrefixes: 0 });

    // Expected order: region prefixes sorted, keys in order inside each.
    const ordered = [...uploaded].sort((a, b) => (a.key < b.key ? -1 : 1)).flatMap((u) => u.ids);
    const got = eventsOf(await readTopic(t.events, 100));
    expect(new Set(got.map((g) => g.event.id)).size).toBe(100);
    const byKey = new Map<string, string[]>();
    for (const g of got) byKey.set(g.key ?? '', [...(byKey.get(g.key ?? '') ?? []), g.event.id]);
    expect([...byKey.keys()].sort()).toEqual(
      ['alice', 'bob', 'carol', 'dave', 'erin']
        .map((w) => `cloudtrail:arn:aws:sts::111122223333:assumed-role/BreakGlassAdmin/${w}`)
        .concat(
          ['alice', 'bob', 'carol', 'dave', 'erin'].map((w) => `cloudtrail:arn:aws:sts::444455556666:assumed-role/BreakGlassAdmin/${w}`),
        )
        .sort(),
    );
    for (const [key, ids] of byKey) expect(ids, key).toEqual(ordered.filter((id) => ids.includes(id)));
    const org = got.filter((g) => g.event.id.startsWith('o'));
    expect(org.every((g) => g.event.org === 'o-abcdefghij' && g.event.account === '444455556666')).toBe(true);
    expect(got[0]!.event.raw.eventID).toBe(got[0]!.event.id);

    const regionOf = (u: (typeof uploaded)[number]) => u.key.slice(0, u.key.indexOf('/2025/') + 1);
    expect(checkpoints.value?.after).toEqual({
      // The misfiled digest sorts before the day's logs ('-' < '_'): the last key is a2's.
      [regionOf(uploaded[1]!)]: uploaded[1]!.key,
      [regionOf(uploaded[2]!)]: uploaded[2]!.key,
      [regionOf(uploaded[4]!)]: uploaded[4]!.key,
    });
    expect(metrics.snapshot('cloudtrail')).toMatchObject({ events: 100, skipped: 1, deadLetters: 0 });

    // Nothing new: nothing published. Then the next day's file arrives.
    expect((await poller.pollOnce()).objects).toBe(0);
    const next = await putLogFile(s3, bucket, 'a4', 12, {
      prefix,
      account: '111122223333',
      region: 'us-east-1',
      time: '2025-11-21T00:01:00Z',
    });
    expect(await poller.pollOnce()).toMatchObject({ objects: 1, events: 12 });
    expect(checkpoints.value?.after[regionOf(uploaded[0]!)]).toBe(next.key);
    expect(await topicSize(t.events)).toBe(112);
    expect(await topicSize(t.deadLetters)).toBe(0);
  });

  it('S3 poller killed after 4 acknowledged objects and restarted: nothing lost, only the unacknowledged 5th object re-sent', async () => {
    const bucket = 'ct-restart';
    await createBucket(s3, bucket);
    const objects = [];
    for (let i = 0; i < 10; i++) {
      objects.push(
        await putLogFile(s3, bucket, `r${i}`, 40, {
          account: '111122223333',
          region: 'us-east-1',
          time: `2025-11-20T10:${String(i * 5).padStart(2, '0')}:00Z`,
        }),
      );
    }
    const t = newTopics();
    const dir = mkdtempSync(join(tmpdir(), 'gw-ct-ckpt-'));
    dirs.push(dir);
    const store = () => new FileCheckpointStore<S3Checkpoint>(dir, 'cloudtrail-s3-ct-restart');

    // The "process" dies right after Kafka acknowledged object 5, before its checkpoint is saved;
    // once dead it sends nothing more.
    const real = newBus();
    let publishes = 0;
    let dead = false;
    const crashing: Bus = {
      kind: 'kafka',
      publish: async (topic, messages) => {
        if (dead) throw new GlasswatchError('TEST_DEAD', 'process is gone');
        await real.publish(topic, messages);
        if (topic === t.events && ++publishes === 5) {
          dead = true;
          throw new GlasswatchError('TEST_CRASH', 'killed after the acknowledgement, before the checkpoint');
        }
      },
      subscribe: (o) => real.subscribe(o),
      close: async () => {},
    };
    const options = { s3, bucket, startDate: '2025-11-20', settleSeconds: 0, prefetch: 3, logger: quiet };
    const victim = new S3Poller({
      ...options,
      checkpoints: store(),
      publisher: new EventPublisher({ bus: crashing, collector: 'cloudtrail', topics: t }),
    });
    expect(await victim.pollOnce()).toMatchObject({ objects: 4, events: 160, failedPrefixes: 1 });
    expect((await store().load())?.after).toEqual({ 'AWSLogs/111122223333/CloudTrail/us-east-1/': objects[3]!.key });

    const restarted = new S3Poller({
      ...options,
      checkpoints: store(),
      publisher: new EventPublisher({ bus: newBus(), collector: 'cloudtrail', topics: t }),
    });
    expect(await restarted.pollOnce()).toMatchObject({ objects: 6, events: 240, failedPrefixes: 0 });
    expect((await store().load())?.after).toEqual({ 'AWSLogs/111122223333/CloudTrail/us-east-1/': objects[9]!.key });

    const got = eventsOf(await readTopic(t.events, 400 + 40));
    const counts = new Map<string, number>();
    for (const g of got) counts.set(g.event.id, (counts.get(g.event.id) ?? 0) + 1);
    expect(counts.size).toBe(400);
    const twice = [...counts].filter(([, n]) => n === 2).map(([id]) => id);
    expect(twice.sort()).toEqual([...objects[4]!.ids].sort());
    expect([...counts.values()].every((n) => n === 1 || n === 2)).toBe(true);
  });

  it('SQS: direct and SNS-wrapped notifications published, then deleted; digest and test events skipped; poison dead-lettered', async () => {
    const bucket = 'ct-sqs';
    await createBucket(s3, bucket);
    const queueUrl = await createQueue(sqs, 'ct-notify');
    const spec = { account: '111122223333', region: 'us-east-1', time: '2025-11-20T10:00:00Z' };
    // A key with a space and a plus: S3 event notifications form-encode it.
    const oddKey = 'AWSLogs/111122223333/CloudTrail/us-east-1/2025/11/20/odd name+plus.json.gz';
    const odd = logFileBytes('q1', 7, spec);
    await putObject(s3, bucket, oddKey, odd.bytes);
    const second = await putLogFile(s3, bucket, 'q2', 9, spec);
    const direct = {
      Records: [
        {
          eventVersion: '2.1',
          eventSource: 'aws:s3',
          eventName: 'ObjectCreated:Put',
          s3: { bucket: { name: bucket }, object: { key: oddKey.replaceAll('+', '%2B').replaceAll(' ', '+') } },
        },
      ],
    };
    const sns = {
      Type: 'Notification',
      MessageId: 'b1',
      TopicArn: 'arn:aws:sns:us-east-1:111122223333:cloudtrail',
      Message: JSON.stringify({ s3Bucket: bucket, s3ObjectKey: [second.key, digestKey(spec)] }),
    };
    for (const body of [
      JSON.stringify(direct),
      JSON.stringify(sns),
      '{"Records": [ not json',
      JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent' }),
    ]) {
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
    }

    const t = newTopics();
    const metrics = new CollectorMetrics();
    const consumer = new SqsConsumer({
      sqs,
      s3,
      queueUrl,
      waitTimeSeconds: 1,
      metrics,
      logger: quiet,
      publisher: new EventPublisher({ bus: newBus(), collector: 'cloudtrail', topics: t, normalize: { source: 'cloudtrail' }, metrics }),
    });
    const total = { messages: 0, deleted: 0, poison: 0, failed: 0, objects: 0, events: 0 };
    while (total.messages < 4) {
      const r = await consumer.receiveOnce();
      for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += r[k];
    }
    expect(total).toEqual({ messages: 4, deleted: 4, poison: 1, failed: 0, objects: 3, events: 16 });
    expect(await queueDepth(sqs, queueUrl)).toEqual({ visible: 0, inFlight: 0 });
    expect(metrics.snapshot('cloudtrail')).toMatchObject({ events: 16, deadLetters: 1, skipped: 2 });

    const ids = eventsOf(await readTopic(t.events, 16)).map((g) => g.event.id);
    expect(ids.sort()).toEqual([...odd.ids, ...second.ids].sort());
    const [letter] = await readTopic(t.deadLetters, 1);
    expect(letter?.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/^unusable SQS notification: message body is not JSON/);
    expect(letter?.value.toString()).toBe('{"Records": [ not json');
  });

  it('SQS: a failed publish leaves the message in the queue; it is redelivered and then processed', async () => {
    const bucket = 'ct-sqs-fail';
    await createBucket(s3, bucket);
    const queueUrl = await createQueue(sqs, 'ct-notify-fail');
    const file = await putLogFile(s3, bucket, 'f1', 11, { account: '111122223333', region: 'us-east-1', time: '2025-11-20T11:00:00Z' });
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify({ Type: 'Notification', Message: JSON.stringify({ s3Bucket: bucket, s3ObjectKey: [file.key] }) }),
      }),
    );
    const t = newTopics();
    const broken: Bus = {
      kind: 'kafka',
      publish: async () => {
        throw new GlasswatchError('TEST_DOWN', 'broker unreachable');
      },
      subscribe: () => Promise.reject(new Error('unused')),
      close: async () => {},
    };
    const common = { sqs, s3, queueUrl, waitTimeSeconds: 1, visibilityTimeoutSeconds: 1, logger: quiet };
    const failing = new SqsConsumer({ ...common, publisher: new EventPublisher({ bus: broken, collector: 'cloudtrail', topics: t }) });
    expect(await failing.receiveOnce()).toMatchObject({ messages: 1, failed: 1, deleted: 0 });
    expect(await queueDepth(sqs, queueUrl)).toEqual({ visible: 0, inFlight: 1 });

    // After the 1 s visibility timeout the message is back and a healthy consumer finishes it.
    const healthy = new SqsConsumer({ ...common, publisher: new EventPublisher({ bus: newBus(), collector: 'cloudtrail', topics: t }) });
    let done = { messages: 0, deleted: 0, events: 0 };
    for (let i = 0; i < 10 && done.deleted === 0; i++) done = await healthy.receiveOnce();
    expect(done).toMatchObject({ messages: 1, deleted: 1, events: 11 });
    expect(await queueDepth(sqs, queueUrl)).toEqual({ visible: 0, inFlight: 0 });
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1 }))).Messages ?? []).toHaveLength(0);
    expect(await topicSize(t.events)).toBe(11);
  });

  it('SQS: a message whose objects take longer than the visibility timeout stays invisible until it is done', async () => {
    const bucket = 'ct-sqs-slow';
    await createBucket(s3, bucket);
    const queueUrl = await createQueue(sqs, 'ct-notify-slow');
    const file = await putLogFile(s3, bucket, 's1', 7, { account: '111122223333', region: 'us-east-1', time: '2025-11-20T12:00:00Z' });
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify({ Type: 'Notification', Message: JSON.stringify({ s3Bucket: bucket, s3ObjectKey: [file.key] }) }),
      }),
    );
    const t = newTopics();
    const real = newBus();
    // A publish that takes 3.5 s, against a 2 s visibility timeout.
    const slow: Bus = {
      ...real,
      kind: 'kafka',
      publish: async (topic, msgs) => {
        await new Promise((r) => setTimeout(r, 3500));
        return real.publish(topic, msgs);
      },
      subscribe: (o) => real.subscribe(o),
      close: () => real.close(),
    };
    const consumer = new SqsConsumer({
      sqs,
      s3,
      queueUrl,
      waitTimeSeconds: 1,
      visibilityTimeoutSeconds: 2,
      logger: quiet,
      publisher: new EventPublisher({ bus: slow, collector: 'cloudtrail', topics: t }),
    });
    const processing = consumer.receiveOnce();
    // Past the original timeout, another consumer still sees nothing.
    await new Promise((r) => setTimeout(r, 2600));
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 0 }))).Messages ?? []).toHaveLength(0);
    expect(await processing).toMatchObject({ messages: 1, deleted: 1, events: 7 });
    expect(await queueDepth(sqs, queueUrl)).toEqual({ visible: 0, inFlight: 0 });
    expect(await topicSize(t.events)).toBe(7);
  });

  describe('EventBridge endpoint', () => {
    const apiKey = 'eb-key-6f1d2c9a8b7e';
    const envelope = (id: string, detailType: string, detail: Record<string, unknown>) => ({
      version: '0',
      id,
      'detail-type': detailType,
      source: 'aws.signin',
      account: '111122223333',
      time: '2025-11-20T10:00:00Z',
      region: 'us-east-1',
      resources: [],
      detail,
    });
    const consoleLogin = {
      eventVersion: '1.08',
      eventID: 'eb-login-1',
      eventTime: '2025-11-20T10:00:00Z',
      eventSource: 'signin.amazonaws.com',
      eventName: 'ConsoleLogin',
      eventType: 'AwsConsoleSignIn',
      awsRegion: 'us-east-1',
      sourceIPAddress: '198.51.100.7',
      userIdentity: { type: 'Root', principalId: '111122223333', arn: 'arn:aws:iam::111122223333:root', accountId: '111122223333' },
      responseElements: { ConsoleLogin: 'Success' },
      additionalEventData: { MFAUsed: 'Yes' },
    };
    let receiver: EventBridgeReceiver | null = null;
    afterAll(async () => {
      await receiver?.close();
    });

    it('refuses missing and wrong credentials with 401 (secret never logged), accepts CloudTrail envelopes, skips other detail-types', async () => {
      const t = newTopics();
      const lines: string[] = [];
      const logger = createLogger({ level: 'debug', write: (l) => lines.push(l) });
      const metrics = new CollectorMetrics();
      receiver = await startEventBridgeReceiver({
        port: 0,
        auth: { apiKey: { header: 'x-glasswatch-api-key', value: apiKey }, basic: { username: 'eventbridge', password: 'pw-3c2b1a' } },
        publisher: new EventPublisher({
          bus: newBus(),
          collector: 'cloudtrail',
          topics: t,
          normalize: { source: 'cloudtrail' },
          metrics,
          logger,
        }),
        metrics,
        logger,
      });
      const post = (headers: Record<string, string>, body: unknown) =>
        fetch(`${receiver!.url}/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(body),
        });
      const login = envelope('e1', 'AWS Console Sign In via CloudTrail', consoleLogin);
      const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });

      expect((await post({}, login)).status).toBe(401);
      expect((await post({ 'x-glasswatch-api-key': `${apiKey}x` }, login)).status).toBe(401);
      expect((await post({ 'x-glasswatch-api-key': apiKey.slice(0, -1) }, login)).status).toBe(401);
      expect((await post(basic('eventbridge', 'wrong'), login)).status).toBe(401);
      expect(receiver.unauthorized).toBe(4);

      const ok = await post({ 'X-Glasswatch-Api-Key': apiKey }, login);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ accepted: 1 });
      const apiCall = envelope('e2', 'AWS API Call via CloudTrail', {
        ...consoleLogin,
        eventID: 'eb-api-1',
        eventName: 'CreateUser',
        eventType: 'AwsApiCall',
        eventSource: 'iam.amazonaws.com',
      });
      expect((await post(basic('eventbridge', 'pw-3c2b1a'), apiCall)).status).toBe(200);
      const finding = {
        ...envelope('e3', 'GuardDuty Finding', { severity: 8, type: 'UnauthorizedAccess:IAMUser/ConsoleLogin' }),
        source: 'aws.guardduty',
      };
      expect(await (await post({ 'x-glasswatch-api-key': apiKey }, finding)).json()).toEqual({ accepted: 0 });
      await receiver.drained();

      const got = eventsOf(await readTopic(t.events, 2));
      expect(got.map((g) => g.event.id).sort()).toEqual(['eb-api-1', 'eb-login-1']);
      expect(got.find((g) => g.event.id === 'eb-login-1')?.key).toBe('cloudtrail:Root');
      expect(metrics.snapshot('cloudtrail')).toMatchObject({ events: 2, skipped: 1 });
      // /metrics lives on its own listener (collectors.metrics), never on the receiver port.
      expect((await fetch(`${receiver.url}/metrics`)).status).toBe(404);
      const log = lines.join('\n');
      expect(log).toContain('unauthorized requests refused');
      expect(log).not.toContain(apiKey);
      expect(log).not.toContain('pw-3c2b1a');
      await receiver.close();
      receiver = null;
    });

    it('answers 503 when the publish queue is full', async () => {
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const slow: Bus = {
        kind: 'memory',
        publish: () => held,
        subscribe: () => Promise.reject(new Error('unused')),
        close: async () => {},
      };
      const t = newTopics();
      receiver = await startEventBridgeReceiver({
        port: 0,
        auth: { apiKey: { header: 'x-api-key', value: apiKey } },
        publisher: new EventPublisher({ bus: slow, collector: 'cloudtrail', topics: t }),
        maxQueuedBodies: 1,
        logger: quiet,
      });
      const post = (id: string) =>
        fetch(`${receiver!.url}/`, {
          method: 'POST',
          headers: { 'x-api-key': apiKey },
          body: JSON.stringify(envelope(id, 'AWS API Call via CloudTrail', { ...consoleLogin, eventID: id })),
        });
      // q1 is answered only once Kafka has it (the bus holds it); meanwhile the queue is full.
      const first = post('q1');
      await new Promise((r) => setTimeout(r, 300));
      const busy = await post('q2');
      expect(busy.status).toBe(503);
      expect(busy.headers.get('retry-after')).toBe('5');
      release();
      expect((await first).status).toBe(200);
      await receiver.drained();
      expect((await post('q3')).status).toBe(200);
      await receiver.drained();
    });
  });

  it('runCloudTrailCollector (mode s3) from a validated config section: publishes, checkpoints to a file, stops cleanly', async () => {
    const bucket = 'ct-run';
    await createBucket(s3, bucket);
    await putLogFile(s3, bucket, 'run', 25, { account: '111122223333', region: 'ap-south-1', time: '2025-11-20T12:00:00Z' });
    const dir = mkdtempSync(join(tmpdir(), 'gw-ct-run-'));
    dirs.push(dir);
    const config = parseCloudTrailFields(
      Fields.of('test.yml', 'collectors.cloudtrail', {
        mode: 's3',
        region: 'us-east-1',
        endpoint: moto.endpoint,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
        bucket,
        startDate: '2025-11-20',
        pollIntervalSeconds: 1,
        settleSeconds: 0,
      }),
    );
    const t = newTopics();
    const running = await runCloudTrailCollector({ ...config, checkpointDir: dir }, { bus: newBus(), topics: t, logger: quiet });
    await waitFor(() => running.metrics.snapshot('cloudtrail').events === 25, 'the collector to publish 25 events');
    await running.stop();
    await running.done;
    expect(await topicSize(t.events)).toBe(25);
    const saved = await new FileCheckpointStore<S3Checkpoint>(dir, 'cloudtrail-s3-ct-run').load();
    expect(Object.keys(saved?.after ?? {})).toEqual(['AWSLogs/111122223333/CloudTrail/ap-south-1/']);
  });

  it('notification bodies: SNS-wrapped S3 events, deletions skipped, broken ones poison', () => {
    const s3Event = (eventName: string, key: string) => ({
      Records: [{ eventSource: 'aws:s3', eventName, s3: { bucket: { name: 'b' }, object: { key } } }],
    });
    const wrapped = JSON.stringify({
      Type: 'Notification',
      Message: JSON.stringify(s3Event('ObjectCreated:CompleteMultipartUpload', 'AWSLogs/a%3Ab/c+d.json.gz')),
    });
    expect(parseNotification(wrapped)).toEqual({
      kind: 'objects',
      objects: [{ bucket: 'b', key: 'AWSLogs/a:b/c d.json.gz' }],
      skipped: [],
    });
    expect(parseNotification(JSON.stringify(s3Event('ObjectRemoved:Delete', 'k')))).toEqual({
      kind: 'objects',
      objects: [],
      skipped: ['s3-event:ObjectRemoved:Delete'],
    });
    expect(parseNotification(JSON.stringify(s3Event('ObjectCreated:Put', 'bad%zz')))).toMatchObject({
      kind: 'poison',
      reason: expect.stringMatching(/URL encoding/),
    });
    expect(parseNotification(JSON.stringify({ s3Bucket: 'b', s3ObjectKey: 'one' }))).toMatchObject({ kind: 'poison' });
    expect(parseNotification(JSON.stringify({ Type: 'Notification', Message: 'plain text' }))).toMatchObject({
      kind: 'poison',
      reason: expect.stringMatching(/^SNS Message is not JSON/),
    });
    // A CloudTrail log file pushed into the queue by mistake is not a notification.
    expect(parseNotification(JSON.stringify({ Records: [{ eventID: 'x', eventName: 'ListUsers' }] }))).toMatchObject({
      kind: 'poison',
      reason: expect.stringMatching(/Records\[0\] has no s3/),
    });
  });

  it('config validation names the field', () => {
    const parse = (value: Record<string, unknown>) => () => parseCloudTrailFields(Fields.of('gw.yml', 'collectors.cloudtrail', value));
    expect(parse({ mode: 's3', region: 'us-east-1' })).toThrow(/collectors\.cloudtrail\.bucket: is required/);
    expect(parse({ mode: 'sqs', region: 'us-east-1', queueUrl: 'https://sqs.us-east-1.amazonaws.com/1/q', bucket: 'b' })).toThrow(
      /bucket: is only used with mode: s3/,
    );
    expect(parse({ mode: 'eventbridge', listen: '0.0.0.0:8443' })).toThrow(/apiKey: is required unless basicAuth is set/);
    expect(parse({ mode: 'eventbridge', listen: 'nope', apiKey: 'k' })).toThrow(/listen: must be host:port/);
    expect(parse({ mode: 's3', region: 'us-east-1', bucket: 'b', startDate: '2025-13-01' })).toThrow(/startDate/);
    expect(parse({ mode: 'kinesis' })).toThrow(/mode: must be one of s3, sqs, eventbridge/);
    const eb = parseCloudTrailFields(
      Fields.of(null, 'collectors.cloudtrail', { mode: 'eventbridge', listen: '[::1]:9443', apiKey: 'k', apiKeyHeader: 'X-Key' }),
    );
    expect(eb.eventbridge).toMatchObject({ host: '::1', port: 9443, apiKey: { header: 'x-key', value: 'k' }, basic: null, tls: null });
  });
});
