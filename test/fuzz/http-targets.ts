/**
 * HTTP receivers as fuzz targets: each runs on a real local server with the in-process bus, and
 * gets hostile requests (right and wrong credentials, mutated and garbage bodies, gzip, lying
 * headers). A crash is a 5xx other than 503 (a bounded queue saying "later" is correct), a reset
 * connection, or an answer that never comes (the runner counts that as a stall). Dead letters are
 * counted from the bus's dead-letter topic.
 */
import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { MemoryBus } from '../../core/bus/memory.js';
import { Fields } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import { startEventBridgeReceiver } from '../../ingest/cloudtrail/eventbridge.js';
import { CollectorMetrics } from '../../ingest/collector/metrics.js';
import { EventPublisher } from '../../ingest/collector/publisher.js';
import { parseK8sFields } from '../../ingest/k8s/options.js';
import { startK8sReceiver } from '../../ingest/k8s/receiver.js';
import { hostileBytes, mutatedDocument, toJsonText } from './arbitraries.js';
import type { FuzzTarget } from './targets.js';

const TOKEN = 'fuzz-token-0123456789abcdef';
const silent = createLogger({ level: 'silent' });

export interface HttpInput {
  method: string;
  auth: 'right' | 'wrong' | 'none';
  gzip: boolean;
  body: Buffer;
  contentType: string;
  path: 'right' | 'other';
}

const httpInput: fc.Arbitrary<HttpInput> = fc.record({
  method: fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT'),
  auth: fc.constantFrom<'right' | 'wrong' | 'none'>('right', 'right', 'right', 'wrong', 'none'),
  gzip: fc.boolean(),
  body: fc.oneof(
    hostileBytes,
    mutatedDocument.map((d) => Buffer.from(toJsonText(d))),
  ),
  contentType: fc.constantFrom('application/json', 'application/json', 'text/plain', 'application/x-ndjson', ''),
  path: fc.constantFrom<'right' | 'other'>('right', 'right', 'right', 'other'),
});

export interface HttpCtx {
  bus: MemoryBus;
  url: string;
  path: string;
  authHeader: (auth: HttpInput['auth']) => Record<string, string>;
  close(): Promise<void>;
  drained(): Promise<void>;
}

function send(ctx: HttpCtx, input: HttpInput): Promise<number> {
  const body = input.gzip ? gzipSync(input.body) : input.body;
  const url = new URL(input.path === 'right' ? ctx.path : '/nope', ctx.url);
  const headers: Record<string, string> = { ...ctx.authHeader(input.auth), 'content-length': String(body.length) };
  if (input.contentType) headers['content-type'] = input.contentType;
  if (input.gzip) headers['content-encoding'] = 'gzip';
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: input.method, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(input.method === 'GET' ? undefined : body);
  });
}

function deadLetters(bus: MemoryBus): number {
  return bus.messages('glasswatch.dead-letters').length;
}

function receiverTarget(name: string, start: () => Promise<HttpCtx>): FuzzTarget<HttpInput, HttpCtx> {
  return {
    name,
    arbitrary: httpInput,
    setup: start,
    async run(input, ctx) {
      const before = deadLetters(ctx.bus);
      const status = await send(ctx, input);
      if (status >= 500 && status !== 503) throw new Error(`HTTP ${status}`);
      if (input.auth !== 'right' && input.path === 'right' && input.method === 'POST' && status < 400)
        throw new Error(`unauthenticated request answered ${status}`);
      await ctx.drained();
      return deadLetters(ctx.bus) - before;
    },
    teardown: (ctx) => ctx.close(),
    describe: (i) =>
      `${i.method} auth=${i.auth} gzip=${i.gzip} path=${i.path} ${i.body.length} bytes: ${i.body.subarray(0, 120).toString('latin1')}`,
  };
}

function publisher(bus: MemoryBus, collector: string, metrics: CollectorMetrics) {
  return new EventPublisher({
    bus,
    collector,
    topics: { events: 'glasswatch.events', deadLetters: 'glasswatch.dead-letters' },
    metrics,
    logger: silent,
  });
}

const k8sWebhook = receiverTarget('http-k8s-webhook', async () => {
  const bus = new MemoryBus();
  const metrics = new CollectorMetrics();
  const config = parseK8sFields(
    Fields.of('fuzz.yaml', 'collectors.k8s', { receiver: { port: 0, insecureHttp: true, token: TOKEN, maxBodyBytes: 4 << 20 } }),
  );
  if (!config.receiver) throw new Error('fuzz: no k8s receiver config');
  const server = await startK8sReceiver(config.receiver, { publisher: publisher(bus, 'k8s', metrics), logger: silent, metrics });
  return {
    bus,
    url: server.url,
    path: config.receiver.path,
    authHeader: (a): Record<string, string> =>
      a === 'right' ? { authorization: `Bearer ${TOKEN}` } : a === 'wrong' ? { authorization: 'Bearer nope' } : {},
    close: () => server.close(),
    drained: () => server.drained(),
  };
});

const eventBridge = receiverTarget('http-eventbridge', async () => {
  const bus = new MemoryBus();
  const metrics = new CollectorMetrics();
  const server = await startEventBridgeReceiver({
    publisher: publisher(bus, 'cloudtrail', metrics),
    auth: { apiKey: { header: 'x-api-key', value: TOKEN } },
    port: 0,
    metrics,
    logger: silent,
  });
  return {
    bus,
    url: server.url,
    path: '/',
    authHeader: (a): Record<string, string> => (a === 'right' ? { 'x-api-key': TOKEN } : a === 'wrong' ? { 'x-api-key': 'nope' } : {}),
    close: () => server.close(),
    drained: () => server.drained(),
  };
});

export const httpTargets: FuzzTarget<HttpInput, HttpCtx>[] = [k8sWebhook, eventBridge];
