/**
 * The Okta Event Hooks receiver. Okta gives a delivery 3 s, retries at most once and never
 * retries a 4xx, so the handler only checks the shared secret, queues the raw body and answers
 * 200; parsing, normalization and publishing happen behind the queue. The poller stays the source
 * of truth: a delivery lost here is read from the System Log, and the shared dedupe window makes
 * sure one read by both paths is published once.
 *
 * - `GET` with `X-Okta-Verification-Challenge: v` → `200 {"verification":"v"}` (one-time verification).
 * - `POST` with the configured secret header → 200 (queued) | 401 (wrong/missing secret) |
 *   413 (too large) | 503 (queue full: Okta retries once, the poller catches up anyway).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { secretEquals } from '../../core/signing.js';
import { type RunningServer, readBody, sendJson, sendText, serveMetrics, startServer } from '../collector/http.js';
import type { CollectorMetrics } from '../collector/metrics.js';
import type { EventPublisher } from '../collector/publisher.js';
import { BoundedQueue } from '../collector/queue.js';
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
}

export async function startOktaHook(config: OktaHookConfig, deps: OktaHookDeps): Promise<OktaHookServer> {
  const log = deps.logger.child({ collector: 'okta-hook' });
  const collector = deps.publisher.collector;
  const queue = new BoundedQueue<Delivery>({
    maxItems: 10_000,
    maxWeight: config.queueBytes,
    weight: (d) => d.body.length,
    handle: async (d) => {
      await deps.publisher.publishBuffer(d.body, `okta-hook:${d.receivedAt}`);
    },
    onError: (err) => {
      // Acknowledged to Okta already: the poller will deliver these events; say so once per body.
      deps.metrics.recordError(collector, 'sending');
      log.error('okta hook delivery not published; the System Log poller will pick its events up', { error: errorMessage(err) });
    },
  });
  const secretHeader = config.secretHeader.toLowerCase();

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    if (serveMetrics(deps.metrics, req, res)) return;
    const path = (req.url ?? '/').split('?')[0];
    if (path !== config.path) return sendText(res, 404, 'not found\n');
    if (req.method === 'GET') {
      const challenge = req.headers['x-okta-verification-challenge'];
      if (typeof challenge !== 'string' || challenge === '') return sendText(res, 400, 'missing X-Okta-Verification-Challenge\n');
      log.info('okta event hook verification answered');
      return sendJson(res, 200, { verification: challenge });
    }
    if (req.method !== 'POST') return sendText(res, 405, 'method not allowed\n', { allow: 'GET, POST' });
    const given = req.headers[secretHeader];
    if (!secretEquals(config.secret, typeof given === 'string' ? given : undefined)) {
      deps.metrics.recordError(collector, 'receiving');
      // The header name and the peer only: neither the expected nor the presented value.
      log.warn('okta hook request refused: wrong or missing secret header', {
        header: config.secretHeader,
        present: given !== undefined,
        remote: req.socket.remoteAddress,
      });
      req.resume();
      return sendText(res, 401, 'unauthorized\n');
    }
    let body: Buffer;
    try {
      body = await readBody(req, config.maxBodyBytes);
    } catch (err) {
      const status = err instanceof GlasswatchError && err.code === 'BG_INGEST_BODY_TOO_LARGE' ? 413 : 400;
      deps.metrics.recordError(collector, 'receiving');
      log.warn('okta hook body refused', { status, error: errorMessage(err) });
      return sendText(res, status, `${errorMessage(err)}\n`);
    }
    if (!queue.offer({ body, receivedAt: new Date().toISOString() })) {
      deps.metrics.recordError(collector, 'receiving');
      log.warn('okta hook queue full; answering 503', { queuedBytes: queue.weight });
      return sendText(res, 503, 'busy\n', { 'retry-after': '1' });
    }
    res.writeHead(200, { 'content-length': '0' });
    res.end();
  };

  const server = await startServer({
    host: config.host,
    port: config.port,
    ...(config.tls ? { tls: config.tls } : {}),
    handler,
    logger: log,
  });
  log.info('okta event hook receiver listening', { url: `${server.url}${config.path}` });
  return {
    ...server,
    drained: () => queue.drained(),
    close: async () => {
      await server.close();
      await queue.drained();
    },
  };
}
