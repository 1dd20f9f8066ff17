/**
 * The Kubernetes audit webhook receiver (`--audit-webhook-config-file` points the apiserver here).
 *
 * Authentication: a client certificate that chains to `tls.clientCa`, or `Authorization: Bearer`
 * with the configured token (constant-time compare); either suffices when both are configured.
 * It is decided from the headers alone: an unauthenticated request is answered 401 and its
 * connection closed without reading the body.
 *
 * A body (`EventList`, a bare `Event`, or a JSON array; gzip inflated within
 * `maxDecompressedBytes`) is answered 200 only once it is durable. With a spool (the default of a
 * configured receiver) that is when the body is appended and fsynced to the on-disk spool, which
 * a drainer publishes to Kafka in order, retrying transient failures for as long as the broker is
 * away; a full spool answers 503 with `Retry-After`. Without one, 200 comes after Kafka
 * acknowledged every event of the body, and 503 when the publish failed; `queueEvents` /
 * `queueBytes` bound the bodies waiting (429 beyond). The apiserver retries a batch at most 5
 * times over ~90 s and then drops it, so it is never told "ok" for events that can still be lost.
 * A body that is not JSON is dead-lettered (with 200: it was kept, and the apiserver would only
 * resend the same bytes). One item that cannot be normalized or published (nested thousands deep,
 * refused by Kafka) is a dead letter naming the request; the other items of the batch are published.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { secretEquals } from '../../core/signing.js';
import { bodyErrorStatus, inflateBody, type RunningServer, readBody, refuse, startServer } from '../collector/http.js';
import type { CollectorMetrics } from '../collector/metrics.js';
import type { EventPublisher } from '../collector/publisher.js';
import { BoundedQueue, DurableQueue, requestDeadLetter } from '../collector/queue.js';
import { Spool } from '../collector/spool.js';
import type { NormalizeResult, Origin } from '../types.js';
import type { K8sReceiverConfig } from './options.js';

export interface K8sReceiverDeps {
  publisher: EventPublisher;
  logger: Logger;
  metrics: CollectorMetrics;
}

export interface K8sReceiverServer extends RunningServer {
  /** Resolves when every accepted body is published. */
  drained(): Promise<void>;
  /** Events accepted and not yet published (with a spool: bodies, i.e. spool records). */
  readonly queuedEvents: number;
  /** Body bytes accepted and not yet published. */
  readonly queuedBytes: number;
  /** The spool, when configured (tests, metrics). */
  readonly spool: Spool | null;
}

/** A queued request: the (inflated) body bytes only — a parsed document would hold 3–5× as much. */
interface Body {
  bytes: Buffer;
  events: number;
  /** The request id: `k8s-webhook:<received>#<n>`, named by every dead letter of the body. */
  origin: string;
  /** Kafka-ack mode: settles the request once the body is published (or not). */
  settle?: (err: unknown) => void;
}

/** A spool record: `[u32 BE header length][{"origin","events"} JSON][body]`. */
function encodeBody(b: Body): Buffer {
  const head = Buffer.from(JSON.stringify({ origin: b.origin, events: b.events }));
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(head.length, 0);
  return Buffer.concat([len, head, b.bytes]);
}

function decodeBody(record: Buffer): Body {
  const n = record.readUInt32BE(0);
  const head = JSON.parse(record.subarray(4, 4 + n).toString('utf8')) as { origin: string; events: number };
  return { origin: head.origin, events: head.events, bytes: record.subarray(4 + n) };
}

function countEvents(doc: unknown): number {
  if (Array.isArray(doc)) return doc.length;
  if (doc !== null && typeof doc === 'object') {
    const items = (doc as { items?: unknown }).items;
    if (Array.isArray(items)) return items.length;
  }
  return 1;
}

/**
 * Normalizes one body; an item whose normalization throws is its own dead letter (request id,
 * index, reason) instead of taking the batch with it.
 */
function normalizeBody(publisher: EventPublisher, b: Body): NormalizeResult[] {
  try {
    return publisher.normalizeBuffer(b.bytes, b.origin);
  } catch (whole) {
    let doc: unknown;
    try {
      doc = JSON.parse(b.bytes.toString('utf8'));
    } catch {
      return [requestDeadLetter({ file: b.origin, line: null, index: null }, whole, 'k8s')];
    }
    const items = Array.isArray(doc) ? doc : (doc as { items?: unknown })?.items;
    if (!Array.isArray(items)) return [requestDeadLetter({ file: b.origin, line: null, index: null }, whole, 'k8s')];
    const out: NormalizeResult[] = [];
    items.forEach((item: unknown, index) => {
      const where: Origin = { file: b.origin, line: null, index };
      try {
        out.push(...publisher.normalizeDocument(item, where));
      } catch (err) {
        out.push(requestDeadLetter(where, err, 'k8s'));
      }
    });
    return out;
  }
}

/** The apiserver ignores Retry-After (its back-off starts at 10 s); EventBridge-style senders honour it. */
const RETRY_AFTER_S = '10';

export async function startK8sReceiver(config: K8sReceiverConfig, deps: K8sReceiverDeps): Promise<K8sReceiverServer> {
  const log = deps.logger;
  const collector = deps.publisher.collector;
  const publish = async (bodies: Body[]) =>
    void (await deps.publisher.publishUnit(
      bodies.length === 1 ? normalizeBody(deps.publisher, bodies[0] as Body) : bodies.flatMap((b) => normalizeBody(deps.publisher, b)),
    ));
  const spool = config.spool ? await Spool.open({ ...config.spool, logger: log }) : null;
  if (spool) deps.metrics.watchSpool(collector, () => ({ bytes: spool.bytes, records: spool.records, maxBytes: spool.maxBytes }));
  // Records Kafka refuses, or that cannot be serialized, come back from the publisher as dead
  // letters naming this request, and the rest of the batch is published (pipeline.poison raised).
  const durable = spool
    ? new DurableQueue({
        spool,
        // A backlog (after an outage or a restart) goes out as units of many bodies.
        handle: (records) => publish(records.map(decodeBody)),
        deadLetter: async (record, err) => {
          let origin = 'k8s-webhook:unreadable-spool-record';
          try {
            origin = decodeBody(record).origin;
          } catch {}
          await deps.publisher.publishUnit([requestDeadLetter({ file: origin, line: null, index: null }, err, 'k8s')]);
        },
        onRetry: (err, attempt, delayMs) => {
          deps.metrics.recordError(collector, 'sending');
          log.warn('k8s audit: publish from the spool failed, kept and retried', {
            error: errorMessage(err),
            attempt,
            delayMs,
            spooledBytes: spool.bytes,
          });
        },
      })
    : null;
  const queue = new BoundedQueue<Body>({
    maxItems: Number.MAX_SAFE_INTEGER,
    maxWeight: config.queueEvents,
    weight: (b) => b.events,
    maxBytes: config.queueBytes,
    bytes: (b) => b.bytes.length,
    handle: async (b) => {
      await publish([b]);
      b.settle?.(null);
    },
    onError: (err, b) => {
      deps.metrics.recordError(collector, 'sending');
      log.error('k8s audit batch not published; answering 503, the apiserver retries it', {
        error: errorMessage(err),
        events: b.events,
        request: b.origin,
      });
      b.settle?.(err);
    },
  });
  const bearer = config.token === null ? null : `Bearer ${config.token}`;
  const clientCerts = config.tls?.clientCa != null;
  let sequence = 0;
  let server: RunningServer;

  const authenticated = (req: IncomingMessage): { ok: true; via: string } | { ok: false; why: string } => {
    const tls = req.socket as TLSSocket;
    // A resumed TLS session without a certificate reports authorized=true: a certificate must be there.
    if (clientCerts && tls.authorized === true && Object.keys(tls.getPeerCertificate() ?? {}).length > 0) {
      return { ok: true, via: 'client-certificate' };
    }
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
    const path = (req.url ?? '/').split('?')[0];
    if (path !== config.path) return refuse(res, 404, 'not found\n');
    if (req.method !== 'POST') return refuse(res, 405, 'method not allowed\n', { allow: 'POST' });
    const auth = authenticated(req);
    if (!auth.ok) {
      deps.metrics.recordError(collector, 'receiving');
      log.warn('k8s audit request refused', { reason: auth.why, remote: req.socket.remoteAddress });
      return refuse(res, 401, 'unauthorized\n');
    }
    // Refuse before reading: a full queue or spool must cost the sender a round trip, not us the body.
    const declared = Number(req.headers['content-length']);
    const size = Number.isFinite(declared) ? declared : 0;
    if (durable ? !durable.wouldAccept(size) : !queue.wouldAccept(size) || queue.weight >= config.queueEvents) return refuseBusy(res);
    const origin = `k8s-webhook:${new Date().toISOString()}#${++sequence}`;
    let bytes: Buffer;
    try {
      const raw = await readBody(req, config.maxBodyBytes, { idleTimeoutMs: server.limits.bodyIdleTimeoutMs });
      bytes = await inflateBody(req, raw, config.maxDecompressedBytes, origin);
    } catch (err) {
      const status = bodyErrorStatus(err);
      deps.metrics.recordError(collector, 'receiving');
      log.warn('k8s audit body refused', { status, request: origin, error: errorMessage(err) });
      // A gzip bomb is kept as a dead letter naming the request: the apiserver would resend it forever.
      if (status === 413 && String(req.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') deadLetterRefused(origin, err);
      return refuse(res, status, `${errorMessage(err)}\n`);
    }
    let events = 1;
    try {
      events = countEvents(JSON.parse(bytes.toString('utf8')));
    } catch {
      // Not JSON: published as bytes, so the normalizer dead-letters it with the reason.
    }
    if (durable) {
      let accepted: boolean;
      try {
        accepted = await durable.offer(encodeBody({ bytes, events, origin }));
      } catch (err) {
        // The disk refused the write (full, read-only): nothing was acknowledged, the apiserver retries.
        deps.metrics.recordError(collector, 'receiving');
        log.error('k8s audit: spool write failed; answering 503', { request: origin, error: errorMessage(err) });
        return refuse(res, 503, 'spool unavailable, retry\n', { 'retry-after': RETRY_AFTER_S });
      }
      if (!accepted) return refuseBusy(res);
    } else {
      let settle: (err: unknown) => void = () => {};
      const published = new Promise<unknown>((resolve) => {
        settle = resolve;
      });
      if (!queue.offer({ bytes, events, origin, settle })) return refuseBusy(res);
      if ((await published) !== null) return refuse(res, 503, 'not published, retry\n', { 'retry-after': RETRY_AFTER_S });
    }
    res.writeHead(200, { 'content-length': '0' });
    res.end();
  };

  const deadLetterRefused = (origin: string, err: unknown) => {
    const where = { file: origin, line: null, index: null };
    deps.publisher.publishUnit([requestDeadLetter(where, err, 'k8s')]).catch((e: unknown) => {
      deps.metrics.recordError(collector, 'sending');
      log.error('k8s audit: dead letter of a refused body not published', { request: origin, error: errorMessage(e) });
    });
  };

  const refuseBusy = (res: ServerResponse) => {
    deps.metrics.recordError(collector, 'receiving');
    if (spool) {
      log.warn('k8s audit spool full; answering 503', { spooledBytes: spool.bytes, maxBytes: spool.maxBytes });
      return refuse(res, 503, 'spool full, retry\n', { 'retry-after': RETRY_AFTER_S });
    }
    log.warn('k8s audit queue full; answering 429', { queuedEvents: queue.weight, queuedBytes: queue.bytes });
    refuse(res, 429, 'queue full, retry\n', { 'retry-after': '1' });
  };

  try {
    server = await startServer({
      host: config.host,
      port: config.port,
      ...(config.tls
        ? { tls: { cert: config.tls.cert, key: config.tls.key, ...(config.tls.clientCa ? { clientCa: config.tls.clientCa } : {}) } }
        : {}),
      handler,
      logger: log,
      limits: config.limits,
    });
  } catch (err) {
    // Port taken, bad certificate: release the spool (its lock) so a retry in this process can open it.
    await durable?.close();
    throw err;
  }
  log.info('k8s audit webhook receiver listening', {
    url: `${server.url}${config.path}`,
    clientCertificates: clientCerts,
    bearer: bearer !== null,
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
    get queuedEvents() {
      return spool ? spool.records : queue.weight;
    },
    get queuedBytes() {
      return spool ? spool.bytes : queue.bytes;
    },
    spool,
    drained: async () => {
      await queue.drained();
      await durable?.drained();
    },
    close: async () => {
      await running.close();
      await queue.drained();
      // What the spool holds stays on disk for the next start.
      await durable?.close();
    },
  };
}
