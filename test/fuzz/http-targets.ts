/**
 * HTTP receivers as fuzz targets: each runs on a real local server with the in-process bus, and
 * gets hostile requests (right and wrong credentials, mutated and garbage bodies, gzip, lying
 * headers). A crash is a 5xx other than 503 (a bounded queue saying "later" is correct), a reset
 * connection, or an answer that never comes (the runner counts that as a stall). Dead letters are
 * counted from the bus's dead-letter topic.
 */
import { mkdtempSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { MemoryBus } from '../../core/bus/memory.js';
import { Fields } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import { signedHeaders } from '../../core/signing.js';
import { TicketLedger } from '../../detectors/tickets/ledger.js';
import { TicketReceiver } from '../../detectors/tickets/receiver.js';
import { TicketService } from '../../detectors/tickets/service.js';
import { startEventBridgeReceiver } from '../../ingest/cloudtrail/eventbridge.js';
import { CollectorMetrics } from '../../ingest/collector/metrics.js';
import { EventPublisher } from '../../ingest/collector/publisher.js';
import { parseK8sFields } from '../../ingest/k8s/options.js';
import { startK8sReceiver } from '../../ingest/k8s/receiver.js';
import { startOktaHook } from '../../ingest/okta/hook.js';
import { parseOktaFields } from '../../ingest/okta/options.js';
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
  authHeader: (auth: HttpInput['auth'], body: Buffer) => Record<string, string>;
  close(): Promise<void>;
  drained(): Promise<void>;
  /** Endpoints that refuse bad input with a 4xx instead of dead-lettering it count those refusals. */
  countsRefusals?: boolean;
}

function send(ctx: HttpCtx, input: HttpInput): Promise<number> {
  const body = input.gzip ? gzipSync(input.body) : input.body;
  const url = new URL(input.path === 'right' ? ctx.path : '/nope', ctx.url);
  const headers: Record<string, string> = { ...ctx.authHeader(input.auth, body), 'content-length': String(body.length) };
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
      const refused = ctx.countsRefusals && input.auth === 'right' && status >= 400 && status < 500 ? 1 : 0;
      return deadLetters(ctx.bus) - before + refused;
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
    Fields.of('fuzz.yaml', 'collectors.k8s', {
      // A spool of its own in a temporary folder (the default is under the working directory).
      receiver: {
        port: 0,
        insecureHttp: true,
        token: TOKEN,
        maxBodyBytes: 4 << 20,
        spool: { dir: join(mkdtempSync(join(tmpdir(), 'gw-fuzz-spool-')), 'spool') },
      },
    }),
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

const oktaHook = receiverTarget('http-okta-hook', async () => {
  const bus = new MemoryBus();
  const metrics = new CollectorMetrics();
  const config = parseOktaFields(
    Fields.of('fuzz.yaml', 'collectors.okta', {
      orgUrl: 'https://example.okta.com',
      token: TOKEN,
      hook: { port: 0, secret: TOKEN },
    }),
  );
  if (!config.hook) throw new Error('fuzz: no okta hook config');
  const server = await startOktaHook(config.hook, { publisher: publisher(bus, 'okta-hook', metrics), logger: silent, metrics });
  return {
    bus,
    url: server.url,
    path: config.hook.path,
    authHeader: (a): Record<string, string> => (a === 'right' ? { authorization: TOKEN } : a === 'wrong' ? { authorization: 'nope' } : {}),
    close: () => server.close(),
    drained: () => server.drained(),
  };
});

// The tickets endpoint: bodies are ticket JSON, so most generated ones are refused with 400 (a
// rejection, counted as dead-lettered here); what matters is that none crashes or hangs it.
const ticketsEndpoint: FuzzTarget<HttpInput, HttpCtx> = {
  ...receiverTarget('http-tickets', async () => {
    const bus = new MemoryBus();
    const receiver = new TicketReceiver(
      new TicketService(new TicketLedger(), { store: null, log: silent }),
      { secret: TOKEN, port: 0 },
      silent,
    );
    const url = await receiver.listen();
    return {
      bus,
      url,
      path: '/tickets',
      authHeader: (a, body): Record<string, string> =>
        a === 'right' ? signedHeaders(TOKEN, body) : a === 'wrong' ? signedHeaders('not-the-secret-0000', body) : {},
      close: () => receiver.close(),
      drained: async () => {},
      countsRefusals: true,
    };
  }),
  arbitrary: fc.oneof(
    httpInput,
    fc.record({
      method: fc.constant('POST'),
      auth: fc.constant<'right'>('right'),
      gzip: fc.constant(false),
      contentType: fc.constant('application/json'),
      path: fc.constant<'right'>('right'),
      body: fc
        .record({
          id: fc.oneof(fc.string(), fc.constant('CHG-1')),
          identities: fc.oneof(fc.array(fc.string(), { maxLength: 3 }), fc.string()),
          requester: fc.string(),
          approvers: fc.oneof(fc.array(fc.string(), { maxLength: 3 }), fc.constant(null)),
          status: fc.constantFrom('requested', 'approved', 'closed', 'revoked', 'bogus'),
          notBefore: fc.constantFrom('2026-11-20T09:00:00Z', '2026-11-20T09:00:00', 'yesterday', ''),
          notAfter: fc.constantFrom('2026-11-20T10:00:00Z', '2026-11-20T10:00:00+02:00', '2026-13-45T99:00:00Z'),
          updatedAt: fc.constantFrom('2026-11-20T08:00:00Z', 'x'),
          approver: fc.string(),
          ['__proto__']: fc.jsonValue({ maxDepth: 2 }),
        })
        .map((t) => Buffer.from(toJsonText(t))),
    }),
  ),
};

export const httpTargets: FuzzTarget<HttpInput, HttpCtx>[] = [k8sWebhook, eventBridge, oktaHook, ticketsEndpoint];
