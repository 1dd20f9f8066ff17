/**
 * The EventBridge endpoint: an HTTPS target for an EventBridge API destination, the low-latency
 * path (seconds instead of the S3 delivery's minutes). EventBridge rules are regional, so this is
 * a hint beside the S3/SQS path, not a replacement (source-api-facts §4.4).
 *
 * API destinations authenticate with a static header (connection auth `API_KEY`) or Basic auth;
 * both are compared in constant time and never logged. Accepted bodies are normalized at once
 * (CloudTrail envelopes unwrapped, other detail-types counted as skipped) and queued; the answer
 * goes out before the publish. A full queue answers 503, which EventBridge retries (with backoff,
 * for up to 24 h by default), so nothing is shed. A publish that fails is retried until it
 * succeeds or the receiver closes, holding the queue — the sender sees 503s, not silent loss.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/log.js';
import { secretEquals } from '../../core/signing.js';
import { type RunningServer, readBody, sendJson, sendText, serveMetrics, startServer, type TlsServerOptions } from '../collector/http.js';
import type { CollectorMetrics } from '../collector/metrics.js';
import type { EventPublisher } from '../collector/publisher.js';
import { BoundedQueue } from '../collector/queue.js';
import { sleep } from '../collector/run.js';
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
  metrics?: CollectorMetrics;
  logger?: Logger;
}

export interface EventBridgeReceiver extends RunningServer {
  /** Resolves when every body accepted so far is published (tests). */
  drained(): Promise<void>;
  /** Requests refused for bad or missing credentials (tests, status). */
  readonly unauthorized: number;
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
  const abort = new AbortController();
  let unauthorized = 0;
  let lastAuthWarn = 0;

  const queue = new BoundedQueue<NormalizeResult[]>({
    maxItems: options.maxQueuedBodies ?? 1000,
    maxWeight: options.maxQueuedEvents ?? 10_000,
    weight: (results) => results.length,
    handle: async (results) => {
      // The sender already has its 200: retry here until published, or until shutdown.
      for (let delay = 500; ; delay = Math.min(delay * 2, 30_000)) {
        try {
          await publisher.publishUnit(results);
          return;
        } catch (err) {
          if (abort.signal.aborted) throw err;
          log.warn('cloudtrail eventbridge: publish failed, holding the queue and retrying', {
            error: errorMessage(err),
            retryInMs: delay,
          });
          await sleep(delay, abort.signal);
        }
      }
    },
    onError: (err, results) => {
      metrics?.recordError(publisher.collector, 'sending');
      log.error('cloudtrail eventbridge: records not published before shutdown', { error: errorMessage(err), records: results.length });
    },
  });

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    if (metrics && serveMetrics(metrics, req, res)) return;
    const url = (req.url ?? '/').split('?')[0];
    if (url !== path) return sendText(res, 404, 'not found\n');
    if (req.method !== 'POST') return sendText(res, 405, 'method not allowed\n', { allow: 'POST' });
    if (!authorized(options.auth, req)) {
      unauthorized++;
      metrics?.recordError(publisher.collector, 'receiving');
      // One line per minute at most: a scanner must not be able to flood the log.
      if (Date.now() - lastAuthWarn > 60_000) {
        lastAuthWarn = Date.now();
        log.warn('cloudtrail eventbridge: unauthorized requests refused', { total: unauthorized, remote: req.socket.remoteAddress });
      }
      req.resume();
      return sendText(res, 401, 'unauthorized\n', options.auth.basic ? { 'www-authenticate': 'Basic realm="glasswatch"' } : {});
    }
    if (closing) return sendText(res, 503, 'shutting down\n', { 'retry-after': '5' });
    let body: Buffer;
    try {
      body = await readBody(req, maxBody);
    } catch (err) {
      const status = err instanceof GlasswatchError && err.context.status === 413 ? 413 : 400;
      return sendText(res, status, `${errorMessage(err)}\n`);
    }
    let doc: unknown;
    let results: NormalizeResult[];
    let status = 200;
    try {
      doc = JSON.parse(body.toString('utf8'));
      const id = typeof (doc as { id?: unknown })?.id === 'string' ? (doc as { id: string }).id : '?';
      results = publisher.normalizeDocument(doc, { file: `eventbridge:${id}`, line: null, index: null });
    } catch (err) {
      // EventBridge does not retry a 400; the body is kept as a dead letter so it is not lost unseen.
      status = 400;
      const text = body.toString('utf8');
      results = [
        {
          kind: 'dead',
          source: 'cloudtrail',
          reason: `EventBridge body is not JSON: ${errorMessage(err)}`,
          origin: { file: 'eventbridge', line: null, index: null },
          text,
        },
      ];
    }
    if (!queue.offer(results)) return sendText(res, 503, 'busy\n', { 'retry-after': '5' });
    if (status === 400) return sendText(res, 400, 'body is not JSON\n');
    sendJson(res, 200, { accepted: results.filter((r) => r.kind === 'event').length });
  };

  const server = await startServer({
    port: options.port,
    handler,
    logger: log,
    ...(options.host ? { host: options.host } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
  });
  return {
    ...server,
    get unauthorized() {
      return unauthorized;
    },
    drained: () => queue.drained(),
    close: async () => {
      closing = true;
      await server.close();
      // Give queued bodies a bounded chance to publish; a bus that stays down must not hang shutdown.
      await Promise.race([queue.drained(), sleep(10_000)]);
      abort.abort();
      await queue.drained();
    },
  };
}
