/**
 * The EventBridge endpoint: an HTTPS target for an EventBridge API destination, the low-latency
 * path (seconds instead of the S3 delivery's minutes). EventBridge rules are regional, so this is
 * a hint beside the S3/SQS path, not a replacement (source-api-facts §4.4).
 *
 * API destinations authenticate with a static header (connection auth `API_KEY`) or Basic auth;
 * both are compared in constant time, never logged, and checked before the body is read. Accepted
 * bodies are normalized at once (CloudTrail envelopes unwrapped, other detail-types counted as
 * skipped) and queued; the 200 goes out only once Kafka acknowledged every record of the delivery
 * (no local spool: EventBridge retries 429/5xx with backoff for up to 24 h, so its own retry
 * queue is the buffer, and a crash loses nothing it was told is ours). A full queue (bodies,
 * records or bytes) or a publish that failed for a transient cause (broker down, leader moving)
 * answers 503 with Retry-After, and EventBridge sends the delivery again. A delivery
 * that can never be published (a record Kafka refuses, one that cannot be normalized) is a dead
 * letter naming the delivery, and the queue goes on: one poison delivery must not stall the ones
 * behind it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/log.js';
import { secretEquals } from '../../core/signing.js';
import {
  bodyErrorStatus,
  inflateBody,
  type RunningServer,
  readBody,
  refuse,
  type ServerLimits,
  sendJson,
  startServer,
  type TlsServerOptions,
} from '../collector/http.js';
import type { CollectorMetrics } from '../collector/metrics.js';
import { classifyFailure } from '../collector/poison.js';
import type { EventPublisher } from '../collector/publisher.js';
import { BoundedQueue, requestDeadLetter } from '../collector/queue.js';
import { sleep } from '../collector/run.js';
import { DEFAULT_MAX_BODY_DECOMPRESSED_BYTES } from '../decode.js';
import type { NormalizeResult } from '../types.js';

export interface EventBridgeAuth {
  /** Static header an API destination connection of type `API_KEY` sends. Header names are case-insensitive. */
  apiKey?: { header: string; value: string } | null;
  /** Connection auth type `BASIC`. */
  basic?: { username: string; password: string } | null;
}

export interface EventBridgeReceiverOptions {
  publisher: EventPublisher;
  auth: EventBridgeAuth;
  /** @default "127.0.0.1" */
  host?: string;
  /** 0 = ephemeral (tests). */
  port: number;
  /** Required in production: API destinations only call HTTPS endpoints. Plain HTTP is for tests and TLS-terminating proxies. */
  tls?: TlsServerOptions;
  /** Path the API destination posts to. @default "/" */
  path?: string;
  /** EventBridge events are at most 256 KB. @default 1 MiB */
  maxBodyBytes?: number;
  /** Bodies waiting to be published at most. @default 1000 */
  maxQueuedBodies?: number;
  /** Records waiting to be published at most. @default 10000 */
  maxQueuedEvents?: number;
  /** Body bytes waiting to be published at most. @default 67108864 */
  maxQueuedBytes?: number;
  /** A gzip body inflates to at most this. @default 67108864 */
  maxDecompressedBytes?: number;
  /** Timeouts and connection caps; unset ones keep `DEFAULT_SERVER_LIMITS`. */
  limits?: Partial<ServerLimits>;
  /** Counters only: `/metrics` is served on the process's own metrics listener, never here. */
  metrics?: CollectorMetrics;
  logger?: Logger;
}

/** One accepted delivery: its normalized records, the body size they came from, and its request id. */
interface Delivery {
  results: NormalizeResult[];
  /** Set once the delivery was found unpublishable: its one dead letter. */
  poison?: NormalizeResult[];
  bytes: number;
  origin: string;
  /** Settles the request: null once published (or kept as a dead letter), the error otherwise. */
  settle?: (err: unknown) => void;
}

export interface EventBridgeReceiver extends RunningServer {
  /** Resolves when every body accepted so far is published (tests). */
  drained(): Promise<void>;
  /** Requests refused for bad or missing credentials (tests, status). */
  readonly unauthorized: number;
  /** Deliveries dead-lettered because they could never be published (tests, status). */
  readonly poisoned: number;
}

/** Throws unless at least one method is configured: an open endpoint would accept forged events. */
export function checkAuth(auth: EventBridgeAuth): void {
  if (!auth.apiKey && !auth.basic) {
    throw new GlasswatchError('BG_INGEST_EVENTBRIDGE_NO_AUTH', 'the EventBridge endpoint needs an API key or Basic auth credentials', {
      stage: 'config',
    });
  }
}

function authorized(auth: EventBridgeAuth, req: IncomingMessage): boolean {
  let ok = false;
  if (auth.apiKey) {
    const given = req.headers[auth.apiKey.header.toLowerCase()];
    ok = secretEquals(auth.apiKey.value, typeof given === 'string' ? given : undefined);
  }
  if (!ok && auth.basic) {
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
    const decoded = m?.[1] ? Buffer.from(m[1], 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    // Both halves are always compared, so the time does not tell which one was wrong.
    const user = secretEquals(auth.basic.username, colon < 0 ? undefined : decoded.slice(0, colon));
    const pass = secretEquals(auth.basic.password, colon < 0 ? undefined : decoded.slice(colon + 1));
    ok = user && pass;
  }
  return ok;
}

export async function startEventBridgeReceiver(options: EventBridgeReceiverOptions): Promise<EventBridgeReceiver> {
  checkAuth(options.auth);
  const { publisher, metrics } = options;
  const log = options.logger ?? silentLogger;
  const path = options.path ?? '/';
  const maxBody = options.maxBodyBytes ?? 1024 * 1024;
  let closing = false;
  let unauthorized = 0;
  let lastAuthWarn = 0;

  let poisoned = 0;
  let sequence = 0;
  const queue = new BoundedQueue<Delivery>({
    maxItems: options.maxQueuedBodies ?? 1000,
    maxWeight: options.maxQueuedEvents ?? 10_000,
    weight: (d) => d.results.length,
    maxBytes: options.maxQueuedBytes ?? 64 * 1024 * 1024,
    bytes: (d) => d.bytes,
    handle: async (d) => {
      // The sender waits for this: on a transient failure it gets 503 and sends the delivery again
      // (for up to 24 h). Records Kafka refuses are dead-lettered by the publisher; a delivery that
      // still fails for a cause of its own (not the bus) becomes one dead letter, answered 200.
      let results = d.results;
      for (;;) {
        try {
          await publisher.publishUnit(results);
          d.settle?.(null);
          return;
        } catch (err) {
          if (classifyFailure(err) === 'permanent' && results !== d.poison) {
            poisoned++;
            log.warn('cloudtrail eventbridge: unpublishable delivery dead-lettered; the queue goes on', {
              delivery: d.origin,
              error: errorMessage(err),
            });
            results = d.poison = [requestDeadLetter({ file: d.origin, line: null, index: null }, err, 'cloudtrail')];
            continue;
          }
          throw err;
        }
      }
    },
    onError: (err, d) => {
      metrics?.recordError(publisher.collector, 'sending');
      log.warn('cloudtrail eventbridge: delivery not published; answering 503, EventBridge retries it', {
        error: errorMessage(err),
        records: d.results.length,
        delivery: d.origin,
      });
      d.settle?.(err);
    },
  });
  let server: RunningServer;

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url !== path) return refuse(res, 404, 'not found\n');
    if (req.method !== 'POST') return refuse(res, 405, 'method not allowed\n', { allow: 'POST' });
    if (!authorized(options.auth, req)) {
      unauthorized++;
      metrics?.recordError(publisher.collector, 'receiving');
      // One line per minute at most: a scanner must not be able to flood the log.
      if (Date.now() - lastAuthWarn > 60_000) {
        lastAuthWarn = Date.now();
        log.warn('cloudtrail eventbridge: unauthorized requests refused', { total: unauthorized, remote: req.socket.remoteAddress });
      }
      return refuse(res, 401, 'unauthorized\n', options.auth.basic ? { 'www-authenticate': 'Basic realm="glasswatch"' } : {});
    }
    if (closing) return refuse(res, 503, 'shutting down\n', { 'retry-after': '5' });
    const declared = Number(req.headers['content-length']);
    if (!queue.wouldAccept(Number.isFinite(declared) ? declared : 0)) return refuse(res, 503, 'busy\n', { 'retry-after': '5' });
    let origin = `eventbridge:${new Date().toISOString()}#${++sequence}`;
    let body: Buffer;
    try {
      const raw = await readBody(req, maxBody, { idleTimeoutMs: server.limits.bodyIdleTimeoutMs });
      body = await inflateBody(req, raw, options.maxDecompressedBytes ?? DEFAULT_MAX_BODY_DECOMPRESSED_BYTES, origin);
    } catch (err) {
      const status = bodyErrorStatus(err);
      metrics?.recordError(publisher.collector, 'receiving');
      if (status === 413 && String(req.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') {
        // A gzip bomb is kept as a dead letter naming the request (EventBridge would not resend a 4xx).
        queue.offer({ results: [requestDeadLetter({ file: origin, line: null, index: null }, err, 'cloudtrail')], bytes: 0, origin });
      }
      return refuse(res, status, `${errorMessage(err)}\n`);
    }
    let results: NormalizeResult[] = [];
    let status = 200;
    let doc: unknown;
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch (err) {
      // EventBridge does not retry a 400; the body is kept as a dead letter so it is not lost unseen.
      status = 400;
      results = [
        {
          kind: 'dead',
          source: 'cloudtrail',
          reason: `${origin}: EventBridge body is not JSON: ${errorMessage(err)}`,
          origin: { file: origin, line: null, index: null },
          text: body.toString('utf8'),
        },
      ];
    }
    if (status === 200) {
      // The event id names the delivery (EventBridge keeps it across its retries).
      const id = (doc as { id?: unknown } | null)?.id;
      if (typeof id === 'string' && id !== '' && id.length <= 200) origin = `eventbridge:${id}`;
      const where = { file: origin, line: null, index: null };
      try {
        results = publisher.normalizeDocument(doc, where);
      } catch (err) {
        // Accepted and kept: a normalizer failure is the delivery's dead letter, not a lost event.
        results = [requestDeadLetter(where, err, 'cloudtrail', body.toString('utf8'))];
      }
    }
    let settle: (err: unknown) => void = () => {};
    const published = new Promise<unknown>((resolve) => {
      settle = resolve;
    });
    if (!queue.offer({ results, bytes: body.length, origin, settle })) return refuse(res, 503, 'busy\n', { 'retry-after': '5' });
    if ((await published) !== null) return refuse(res, 503, 'not published, retry\n', { 'retry-after': '5' });
    if (status === 400) return refuse(res, 400, 'body is not JSON\n');
    sendJson(res, 200, { accepted: results.filter((r) => r.kind === 'event').length });
  };

  server = await startServer({
    port: options.port,
    handler,
    logger: log,
    ...(options.host ? { host: options.host } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
  });
  const running = server;
  return {
    port: running.port,
    url: running.url,
    server: running.server,
    limits: running.limits,
    get refusedConnections() {
      return running.refusedConnections;
    },
    get unauthorized() {
      return unauthorized;
    },
    get poisoned() {
      return poisoned;
    },
    drained: () => queue.drained(),
    close: async () => {
      closing = true;
      await running.close();
      // Queued deliveries were not answered yet: a bounded chance to publish, else EventBridge resends them.
      await Promise.race([queue.drained(), sleep(10_000)]);
    },
  };
}
