import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { verify } from '../../core/signing.js';
import type { TicketService } from './service.js';
import { JIRA_PRESET, mapTicket, parseTicketText, SERVICENOW_PRESET, type TicketMapping } from './sources.js';
import { TicketError, type TicketVersion } from './ticket.js';

export interface TicketReceiverOptions {
  /** HMAC-SHA256 secret for `X-Glasswatch-Timestamp` / `X-Glasswatch-Signature` (see core/signing.ts). */
  secret: string;
  /** Replay window for the signed timestamp. @default 300 */
  windowSeconds?: number;
  host?: string;
  port?: number;
  tls?: { cert: Buffer; key: Buffer };
  jira?: TicketMapping;
  servicenow?: TicketMapping;
  /** Largest accepted body. @default 1 MiB */
  maxBytes?: number;
}

/**
 * The tickets endpoint. Every request is authenticated before its body is parsed:
 *   POST /tickets             a ticket, an array of tickets, or JSON lines (glasswatch's own format)
 *   POST /tickets/jira        a Jira webhook payload, mapped by the configured field paths
 *   POST /tickets/servicenow  a ServiceNow payload, likewise
 * Signature: HMAC-SHA256 over `<timestamp>.<body>` with a replay window; Jira Cloud's own
 * `X-Hub-Signature: sha256=<HMAC(body)>` is accepted on /tickets/jira, where Jira cannot
 * send a timestamp (replays there only re-add a known version, which the ledger ignores).
 */
export class TicketReceiver {
  #server: Server | null = null;
  readonly stats = { accepted: 0, rejected: 0, unauthorized: 0 };

  constructor(
    readonly service: TicketService,
    readonly options: TicketReceiverOptions,
    readonly log: Logger,
  ) {}

  async listen(): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res);
    this.#server = this.options.tls
      ? createHttpsServer({ cert: this.options.tls.cert, key: this.options.tls.key }, handler)
      : createHttpServer(handler);
    await new Promise<void>((resolve) => this.#server!.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', resolve));
    const { port, address } = this.#server.address() as AddressInfo;
    return `${this.options.tls ? 'https' : 'http'}://${address}:${port}`;
  }

  async close(): Promise<void> {
    const s = this.#server;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const path = (req.url ?? '').split('?')[0];
    const route =
      path === '/tickets' ? 'glasswatch' : path === '/tickets/jira' ? 'jira' : path === '/tickets/servicenow' ? 'servicenow' : null;
    if (req.method !== 'POST' || !route) return reply(404, { error: 'POST /tickets, /tickets/jira or /tickets/servicenow' });
    let body: Buffer;
    try {
      body = await readBody(req, this.options.maxBytes ?? 1024 * 1024);
    } catch (err) {
      return reply(413, { error: errorMessage(err) });
    }
    if (!this.#authentic(route, req, body)) {
      this.stats.unauthorized++;
      this.log.warn('ticket request refused: bad or missing signature', { route, remote: req.socket.remoteAddress });
      return reply(401, { error: 'signature missing, stale or wrong' });
    }
    let versions: TicketVersion[];
    try {
      const where = `${route} request`;
      if (route === 'glasswatch') versions = parseTicketText(body.toString('utf8'), where, this.service.parseOptions);
      else {
        const mapping = route === 'jira' ? (this.options.jira ?? JIRA_PRESET) : (this.options.servicenow ?? SERVICENOW_PRESET);
        versions = [mapTicket(JSON.parse(body.toString('utf8')), mapping, where, this.service.parseOptions)];
      }
    } catch (err) {
      this.stats.rejected++;
      return reply(400, { error: err instanceof TicketError ? err.message : `not valid JSON: ${errorMessage(err)}` });
    }
    try {
      const added = await this.service.accept(versions, route);
      this.stats.accepted += versions.length;
      return reply(202, { received: versions.length, added });
    } catch (err) {
      this.log.error('tickets could not be stored', { route, error: errorMessage(err) });
      return reply(503, { error: 'tickets could not be stored; retry' });
    }
  }

  #authentic(route: string, req: IncomingMessage, body: Buffer): boolean {
    if (verify(this.options.secret, req.headers, body, this.options.windowSeconds ?? 300).ok) return true;
    const hub = req.headers['x-hub-signature'];
    if (route === 'jira' && typeof hub === 'string') {
      const expected = Buffer.from(`sha256=${createHmac('sha256', this.options.secret).update(body).digest('hex')}`);
      const given = Buffer.from(hub);
      return expected.length === given.length && timingSafeEqual(expected, given);
    }
    return false;
  }
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new Error(`body larger than ${max} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
