/**
 * The Kubernetes audit webhook receiver (`--audit-webhook-config-file` points the apiserver here).
 *
 * Authentication: a client certificate that chains to `tls.clientCa`, or `Authorization: Bearer`
 * with the configured token (constant-time compare); either suffices when both are configured.
 * A body (`EventList`, a bare `Event`, or a JSON array) is parsed, queued and answered 200 at
 * once; the queue publishes behind it. When the queue holds `queueEvents` events the answer is
 * 429 with `Retry-After`, so the apiserver's webhook backoff retries — it is never told "ok" for
 * events that were then dropped. A body that is not JSON is dead-lettered (with 200: it was
 * accepted and kept, and the apiserver would only resend the same bytes).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { secretEquals } from '../../core/signing.js';
import { type RunningServer, readBody, sendText, serveMetrics, startServer } from '../collector/http.js';
import type { CollectorMetrics } from '../collector/metrics.js';
import type { EventPublisher } from '../collector/publisher.js';
import { BoundedQueue } from '../collector/queue.js';
import type { K8sReceiverConfig } from './options.js';

export interface K8sReceiverDeps {
  publisher: EventPublisher;
  logger: Logger;
  metrics: CollectorMetrics;
}

export interface K8sReceiverServer extends RunningServer {
  /** Resolves when every accepted body is published. */
  drained(): Promise<void>;
  /** Events accepted and not yet published. */
  readonly queuedEvents: number;
}

type Body = { kind: 'doc'; doc: unknown; events: number; origin: string } | { kind: 'bytes'; bytes: Buffer; origin: string };

function countEvents(doc: unknown): number {
  if (Array.isArray(doc)) return doc.length;
  if (doc !== null && typeof doc === 'object') {
    const items = (doc as { items?: unknown }).items;
    if (Array.isArray(items)) return items.length;
  }
  return 1;
}

export async function startK8sReceiver(config: K8sReceiverConfig, deps: K8sReceiverDeps): Promise<K8sReceiverServer> {
  const log = deps.logger;
  const collector = deps.publisher.collector;
  const queue = new BoundedQueue<Body>({
    maxItems: Number.MAX_SAFE_INTEGER,
    maxWeight: config.queueEvents,
    weight: (b) => (b.kind === 'doc' ? b.events : 1),
    handle: async (b) => {
      if (b.kind === 'doc') await deps.publisher.publishDocument(b.doc, { file: b.origin, line: null, index: null });
      else await deps.publisher.publishBuffer(b.bytes, b.origin);
    },
    onError: (err, b) => {
      // The publisher already retried for minutes: Kafka is down. Loud, counted, once per body.
      deps.metrics.recordError(collector, 'sending');
      log.error('k8s audit batch not published after retries; events lost', {
        error: errorMessage(err),
        events: b.kind === 'doc' ? b.events : 1,
      });
    },
  });
  const bearer = config.token === null ? null : `Bearer ${config.token}`;
  const clientCerts = config.tls?.clientCa != null;
  let sequence = 0;

  const authenticated = (req: IncomingMessage): { ok: true; via: string } | { ok: false; why: string } => {
    if (clientCerts && (req.socket as TLSSocket).authorized === true) return { ok: true, via: 'client-certificate' };
    const header = req.headers.authorization;
    if (bearer !== null && secretEquals(bearer, header)) return { ok: true, via: 'bearer' };
    if (header !== undefined) return { ok: false, why: 'wrong bearer token' };
    if (clientCerts) {
      const err = (req.socket as TLSSocket).authorizationError;
      return { ok: false, why: err ? `client certificate rejected: ${String(err)}` : 'no client certificate and no bearer token' };
    }
    return { ok: false, why: 'no bearer token' };
  };

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    if (serveMetrics(deps.metrics, req, res)) return;
    const path = (req.url ?? '/').split('?')[0];
    if (path !== config.path) return sendText(res, 404, 'not found\n');
    if (req.method !== 'POST') return sendText(res, 405, 'method not allowed\n', { allow: 'POST' });
    const auth = authenticated(req);
    if (!auth.ok) {
      deps.metrics.recordError(collector, 'receiving');
      log.warn('k8s audit request refused', { reason: auth.why, remote: req.socket.remoteAddress });
      req.resume();
      return sendText(res, 401, 'unauthorized\n');
    }
    // Refuse before reading: a full queue must cost the sender a round trip, not us the body.
    if (queue.weight >= config.queueEvents) return refuseBusy(res);
    let bytes: Buffer;
    try {
      bytes = await readBody(req, config.maxBodyBytes);
    } catch (err) {
      const status = err instanceof GlasswatchError && err.code === 'BG_INGEST_BODY_TOO_LARGE' ? 413 : 400;
      deps.metrics.recordError(collector, 'receiving');
      log.warn('k8s audit body refused', { status, error: errorMessage(err) });
      return sendText(res, status, `${errorMessage(err)}\n`);
    }
    const origin = `k8s-webhook:${new Date().toISOString()}#${++sequence}`;
    let body: Body;
    try {
      const doc: unknown = JSON.parse(bytes.toString('utf8'));
      body = { kind: 'doc', doc, events: countEvents(doc), origin };
    } catch {
      body = { kind: 'bytes', bytes, origin };
    }
    if (!queue.offer(body)) return refuseBusy(res);
    res.writeHead(200, { 'content-length': '0' });
    res.end();
  };

  const refuseBusy = (res: ServerResponse) => {
    deps.metrics.recordError(collector, 'receiving');
    log.warn('k8s audit queue full; answering 429', { queuedEvents: queue.weight });
    sendText(res, 429, 'queue full, retry\n', { 'retry-after': '1' });
  };

  const server = await startServer({
    host: config.host,
    port: config.port,
    ...(config.tls
      ? { tls: { cert: config.tls.cert, key: config.tls.key, ...(config.tls.clientCa ? { clientCa: config.tls.clientCa } : {}) } }
      : {}),
    handler,
    logger: log,
  });
  log.info('k8s audit webhook receiver listening', {
    url: `${server.url}${config.path}`,
    clientCertificates: clientCerts,
    bearer: bearer !== null,
  });
  return {
    ...server,
    get queuedEvents() {
      return queue.weight;
    },
    drained: () => queue.drained(),
    close: async () => {
      await server.close();
      await queue.drained();
    },
  };
}
