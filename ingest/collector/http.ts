/**
 * HTTP(S) server helpers shared by the receivers (Okta Event Hooks, Kubernetes audit webhook) and
 * the `/metrics` endpoint: start/stop on a given or ephemeral port, bounded body reading, replies.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/log.js';
import type { CollectorMetrics } from './metrics.js';

export interface TlsServerOptions {
  /** PEM server certificate (chain) and key. */
  cert: string | Buffer;
  key: string | Buffer;
  /** PEM CA bundle that client certificates must chain to; with it, clients are asked for a certificate. */
  clientCa?: string | Buffer;
}

export interface ServerOptions {
  /** @default "127.0.0.1" (bind wider on purpose, e.g. "0.0.0.0") */
  host?: string;
  /** 0 picks an ephemeral port (tests). */
  port: number;
  tls?: TlsServerOptions;
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
  logger?: Logger;
}

export interface RunningServer {
  readonly port: number;
  /** `http(s)://host:port` */
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.logger ?? silentLogger;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    Promise.resolve()
      .then(() => options.handler(req, res))
      .catch((err: unknown) => {
        log.error('request handler failed', { error: errorMessage(err), url: req.url, method: req.method });
        if (!res.headersSent) sendText(res, 500, 'internal error\n');
        else res.destroy();
      });
  };
  const tls = options.tls;
  const server: Server = tls
    ? createHttpsServer(
        {
          cert: tls.cert,
          key: tls.key,
          ...(tls.clientCa
            ? // Unauthorized clients still complete the handshake so the handler can answer 401 and log why.
              { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false }
            : {}),
        },
        handle,
      )
    : createHttpServer(handle);
  // Slow-loris bound; Okta gives up after 3 s anyway, the apiserver retries.
  server.requestTimeout = 30_000;
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
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Reads a request body up to `maxBytes`; larger bodies reject with a 413-coded error. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      req.resume();
      reject(bodyTooLarge(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.removeAllListeners('data');
        req.resume();
        reject(bodyTooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

function bodyTooLarge(maxBytes: number): GlasswatchError {
  return new GlasswatchError('BG_INGEST_BODY_TOO_LARGE', `request body larger than ${maxBytes} bytes`, {
    stage: 'receiving',
    context: { status: 413 },
  });
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
 * Serves `GET /metrics` (Prometheus text) and `GET /healthz`; returns true when it answered, so a
 * receiver can mount it in front of its own routes, or run it alone with `startMetricsServer`.
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

/** A standalone `/metrics` + `/healthz` server (pollers have no HTTP server of their own). */
export function startMetricsServer(
  metrics: CollectorMetrics,
  options: { host?: string; port: number; logger?: Logger },
): Promise<RunningServer> {
  return startServer({
    ...options,
    handler: (req, res) => {
      if (!serveMetrics(metrics, req, res)) sendText(res, 404, 'not found\n');
    },
  });
}
