// Receivers acknowledge durability (issue 14, item 1): the on-disk spool (format, fsync before the
// answer, torn tails, budget, segment removal), the drain's classification of failures, and the
// Kubernetes audit webhook on the real broker: 200 only once a body is fsynced in the spool or
// acknowledged by Kafka, 503 + Retry-After when neither can be had, and every accepted event in
// Kafka, in order per key, after the broker was unreachable and the receiver restarted.
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { BusMessage } from '../../core/bus/types.js';
import { GlasswatchError } from '../../core/errors.js';
import type { AuditEvent } from '../../core/event.js';
import { request } from '../../core/http.js';
import { createLogger } from '../../core/log.js';
import { startEventBridgeReceiver } from '../../ingest/cloudtrail/eventbridge.js';
import { CollectorMetrics } from '../../ingest/collector/metrics.js';
import { EventPublisher } from '../../ingest/collector/publisher.js';
import { DurableQueue } from '../../ingest/collector/queue.js';
import { RECORD_HEADER_BYTES, Spool } from '../../ingest/collector/spool.js';
import type { K8sReceiverConfig } from '../../ingest/k8s/options.js';
import { startK8sReceiver } from '../../ingest/k8s/receiver.js';
import { startOktaHook } from '../../ingest/okta/hook.js';
import { kafkaTestOptions, waitFor } from '../bus/helpers.js';
import { syntheticAuditEvent } from '../support/k8s-events.js';
import { kafkaHarness } from '../support/kafka-harness.js';

const TOKEN = 'durable-receiver-token-0123456789';
const silent = createLogger({ level: 'silent' });
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'gw-spool-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const payload = (i: number, size = 100) => Buffer.from(`${String(i).padStart(8, '0')}:${'x'.repeat(size)}`);

async function readAll(spool: Spool): Promise<string[]> {
  const out: string[] = [];
  for (let e = await spool.next(); e; e = await spool.next(e)) out.push(e.payload.toString().slice(0, 8));
  return out;
}

describe('Spool', () => {
  it('keeps records in order across segments, 0600 files in a 0700 folder, and removes a segment once acknowledged', async () => {
    const dir = join(tempDir(), 'spool');
    const spool = await Spool.open({ dir, maxBytes: 1024 * 1024, segmentBytes: 4096 });
    for (let i = 0; i < 100; i += 10) await spool.append(Array.from({ length: 10 }, (_, j) => payload(i + j)));
    expect(spool.records).toBe(100);
    expect(spool.segments).toBeGreaterThan(2);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    expect(await readAll(spool)).toEqual(Array.from({ length: 100 }, (_, i) => String(i).padStart(8, '0')));

    const segmentsBefore = spool.segments;
    let e = await spool.next();
    for (let n = 0; n < 60 && e; n++) {
      await spool.ack(e);
      e = await spool.next();
    }
    expect(spool.records).toBe(40);
    expect(spool.segments).toBeLessThan(segmentsBefore);
    expect(readdirSync(dir).filter((f) => f.endsWith('.seg'))).toHaveLength(spool.segments);
    await spool.close();

    // Restart: replay starts at the first record not acknowledged.
    const again = await Spool.open({ dir, maxBytes: 1024 * 1024, segmentBytes: 4096 });
    expect(again.records).toBe(40);
    expect((await readAll(again))[0]).toBe('00000060');
    for (let x = await again.next(); x; x = await again.next()) await again.ack(x);
    expect(again.records).toBe(0);
    expect(again.bytes).toBe(0);
    await again.close();
  });

  it('drops a torn tail and a record with a wrong checksum at open, keeps the records before them, and appends after them', async () => {
    const dir = join(tempDir(), 'spool');
    const spool = await Spool.open({ dir, segmentBytes: 1024 * 1024, maxBytes: 8 * 1024 * 1024 });
    await spool.append([payload(0), payload(1), payload(2)]);
    await spool.close();
    const seg = join(dir, readdirSync(dir).find((f) => f.endsWith('.seg')) as string);
    const good = statSync(seg).size;
    // A record cut by the kill: its header promises 100 bytes, 10 arrived.
    const head = Buffer.alloc(RECORD_HEADER_BYTES);
    head.writeUInt32BE(100, 0);
    appendFileSync(seg, Buffer.concat([head, Buffer.alloc(10, 1)]));
    const torn = await Spool.open({ dir, segmentBytes: 1024 * 1024, maxBytes: 8 * 1024 * 1024 });
    expect(torn.records).toBe(3);
    expect(torn.tornRecords).toBe(1);
    expect(statSync(seg).size).toBe(good);
    await torn.append([payload(3)]);
    expect(await readAll(torn)).toEqual(['00000000', '00000001', '00000002', '00000003']);
    await torn.close();

    // A flipped byte inside the third record: it and what follows in its segment are not trusted.
    const bytes = readFileSync(seg);
    const third = 2 * (RECORD_HEADER_BYTES + payload(0).length) + RECORD_HEADER_BYTES + 20;
    bytes[third] = (bytes[third] as number) ^ 0xff;
    writeFileSync(seg, bytes);
    const corrupt = await Spool.open({ dir, segmentBytes: 1024 * 1024, maxBytes: 8 * 1024 * 1024 });
    expect(await readAll(corrupt)).toEqual(['00000000', '00000001', '00000003']);
    await corrupt.close();
  });

  it('refuses an append beyond maxBytes before writing it, and takes one again once records are acknowledged', async () => {
    const spool = await Spool.open({ dir: join(tempDir(), 'spool'), maxBytes: 4096, segmentBytes: 1024 });
    let accepted = 0;
    let full: unknown = null;
    for (let i = 0; i < 100 && !full; i++) {
      try {
        await spool.append([payload(i, 200)]);
        accepted++;
      } catch (err) {
        full = err;
      }
    }
    expect((full as GlasswatchError).code).toBe('BG_INGEST_SPOOL_FULL');
    expect(accepted).toBe(Math.floor(4096 / (RECORD_HEADER_BYTES + payload(0, 200).length)));
    expect(spool.wouldAccept(payload(0, 200).length)).toBe(false);
    await spool.ack((await spool.next()) as NonNullable<Awaited<ReturnType<Spool['next']>>>);
    expect(spool.wouldAccept(payload(0, 200).length)).toBe(true);
    await spool.close();
  });

  it('is opened by one process at a time; the lock of a process that is gone (kill -9) is taken over', async () => {
    const dir = join(tempDir(), 'spool');
    const spool = await Spool.open({ dir });
    await expect(Spool.open({ dir })).rejects.toMatchObject({ code: 'BG_INGEST_SPOOL_LOCKED' });
    await spool.close();
    // A pid that cannot be running (above pid_max): what a killed process leaves behind.
    writeFileSync(join(dir, 'lock'), '4194305\n');
    const again = await Spool.open({ dir });
    expect(readFileSync(join(dir, 'lock'), 'utf8').trim()).toBe(String(process.pid));
    await again.close();
  });

  it('shares one fsync between appends that arrive together (group commit)', async () => {
    const spool = await Spool.open({ dir: join(tempDir(), 'spool') });
    await Promise.all(Array.from({ length: 50 }, (_, i) => spool.append([payload(i)])));
    expect(spool.records).toBe(50);
    expect(spool.syncs).toBeLessThan(50);
    await spool.close();
  });
});

describe('DurableQueue', () => {
  it('retries a transient failure with the record kept, dead-letters a permanent one, and keeps spool order', async () => {
    const spool = await Spool.open({ dir: join(tempDir(), 'spool') });
    const published: string[] = [];
    const dead: string[] = [];
    let downFor = 3;
    const queue = new DurableQueue({
      spool,
      backoff: { initialMs: 5, maxMs: 20 },
      handle: async (payloads) => {
        const ids = payloads.map((p) => p.toString().slice(0, 8));
        if (ids.includes('00000001') && downFor-- > 0) {
          // What kafkajs rejects with once its own retries are spent: flagged non-retriable, still transient.
          throw new GlasswatchError('BG_INGEST_PUBLISH_FAILED', 'broker down', {
            cause: Object.assign(new Error('retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', retriable: false }),
          });
        }
        if (ids.includes('00000002')) throw new GlasswatchError('BG_INGEST_RECORD_TOO_LARGE', 'too large');
        published.push(...ids);
      },
      deadLetter: async (p) => void dead.push(p.toString().slice(0, 8)),
    });
    for (let i = 0; i < 5; i++) expect(await queue.offer(payload(i))).toBe(true);
    await queue.drained();
    expect(published).toEqual(['00000000', '00000001', '00000003', '00000004']);
    expect(dead).toEqual(['00000002']);
    expect(downFor).toBeLessThan(0); // three transient failures were retried, not dropped
    expect(spool.records).toBe(0);
    await queue.close();
  });
});

describe('Kubernetes audit webhook acknowledges durability (real broker)', () => {
  const { open, newTopics, consume, exactly, stops, cleanup } = kafkaHarness('durable');
  afterAll(cleanup, 60_000);

  const eventList = (from: number, count: number) =>
    JSON.stringify({
      kind: 'EventList',
      apiVersion: 'audit.k8s.io/v1',
      items: Array.from({ length: count }, (_, i) => syntheticAuditEvent(from + i)),
    });
  const post = (url: string, body: string) =>
    request({
      url,
      method: 'POST',
      body,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      timeoutMs: 60_000,
    });
  const config = (spool: K8sReceiverConfig['spool']): K8sReceiverConfig => ({
    host: '127.0.0.1',
    port: 0,
    path: '/audit',
    tls: null,
    token: TOKEN,
    maxBodyBytes: 16 * 1024 * 1024,
    maxDecompressedBytes: 64 * 1024 * 1024,
    queueEvents: 20_000,
    queueBytes: 64 * 1024 * 1024,
    limits: {
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 5_000,
      bodyIdleTimeoutMs: 10_000,
      maxConnections: 64,
      maxConnectionsPerIp: 64,
    },
    spool,
  });
  /** A real Kafka client pointed at a port where no broker listens: the broker is down. */
  const downBus = () => new KafkaBus(kafkaTestOptions({ brokers: ['127.0.0.1:1'], retries: 1, connectionTimeoutMs: 300, logger: silent }));
  const seqOf = (m: BusMessage) =>
    Number(((JSON.parse(m.value.toString()) as AuditEvent).raw.annotations as Record<string, string>)['glasswatch.test/seq']);

  it('broker down: 200 while the spool has room, 503 + Retry-After once it is full; after a restart on a live broker every accepted event is in Kafka in order per key', {
    timeout: 120_000,
  }, async () => {
    const topics = newTopics();
    const dir = join(tempDir(), 'spool');
    const metrics = new CollectorMetrics();
    const down = downBus();
    stops.push(() => down.close());
    const body = (i: number) => eventList(i * 50, 50);
    const spoolConfig = { dir, maxBytes: Buffer.byteLength(body(0)) * 6 + 1024, segmentBytes: 16 * 1024 };
    const first = await startK8sReceiver(config(spoolConfig), {
      publisher: new EventPublisher({ bus: down, collector: 'k8s', topics, metrics, normalize: { source: 'k8s' }, retry: { retries: 0 } }),
      logger: silent,
      metrics,
    });
    const accepted: number[] = [];
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await post(`${first.url}/audit`, body(i));
      statuses.push(res.status);
      if (res.status === 200) accepted.push(i);
      else expect(res.headers['retry-after']).toBe('10');
    }
    expect(accepted.length).toBeGreaterThanOrEqual(5);
    expect(statuses.slice(accepted.length).every((s) => s === 503)).toBe(true);
    expect(first.spool?.records).toBe(accepted.length);
    expect(metrics.render()).toContain(`glasswatch_collector_spool_records{collector="k8s"} ${accepted.length}`);
    expect(metrics.render()).toContain(`glasswatch_collector_spool_max_bytes{collector="k8s"} ${spoolConfig.maxBytes}`);
    await first.close();

    // Restarted against the live broker, with the same spool: the backlog is replayed first.
    const bus = open();
    const got = await consume(bus, topics.events);
    const second = await startK8sReceiver(config(spoolConfig), {
      publisher: new EventPublisher({ bus, collector: 'k8s', topics, metrics, normalize: { source: 'k8s' } }),
      logger: silent,
      metrics,
    });
    stops.push(() => second.close());
    // The replayed backlog fills the spool until it drains: a new body waits for room (503), then fits.
    await second.drained();
    expect((await post(`${second.url}/audit`, body(10))).status).toBe(200);
    await second.drained();
    const expected = (accepted.length + 1) * 50;
    await exactly(got, expected, 'events');
    const seqs = got.map(seqOf);
    expect(new Set(seqs)).toEqual(new Set([...accepted, 10].flatMap((i) => Array.from({ length: 50 }, (_, j) => i * 50 + j))));
    // Per key (identity → partition) the events arrive in the order they were accepted.
    const byKey = new Map<string, number[]>();
    for (const m of got) byKey.set(String(m.key), [...(byKey.get(String(m.key)) ?? []), seqOf(m)]);
    for (const list of byKey.values()) expect(list).toEqual([...list].sort((a, b) => a - b));
    expect(second.spool?.records).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.seg')).length).toBeLessThanOrEqual(1);
  });

  it('without a spool, 200 only after Kafka acknowledged; a broker that is down gets 503 + Retry-After, never 200', {
    timeout: 120_000,
  }, async () => {
    const topics = newTopics();
    const metrics = new CollectorMetrics();
    const down = downBus();
    stops.push(() => down.close());
    const dead = await startK8sReceiver(config(null), {
      publisher: new EventPublisher({ bus: down, collector: 'k8s', topics, metrics, normalize: { source: 'k8s' }, retry: { retries: 0 } }),
      logger: silent,
      metrics,
    });
    stops.push(() => dead.close());
    const refused = await post(`${dead.url}/audit`, eventList(0, 20));
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('10');

    const bus = open();
    const got = await consume(bus, topics.events);
    const live = await startK8sReceiver(config(null), {
      publisher: new EventPublisher({ bus, collector: 'k8s', topics, metrics, normalize: { source: 'k8s' } }),
      logger: silent,
      metrics,
    });
    stops.push(() => live.close());
    const ok = await post(`${live.url}/audit`, eventList(0, 20));
    expect(ok.status).toBe(200);
    // Acknowledged by Kafka before the answer: the events are readable now, not later.
    await waitFor(() => got.length >= 20, '20 events', 30_000);
    await exactly(got, 20, 'events');
  });

  it('EventBridge: 200 only after Kafka acknowledged the delivery; a broker that is down gets 503 + Retry-After, which EventBridge retries for 24 h', {
    timeout: 120_000,
  }, async () => {
    const topics = newTopics();
    const delivery = (id: string) =>
      JSON.stringify({
        version: '0',
        id,
        'detail-type': 'AWS API Call via CloudTrail',
        source: 'aws.iam',
        account: '111122223333',
        time: '2026-11-20T09:00:00Z',
        region: 'us-east-1',
        resources: [],
        detail: {
          eventVersion: '1.09',
          userIdentity: { type: 'Root', principalId: '111122223333', arn: 'arn:aws:iam::111122223333:root', accountId: '111122223333' },
          eventTime: '2026-11-20T09:00:00Z',
          eventSource: 'iam.amazonaws.com',
          eventName: 'CreateAccessKey',
          awsRegion: 'us-east-1',
          sourceIPAddress: '203.0.113.9',
          eventID: `evt-${id}`,
          eventType: 'AwsApiCall',
          recipientAccountId: '111122223333',
        },
      });
    const start = (bus: KafkaBus) =>
      startEventBridgeReceiver({
        port: 0,
        auth: { apiKey: { header: 'x-api-key', value: TOKEN } },
        publisher: new EventPublisher({ bus, collector: 'cloudtrail', topics, normalize: { source: 'cloudtrail' }, retry: { retries: 0 } }),
        logger: silent,
      });
    const send = (url: string, id: string) =>
      request({
        url: `${url}/`,
        method: 'POST',
        body: delivery(id),
        headers: { 'x-api-key': TOKEN, 'content-type': 'application/json' },
        timeoutMs: 60_000,
      });
    const down = downBus();
    stops.push(() => down.close());
    const dead = await start(down);
    stops.push(() => dead.close());
    const refused = await send(dead.url, 'eb-1');
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');

    const bus = open();
    const got = await consume(bus, topics.events);
    const live = await start(bus);
    stops.push(() => live.close());
    expect((await send(live.url, 'eb-1')).status).toBe(200); // EventBridge's retry
    await exactly(got, 1, 'events');
  });

  it('Okta Event Hook: 200 only after Kafka acknowledged; a broker that is down gets 503 (Okta retries once, the poller reads the System Log)', {
    timeout: 120_000,
  }, async () => {
    const topics = newTopics();
    const hookBody = JSON.stringify({
      eventType: 'com.okta.event_hook',
      data: {
        events: [
          {
            uuid: 'durable-okta-1',
            published: '2026-11-20T09:00:00.000Z',
            eventType: 'user.session.start',
            actor: { id: '00u1', type: 'User', alternateId: 'alice@example.com', displayName: 'Alice' },
            client: { ipAddress: '203.0.113.7' },
            outcome: { result: 'SUCCESS' },
            target: [],
          },
        ],
      },
    });
    const start = (bus: KafkaBus) =>
      startOktaHook(
        {
          host: '127.0.0.1',
          port: 0,
          path: '/okta/hook',
          secretHeader: 'authorization',
          secret: TOKEN,
          tls: null,
          maxBodyBytes: 1024 * 1024,
          maxDecompressedBytes: 64 * 1024 * 1024,
          queueBytes: 64 * 1024 * 1024,
          limits: config(null).limits,
        },
        {
          publisher: new EventPublisher({ bus, collector: 'okta-hook', topics, normalize: { source: 'okta' }, retry: { retries: 0 } }),
          logger: silent,
          metrics: new CollectorMetrics(),
        },
      );
    const send = (url: string) =>
      request({
        url: `${url}/okta/hook`,
        method: 'POST',
        body: hookBody,
        headers: { authorization: TOKEN, 'content-type': 'application/json' },
        timeoutMs: 60_000,
      });
    const down = downBus();
    stops.push(() => down.close());
    const dead = await start(down);
    stops.push(() => dead.close());
    expect((await send(dead.url)).status).toBe(503);

    const bus = open();
    const got = await consume(bus, topics.events);
    const live = await start(bus);
    stops.push(() => live.close());
    expect((await send(live.url)).status).toBe(200);
    await exactly(got, 1, 'events');
  });
});
