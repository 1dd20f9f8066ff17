/**
 * HTTP(S) server helpers shared by the receivers (Okta Event Hooks, Kubernetes audit webhook,
 * EventBridge, tickets) and the `/metrics` listener: start/stop with the hostile-client limits,
 * bounded body reading, replies.
 *
 * Every server gets the same limits (`ServerLimits`), because each one faces the network and the
 * person glasswatch watches may be the client: slow or idle sockets are cut by the header,
 * request, keep-alive and body-idle timeouts, and one address can hold only
 * `maxConnectionsPerIp` sockets, so a flood from one host cannot starve the apiserver, Okta or an
 * operator's probe from another.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/log.js';
import { gunzipBounded, isGzip } from '../decode.js';
import type { CollectorMetrics } from './metrics.js';

export interface TlsServerOptions {
  /** PEM server certificate (chain) and key. */
  cert: string | Buffer;
  key: string | Buffer;
  /** PEM CA bundle that client certificates must chain to; with it, clients are asked for a certificate. */
  clientCa?: string | Buffer;
}

/** Limits against slow, idle and flooding clients. */
export interface ServerLimits {
  /** Time to receive the request line and headers. @default 10000 */
  headersTimeoutMs: number;
  /** Time to receive the whole request, body included. @default 30000 */
  requestTimeoutMs: number;
  /** An idle keep-alive socket is closed after this. @default 5000 */
  keepAliveTimeoutMs: number;
  /** A body that sends nothing for this long is refused (408) and its socket closed. @default 10000 */
  bodyIdleTimeoutMs: number;
  /** Open sockets per server; beyond, new ones are closed at accept. @default 1024 */
  maxConnections: number;
  /** Open sockets per remote address; beyond, new ones are closed at accept. @default 64 */
  maxConnectionsPerIp: number;
}

export const DEFAULT_SERVER_LIMITS: Readonly<ServerLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  bodyIdleTimeoutMs: 10_000,
  maxConnections: 1024,
  maxConnectionsPerIp: 64,
});

export interface ServerOptions {
  /** @default "127.0.0.1" (bind wider on purpose, e.g. "0.0.0.0") */
  host?: string;
  /** 0 picks an ephemeral port (tests). */
  port: number;
  tls?: TlsServerOptions;
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
  logger?: Logger;
  /** Overrides of `DEFAULT_SERVER_LIMITS`. */
  limits?: Partial<ServerLimits>;
}

export interface RunningServer {
  readonly port: number;
  /** `http(s)://host:port` */
  readonly url: string;
  readonly server: Server;
  /** The limits in force (readBody takes `bodyIdleTimeoutMs` from here). */
  readonly limits: Readonly<ServerLimits>;
  /** Sockets closed at accept by the connection caps. */
  readonly refusedConnections: number;
  close(): Promise<void>;
}

export function serverLimits(overrides: Partial<ServerLimits> = {}): ServerLimits {
  const l = { ...DEFAULT_SERVER_LIMITS, ...overrides };
  // Node rejects headersTimeout > requestTimeout.
  l.headersTimeoutMs = Math.min(l.headersTimeoutMs, l.requestTimeoutMs);
  return l;
}

/** Applies the limits to a Node server; returns the count of sockets refused by the caps. */
export function hardenServer(server: Server, limits: ServerLimits, log: Logger = silentLogger): { refused(): number } {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  const perIp = new Map<string, number>();
  let refused = 0;
  let lastWarn = 0;
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? '?';
    const n = perIp.get(ip) ?? 0;
    if (n >= limits.maxConnectionsPerIp) {
      refused++;
      // One line per minute at most: the flood must not flood the log too.
      if (Date.now() - lastWarn > 60_000) {
        lastWarn = Date.now();
        log.warn('connections refused: per-address cap reached', { remote: ip, cap: limits.maxConnectionsPerIp, refused });
      }
      socket.destroy();
      return;
    }
    perIp.set(ip, n + 1);
    socket.once('close', () => {
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left <= 0) perIp.delete(ip);
      else perIp.set(ip, left);
    });
  });
  server.on('drop', () => {
    refused++;
  });
  return { refused: () => refused };
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.logger ?? silentLogger;
  const limits = serverLimits(options.limits);
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    Promise.resolve()
      .then(() => options.handler(req, res))
      .catch((err: unknown) => {
        log.error('request handler failed', { error: errorMessage(err), url: req.url, method: req.method });
        if (!res.headersSent) sendText(res, 500, 'internal error\n', { connection: 'close' });
        else res.destroy();
      });
  };
  // Node checks the header and request timeouts on this interval (default 30 s, too coarse).
  const http = {
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
  };
  const tls = options.tls;
  const server: Server = tls
    ? createHttpsServer(
        {
          ...http,
          cert: tls.cert,
          key: tls.key,
          // A TLS handshake that does not finish is a slow socket too.
          handshakeTimeout: limits.headersTimeoutMs,
          ...(tls.clientCa
            ? // Unauthorized clients still complete the handshake so the handler can answer 401 and log why.
              { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false }
            : {}),
        },
        handle,
      )
    : createHttpServer(http, handle);
  const caps = hardenServer(server, limits, log);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    port,
    url: `${tls ? 'https' : 'http'}://${shownHost}:${port}`,
    server,
    limits,
    get refusedConnections() {
      return caps.refused();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface ReadBodyOptions {
  /** Refuse (408) a body that sends nothing for this long. @default DEFAULT_SERVER_LIMITS.bodyIdleTimeoutMs */
  idleTimeoutMs?: number;
}

/**
 * Reads a request body up to `maxBytes`; larger bodies reject with a 413-coded error, a body that
 * stalls for `idleTimeoutMs` with a 408-coded one. In both cases the socket is closed after the
 * answer (`refuse`), so the rest of the body is never read.
 */
export function readBody(req: IncomingMessage, maxBytes: number, options: ReadBodyOptions = {}): Promise<Buffer> {
  const idleMs = options.idleTimeoutMs ?? DEFAULT_SERVER_LIMITS.bodyIdleTimeoutMs;
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(bodyError(413, `request body larger than ${maxBytes} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | null = null;
    const done = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        done();
        req.pause();
        reject(bodyError(408, `request body idle for ${idleMs} ms`));
      }, idleMs);
      timer.unref();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        done();
        req.pause();
        reject(bodyError(413, `request body larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
      arm();
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const onAborted = () => {
      done();
      reject(bodyError(400, 'client aborted the request'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
    arm();
  });
}

function bodyError(status: 400 | 408 | 413, message: string): GlasswatchError {
  return new GlasswatchError(status === 413 ? 'BG_INGEST_BODY_TOO_LARGE' : 'BG_INGEST_BODY_UNREADABLE', message, {
    stage: 'receiving',
    context: { status },
  });
}

/** The HTTP status a `readBody` (or bounded gunzip) rejection maps to. */
export function bodyErrorStatus(err: unknown): number {
  if (err instanceof GlasswatchError) {
    if (err.code === 'INPUT_TOO_LARGE' || err.code === 'BG_INGEST_BODY_TOO_LARGE') return 413;
    if (err.code === 'INPUT_CORRUPT') return 400;
    const status = err.context.status;
    if (typeof status === 'number') return status;
  }
  return 400;
}

/**
 * Answers and closes the connection without reading the request body: an unauthenticated or
 * refused client must not make us read (or wait for) what it sends.
 */
export function refuse(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  sendText(res, status, text, { connection: 'close', ...headers });
}

export function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/**
 * Serves `GET /metrics` (Prometheus text) and `GET /healthz`; returns true when it answered. Only
 * the metrics listener mounts it: receivers bound to 0.0.0.0 must not expose it without auth.
 */
export function serveMetrics(metrics: CollectorMetrics, req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'GET') return false;
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/metrics') {
    sendText(res, 200, metrics.render(), { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    return true;
  }
  if (path === '/healthz') {
    sendText(res, 200, 'ok\n');
    return true;
  }
  return false;
}

/**
 * The `/metrics` + `/healthz` listener of a process, separate from every receiver (127.0.0.1 by
 * default), so a flood on a receiver port does not blind the probes and the counters.
 */
export function startMetricsServer(
  metrics: CollectorMetrics,
  options: { host?: string; port: number; logger?: Logger; limits?: Partial<ServerLimits> },
): Promise<RunningServer> {
  return startServer({
    ...options,
    handler: (req, res) => {
      if (!serveMetrics(metrics, req, res)) sendText(res, 404, 'not found\n');
    },
  });
}

/**
 * A gzip body (by `Content-Encoding` or its magic bytes) inflated within `maxBytes`, off the event
 * loop; other bodies unchanged. Over budget rejects with `INPUT_TOO_LARGE` (answered 413).
 */
export async function inflateBody(req: IncomingMessage, body: Buffer, maxBytes: number, what: string): Promise<Buffer> {
  const encoding = String(req.headers['content-encoding'] ?? '').toLowerCase();
  if (encoding !== 'gzip' && !isGzip(body)) return body;
  const inflated = await gunzipBounded(body, { maxBytes, what });
  // gzip inside gzip would be inflated again downstream, synchronously and with a larger budget.
  if (isGzip(inflated)) {
    throw new GlasswatchError('INPUT_CORRUPT', `${what}: gzip inside gzip is not accepted`, {
      stage: 'receiving',
      context: { status: 400 },
    });
  }
  return inflated;
}
