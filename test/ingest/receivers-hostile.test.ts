// The HTTP receivers (Kubernetes audit webhook, Okta Event Hooks, EventBridge endpoint) under
// hostile clients (issue 9, findings 2, 3 and 6), on real local HTTP servers and the real broker:
// authentication from the headers before any body byte, the shared server limits against
// slow-socket floods from another address, queues bounded in bytes while Kafka is unreachable,
// /metrics and /healthz only on their own listener, one bad item or delivery never taking the
// batch or the queue with it, and gzip bodies inflated within a budget.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { BusMessage } from '../../core/bus/types.js';
import { DEAD_LETTER_HEADERS } from '../../core/bus/types.js';
import { Fields } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { request } from '../../core/http.js';
import { createLogger } from '../../core/log.js';
import { type EventBridgeReceiver, startEventBridgeReceiver } from '../../ingest/cloudtrail/eventbridge.js';
import { type RunningServer, startMetricsServer, startServer } from '../../ingest/collector/http.js';
import { CollectorMetrics } from '../../ingest/collector/metrics.js';
import { parseCollectorsCommon } from '../../ingest/collector/options.js';
import { COLLECTOR_DLQ_HEADERS, EventPublisher } from '../../ingest/collector/publisher.js';
import { BoundedQueue } from '../../ingest/collector/queue.js';
import { parseK8sFields, type RunningK8sCollector, runK8sCollector } from '../../ingest/k8s/collector.js';
import { type K8sReceiverServer, startK8sReceiver } from '../../ingest/k8s/receiver.js';
import { type OktaHookServer, startOktaHook } from '../../ingest/okta/hook.js';
import { assertKafkaReachable, kafkaTestOptions, topicEnds, waitFor } from '../bus/helpers.js';
import { rawRequest, slowSockets } from '../support/hostile-http.js';
import { syntheticAuditEvent } from '../support/k8s-events.js';
import { kafkaHarness } from '../support/kafka-harness.js';

const TOKEN = 'k8s-audit-token-hostile-0123456789';
const OKTA_SECRET = 'okta-hook-secret-hostile-0123456789';
const EB_KEY = 'eventbridge-key-hostile-0123456789';
const COMMON = { checkpointDir: '.unused', alertsTopic: 'alerts', silenceSeconds: 3600, metrics: null };
// Short timeouts so the test is bounded in time; the defaults are the same mechanism, longer.
const LIMITS = { headersTimeoutMs: 1500, bodyIdleTimeoutMs: 1000, maxConnectionsPerIp: 32 };
const silent = createLogger({ level: 'silent' });

const eventList = (items: unknown[]) => JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items });
const seqOf = (m: BusMessage) =>
  Number(((JSON.parse(m.value.toString()) as AuditEvent).raw.annotations as Record<string, string> | undefined)?.['glasswatch.test/seq']);
const originOf = (m: BusMessage) => JSON.parse(m.headers[COLLECTOR_DLQ_HEADERS.origin] ?? '{}') as { file?: string; index?: number };
const cloudTrailEvent = (id: string, extra: Record<string, unknown> = {}) => ({
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
    userAgent: 'aws-cli/2',
    eventID: `evt-${id}`,
    eventType: 'AwsApiCall',
    recipientAccountId: '111122223333',
    ...extra,
  },
});

/** A gzip stream that inflates to `mib` MiB of zeros, made without holding the inflated bytes. */
async function gzipBomb(mib: number): Promise<Buffer> {
  const gz = createGzip({ level: 9 });
  const out: Buffer[] = [];
  gz.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((r) => gz.on('end', r));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < mib; i++) if (!gz.write(zeros)) await new Promise((r) => gz.once('drain', r));
  gz.end();
  await done;
  return Buffer.concat(out);
}

describe('HTTP receivers under hostile clients', () => {
  const { open, newTopics, consume, exactly, cleanup } = kafkaHarness('hostile');
  const metrics = new CollectorMetrics();
  let topics: { events: string; deadLetters: string };
  let events: BusMessage[];
  let dead: BusMessage[];
  let k8s: RunningK8sCollector;
  let k8sReceiver: K8sReceiverServer;
  let okta: OktaHookServer;
  let eventbridge: EventBridgeReceiver;
  let metricsServer: RunningServer;
  const stops: (() => Promise<unknown>)[] = [];

  const k8sPost = (body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${k8sReceiver.url}/audit`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers },
    });

  beforeAll(async () => {
    await assertKafkaReachable();
    const bus = open();
    topics = newTopics();
    events = await consume(bus, topics.events);
    dead = await consume(bus, topics.deadLetters);
    const config = parseK8sFields(
      Fields.of('test.yaml', 'collectors.k8s', {
        cluster: 'test-cluster',
        receiver: {
          port: 0,
          insecureHttp: true,
          token: TOKEN,
          limits: LIMITS,
          spool: { dir: join(mkdtempSync(join(tmpdir(), 'gw-spool-')), 'spool') },
        },
      }),
      COMMON,
    );
    k8s = await runK8sCollector(config, { bus, topics, logger: silent, metrics, watchdog: null });
    stops.push(() => k8s.stop());
    k8sReceiver = k8s.receiver as K8sReceiverServer;
    okta = await startOktaHook(
      {
        host: '127.0.0.1',
        port: 0,
        path: '/okta/hook',
        secretHeader: 'authorization',
        secret: OKTA_SECRET,
        tls: null,
        maxBodyBytes: 1024 * 1024,
        maxDecompressedBytes: 64 * 1024 * 1024,
        queueBytes: 64 * 1024 * 1024,
        limits: { ...LIMITS, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, maxConnections: 1024 },
      },
      { publisher: new EventPublisher({ bus, collector: 'okta-hook', topics, metrics }), logger: silent, metrics },
    );
    stops.push(() => okta.close());
    eventbridge = await startEventBridgeReceiver({
      publisher: new EventPublisher({ bus, collector: 'cloudtrail', topics, metrics, normalize: { source: 'cloudtrail' } }),
      auth: { apiKey: { header: 'x-api-key', value: EB_KEY } },
      port: 0,
      maxBodyBytes: 4 * 1024 * 1024,
      metrics,
      limits: LIMITS,
    });
    stops.push(() => eventbridge.close());
    metricsServer = await startMetricsServer(metrics, { port: 0 });
    stops.push(() => metricsServer.close());
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await cleanup();
  });

  it('answers 401 from the headers alone and closes the connection: an unauthenticated body is never read', async () => {
    const head = (port: number, path: string, auth: string) =>
      rawRequest(port, `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000${auth}`, '', 3000);
    const cases: [string, number, string, string][] = [
      ['k8s, no token', k8sReceiver.port, '/audit', ''],
      ['k8s, wrong token', k8sReceiver.port, '/audit', '\r\nAuthorization: Bearer nope'],
      ['okta, wrong secret', okta.port, '/okta/hook', '\r\nAuthorization: nope'],
      ['eventbridge, no key', eventbridge.port, '/', ''],
    ];
    for (const [what, port, path, auth] of cases) {
      const r = await head(port, path, auth);
      expect(r.status, what).toBe(401);
      expect(r.answeredMs ?? Infinity, what).toBeLessThan(1000);
      expect(r.closedMs ?? Infinity, what).toBeLessThan(2000);
    }
  });

  it('1,100 slow sockets from 127.0.0.2 do not stop the apiserver (127.0.0.1), /healthz, or the other receivers', {
    timeout: 40_000,
  }, async () => {
    const attack = await slowSockets(k8sReceiver.port, 1100, '127.0.0.2', '/audit');
    const onOkta = await slowSockets(okta.port, 200, '127.0.0.2', '/okta/hook');
    try {
      expect(await attack.settle(32)).toBeLessThanOrEqual(32);
      expect(await onOkta.settle(32)).toBeLessThanOrEqual(32);
      const t0 = Date.now();
      const res = await k8sPost(eventList([syntheticAuditEvent(900)]));
      expect(res.status).toBe(200);
      expect((await fetch(`${metricsServer.url}/healthz`)).status).toBe(200);
      const challenge = await fetch(`${okta.url}/okta/hook`, { headers: { 'x-okta-verification-challenge': 'c-1' } });
      expect(await challenge.json()).toEqual({ verification: 'c-1' });
      const eb = await fetch(`${eventbridge.url}/`, {
        method: 'POST',
        body: JSON.stringify(cloudTrailEvent('flood-1')),
        headers: { 'content-type': 'application/json', 'x-api-key': EB_KEY },
      });
      expect(eb.status).toBe(200);
      expect(Date.now() - t0).toBeLessThan(3000);
      // What was kept is cut by the headers timeout (1.5 s here; 10 s by default).
      expect(await attack.settle(0, 6000)).toBe(0);
      expect(await onOkta.settle(0, 6000)).toBe(0);
      expect(k8sReceiver.refusedConnections).toBeGreaterThan(500);
    } finally {
      attack.destroy();
      onOkta.destroy();
    }
  });

  it('serves /metrics and /healthz only on their own listener (127.0.0.1 by default), never on a receiver port', async () => {
    for (const url of [k8sReceiver.url, okta.url, eventbridge.url]) {
      for (const path of ['/metrics', '/healthz']) expect((await fetch(`${url}${path}`)).status, `${url}${path}`).toBe(404);
    }
    expect(metricsServer.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
    const text = await (await fetch(`${metricsServer.url}/metrics`)).text();
    expect(text).toContain('glasswatch_collector_events_total{collector="k8s"}');
    const common = parseCollectorsCommon(Fields.of('test.yaml', 'collectors', { metrics: { port: 9464 } }));
    expect(common.metrics).toEqual({ host: '127.0.0.1', port: 9464 });
  });

  it('Kubernetes webhook: one item nested 5,000 deep is a dead letter naming the request; the other items are published', {
    timeout: 90_000,
  }, async () => {
    const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
    const body = eventList([
      syntheticAuditEvent(1001),
      { ...syntheticAuditEvent(1002), requestObject: 0 },
      syntheticAuditEvent(1003),
    ]).replace('"requestObject":0', `"requestObject":${deep}`);
    const res = await k8sPost(body);
    expect(res.status).toBe(200);
    const mine = () => events.filter((m) => [1001, 1002, 1003].includes(seqOf(m)));
    // A CI run once saw 1003 and never 1001 (not reproduced since): the failure says where every
    // message is, on the topic and as read, so a lost event and a reader that skipped a partition differ.
    await waitFor(() => mine().length >= 2, 'events 1001 and 1003', 45_000).catch(async (err: Error) => {
      const read = events.map((m) => `${seqOf(m)}@${m.partition}/${m.offset}`).join(' ');
      throw new Error(`${err.message}; read: ${read}; topic ends: ${await topicEnds(topics.events)}; dead letters: ${dead.length}`);
    });
    await exactly(mine(), 2, 'valid items');
    expect(mine().map(seqOf).sort()).toEqual([1001, 1003]);
    await waitFor(
      () => dead.some((m) => originOf(m).index === 1 && (originOf(m).file ?? '').startsWith('k8s-webhook:')),
      'its dead letter',
    );
    const letter = dead.find((m) => originOf(m).index === 1 && (originOf(m).file ?? '').startsWith('k8s-webhook:')) as BusMessage;
    expect(letter.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/deep|depth|nested/i);
  });

  it('EventBridge: a delivery Kafka would refuse is dead-lettered and the deliveries behind it are published', {
    timeout: 60_000,
  }, async () => {
    // 1.5 MB of incompressible text: beyond the broker's message.max.bytes (1 MiB).
    const filler = Buffer.from(Array.from({ length: 1_100_000 }, (_, i) => (i * 7919) % 251)).toString('base64');
    const post = (doc: unknown) =>
      fetch(`${eventbridge.url}/`, {
        method: 'POST',
        body: JSON.stringify(doc),
        headers: { 'content-type': 'application/json', 'x-api-key': EB_KEY },
      });
    expect((await post(cloudTrailEvent('poison-1', { requestParameters: { policyDocument: filler } }))).status).toBe(200);
    expect((await post(cloudTrailEvent('after-1'))).status).toBe(200);
    const id = (m: BusMessage) => (JSON.parse(m.value.toString()) as AuditEvent).id;
    await waitFor(() => events.some((m) => id(m) === 'evt-after-1'), 'the delivery behind the poison one', 45_000);
    await waitFor(() => dead.some((m) => originOf(m).file === 'eventbridge:poison-1'), 'the poison delivery as a dead letter', 15_000);
    expect(events.some((m) => id(m) === 'evt-poison-1')).toBe(false);
  });

  it('gzip bodies inflate within the budget: a 100 MiB bomb is 413 and a dead letter naming the request; a normal gzip body is published', {
    timeout: 60_000,
  }, async () => {
    const bomb = await gzipBomb(100);
    expect(bomb.length).toBeLessThan(200 * 1024);
    const refused = await k8sPost(bomb, { 'content-encoding': 'gzip' });
    expect(refused.status).toBe(413);
    await waitFor(
      () =>
        dead.some(
          (m) =>
            (originOf(m).file ?? '').startsWith('k8s-webhook:') &&
            /inflat|decompress|budget|larger|beyond/i.test(m.headers[DEAD_LETTER_HEADERS.reason] ?? ''),
        ),
      'the bomb as a dead letter naming the request',
      15_000,
    );
    // gzip inside gzip would be inflated a second time downstream: refused.
    const nested = await k8sPost(gzipSync(gzipSync(eventList([syntheticAuditEvent(2002)]))), { 'content-encoding': 'gzip' });
    expect(nested.status).toBe(400);
    const ok = await k8sPost(gzipSync(eventList([syntheticAuditEvent(2001)])), { 'content-encoding': 'gzip' });
    expect(ok.status).toBe(200);
    await waitFor(() => events.some((m) => seqOf(m) === 2001), 'the gzip body event', 30_000);
  });
});

describe('receive queue bounded in bytes while Kafka is unreachable', () => {
  it('150 posts of 8 MiB: beyond the spool budget the answer is 503 with Retry-After, and RSS stays bounded', {
    timeout: 120_000,
  }, async () => {
    // A real Kafka client pointed at a port nothing listens on: every publish fails and is retried.
    const bus = new KafkaBus(kafkaTestOptions({ brokers: ['127.0.0.1:1'], retries: 1 }));
    const metrics = new CollectorMetrics();
    const config = parseK8sFields(
      Fields.of('test.yaml', 'collectors.k8s', {
        receiver: {
          port: 0,
          insecureHttp: true,
          token: TOKEN,
          maxBodyBytes: 16 * 1024 * 1024,
          spool: { dir: join(mkdtempSync(join(tmpdir(), 'gw-spool-')), 'spool'), maxBytes: 64 * 1024 * 1024 },
        },
      }),
      COMMON,
    ).receiver;
    if (!config) throw new Error('no receiver config');
    const publisher = new EventPublisher({
      bus,
      collector: 'k8s',
      topics: { events: 'unreachable-events', deadLetters: 'unreachable-dlq' },
      metrics,
      retry: { retries: 1_000_000, initialDelayMs: 100, maxDelayMs: 200 },
    });
    const receiver = await startK8sReceiver(config, { publisher, logger: silent, metrics });
    // One event whose request body is 8 MiB of text: few events, many bytes.
    const big = eventList([{ ...syntheticAuditEvent(1), requestObject: { data: 'x'.repeat(8 * 1024 * 1024) } }]);
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const statuses: number[] = [];
    let retryAfter = 0;
    try {
      for (let i = 0; i < 150; i++) {
        const res = await fetch(`${receiver.url}/audit`, {
          method: 'POST',
          body: big,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        }).catch(() => null);
        statuses.push(res?.status ?? 0);
        if (res?.headers.get('retry-after')) retryAfter++;
        await res?.arrayBuffer().catch(() => null);
        peak = Math.max(peak, process.memoryUsage().rss);
      }
      const accepted = statuses.filter((s) => s === 200).length;
      const busy = statuses.filter((s) => s === 503).length;
      // 64 MiB spool budget / 8 MiB bodies: 7 spooled (record headers take the rest).
      expect(accepted).toBeLessThanOrEqual(8);
      expect(busy).toBeGreaterThanOrEqual(140);
      expect(retryAfter).toBe(busy);
      expect(receiver.queuedBytes).toBeLessThanOrEqual(64 * 1024 * 1024);
      const growthMiB = (peak - rss0) / 2 ** 20;
      // Reported by the test run: RSS growth while 150 × 8 MiB were offered.
      console.info(
        `byte-bounded spool: accepted ${accepted}, 503 ${busy}, RSS ${(rss0 / 2 ** 20).toFixed(0)} → peak ${(peak / 2 ** 20).toFixed(0)} MiB (+${growthMiB.toFixed(0)} MiB)`,
      );
      expect(growthMiB).toBeLessThan(400);
    } finally {
      // Closing the bus fails the retries for good, so the queue drains and close() returns.
      await bus.close();
      await receiver.close();
    }
  });
});

describe('client certificates over TLS session resumption', () => {
  it('a client without a certificate that resumes a TLS session is still refused (it was reported authorized)', {
    timeout: 60_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-resume-'));
    try {
      const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=ca');
      writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=server');
      ssl(
        'x509',
        '-req',
        '-in',
        'server.csr',
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        'server.crt',
        '-days',
        '1',
        '-extfile',
        'server.ext',
      );
      const config = parseK8sFields(
        Fields.of('test.yaml', 'collectors.k8s', {
          receiver: {
            port: 0,
            token: TOKEN,
            tls: { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), clientCaFile: join(dir, 'ca.crt') },
            spool: { dir: join(dir, 'spool') },
          },
        }),
        COMMON,
      ).receiver;
      if (!config) throw new Error('no receiver config');
      const bus = new KafkaBus(kafkaTestOptions());
      const metrics = new CollectorMetrics();
      const publisher = new EventPublisher({
        bus,
        collector: 'k8s',
        topics: { events: 'resume-events', deadLetters: 'resume-dlq' },
        metrics,
      });
      const receiver = await startK8sReceiver(config, { publisher, logger: silent, metrics });
      try {
        // Each request on a new connection (Connection: close): the second one resumes the first's session.
        const post = () =>
          request({
            method: 'POST',
            url: `${receiver.url}/audit`,
            body: eventList([syntheticAuditEvent(3001)]),
            ca: readFileSync(join(dir, 'ca.crt')),
            headers: { 'content-type': 'application/json', connection: 'close' },
          });
        for (let i = 0; i < 3; i++) expect((await post()).status, `request ${i + 1}`).toBe(401);
        expect(receiver.queuedEvents).toBe(0);
      } finally {
        await receiver.close();
        await bus.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('BoundedQueue byte budget', () => {
  it('refuses an item that would pass maxBytes (asked before the body is read), whatever its record count', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const q = new BoundedQueue<Buffer>({
      maxItems: 1000,
      maxWeight: 1000,
      weight: () => 1,
      maxBytes: 10,
      bytes: (b) => b.length,
      handle: () => gate,
      onError: () => {},
    });
    expect(q.offer(Buffer.alloc(6))).toBe(true);
    expect(q.wouldAccept(5)).toBe(false);
    expect(q.offer(Buffer.alloc(5))).toBe(false);
    expect(q.offer(Buffer.alloc(4))).toBe(true);
    expect(q.bytes).toBe(10);
    release();
    await q.drained();
    expect(q.bytes).toBe(0);
    // An empty queue takes one item over the budget (each is bounded by maxBodyBytes), so it is not refused forever.
    expect(q.wouldAccept(50)).toBe(true);
  });
});

describe('server connection caps', () => {
  it('maxConnections bounds the sockets of a flood spread over many addresses; the headers timeout frees them', async () => {
    const server = await startServer({
      port: 0,
      handler: (_req, res) => {
        res.end('ok');
      },
      limits: { maxConnections: 20, maxConnectionsPerIp: 64, headersTimeoutMs: 1000 },
    });
    const floods = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'].map((a) => slowSockets(server.port, 25, a)));
    try {
      const open = async () => (await Promise.all(floods.map((f) => f.settle(0, 0)))).reduce((a, b) => a + b, 0);
      const deadline = Date.now() + 3000;
      while ((await open()) > 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await open()).toBeLessThanOrEqual(20);
      expect(server.refusedConnections).toBeGreaterThanOrEqual(80);
      for (const f of floods) expect(await f.settle(0, 4000)).toBe(0);
      expect(await (await fetch(server.url)).text()).toBe('ok');
    } finally {
      for (const f of floods) f.destroy();
      await server.close();
    }
  });
});
