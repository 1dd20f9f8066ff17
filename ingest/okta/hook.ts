/**
 * The Okta Event Hooks receiver. Okta gives a delivery 3 s, retries at most once and never
 * retries a 4xx, so the handler only checks the shared secret and queues the raw body; the 200
 * goes out once Kafka acknowledged the delivery's events (milliseconds on a live broker), a 503
 * when the publish failed (Okta retries once). The poller stays the source of truth: a delivery
 * refused here is read from the System Log, and the shared dedupe window makes sure one read by
 * both paths is published once. No spool: the System Log is the durable copy.
 *
 * - `GET` with `X-Okta-Verification-Challenge: v` → `200 {"verification":"v"}` (one-time verification).
 * - `POST` with the configured secret header → 200 (in Kafka) | 401 (wrong/missing secret, decided
 *   from the headers: the body is never read) | 413 (too large, or a gzip body inflating beyond
 *   `maxDecompressedBytes`) | 503 (queue full or Kafka unavailable: Okta retries once, the poller
 *   catches up anyway).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { secretEquals } from '../../core/signing.js';
import { bodyErrorStatus, inflateBody, type RunningServer, readBody, refuse, sendJson, startServer } from '../collector/http.js';
import type { CollectorMetrics } from '../collector/metrics.js';
import type { EventPublisher } from '../collector/publisher.js';
import { BoundedQueue, requestDeadLetter } from '../collector/queue.js';
import type { OktaHookConfig } from './options.js';

export interface OktaHookDeps {
  /** Publisher of collector "okta-hook", sharing the poller's dedupe window and bus. */
  publisher: EventPublisher;
  logger: Logger;
  metrics: CollectorMetrics;
}

export interface OktaHookServer extends RunningServer {
  /** Resolves when every delivery accepted so far is published. */
  drained(): Promise<void>;
}

interface Delivery {
  body: Buffer;
  receivedAt: string;
  /** Settles the request: null once published, the error otherwise. */
  settle: (err: unknown) => void;
}

export async function startOktaHook(config: OktaHookConfig, deps: OktaHookDeps): Promise<OktaHookServer> {
  const log = deps.logger.child({ collector: 'okta-hook' });
  const collector = deps.publisher.collector;
  const queue = new BoundedQueue<Delivery>({
    maxItems: 10_000,
    maxBytes: config.queueBytes,
    bytes: (d) => d.body.length,
    handle: async (d) => {
      await deps.publisher.publishBuffer(d.body, `okta-hook:${d.receivedAt}`);
      d.settle(null);
    },
    onError: (err, d) => {
      // Answered 503: Okta retries once, and the System Log poller delivers these events anyway.
      deps.metrics.recordError(collector, 'sending');
      log.warn('okta hook delivery not published; answering 503 (the System Log poller picks its events up)', { error: errorMessage(err) });
      d.settle(err);
    },
  });
  const secretHeader = config.secretHeader.toLowerCase();
  let server: RunningServer;

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== config.path) return refuse(res, 404, 'not found\n');
    if (req.method === 'GET') {
      const challenge = req.headers['x-okta-verification-challenge'];
      if (typeof challenge !== 'string' || challenge === '') return refuse(res, 400, 'missing X-Okta-Verification-Challenge\n');
      log.info('okta event hook verification answered');
      return sendJson(res, 200, { verification: challenge });
    }
    if (req.method !== 'POST') return refuse(res, 405, 'method not allowed\n', { allow: 'GET, POST' });
    const given = req.headers[secretHeader];
    if (!secretEquals(config.secret, typeof given === 'string' ? given : undefined)) {
      deps.metrics.recordError(collector, 'receiving');
      // The header name and the peer only: neither the expected nor the presented value.
      log.warn('okta hook request refused: wrong or missing secret header', {
        header: config.secretHeader,
        present: given !== undefined,
        remote: req.socket.remoteAddress,
      });
      return refuse(res, 401, 'unauthorized\n');
    }
    const declared = Number(req.headers['content-length']);
    if (!queue.wouldAccept(Number.isFinite(declared) ? declared : 0)) return refuseBusy(res);
    const receivedAt = new Date().toISOString();
    let body: Buffer;
    try {
      const raw = await readBody(req, config.maxBodyBytes, { idleTimeoutMs: server.limits.bodyIdleTimeoutMs });
      body = await inflateBody(req, raw, config.maxDecompressedBytes, `okta-hook:${receivedAt}`);
    } catch (err) {
      const status = bodyErrorStatus(err);
      deps.metrics.recordError(collector, 'receiving');
      log.warn('okta hook body refused', { status, error: errorMessage(err) });
      // A gzip bomb is kept as a dead letter naming the delivery (the poller still reads its events).
      if (status === 413 && String(req.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') {
        const where = { file: `okta-hook:${receivedAt}`, line: null, index: null };
        deps.publisher.publishUnit([requestDeadLetter(where, err, 'okta')]).catch((e: unknown) => {
          deps.metrics.recordError(collector, 'sending');
          log.error('okta hook: dead letter of a refused body not published', { delivery: where.file, error: errorMessage(e) });
        });
      }
      return refuse(res, status, `${errorMessage(err)}\n`);
    }
    let settle: (err: unknown) => void = () => {};
    const published = new Promise<unknown>((resolve) => {
      settle = resolve;
    });
    if (!queue.offer({ body, receivedAt, settle })) return refuseBusy(res);
    if ((await published) !== null) return refuse(res, 503, 'not published, retry\n', { 'retry-after': '1' });
    res.writeHead(200, { 'content-length': '0' });
    res.end();
  };

  const refuseBusy = (res: ServerResponse) => {
    deps.metrics.recordError(collector, 'receiving');
    log.warn('okta hook queue full; answering 503', { queuedBytes: queue.bytes });
    refuse(res, 503, 'busy\n', { 'retry-after': '1' });
  };

  server = await startServer({
    host: config.host,
    port: config.port,
    ...(config.tls ? { tls: config.tls } : {}),
    handler,
    logger: log,
    limits: config.limits,
  });
  log.info('okta event hook receiver listening', { url: `${server.url}${config.path}` });
  const running = server;
  return {
    port: running.port,
    url: running.url,
    server: running.server,
    limits: running.limits,
    get refusedConnections() {
      return running.refusedConnections;
    },
    drained: () => queue.drained(),
    close: async () => {
      await running.close();
      await queue.drained();
    },
  };
}
