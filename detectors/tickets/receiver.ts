import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verify } from '../../core/signing.js';
import { bodyErrorStatus, type RunningServer, readBody, type ServerLimits, startServer } from '../../ingest/collector/http.js';
import type { TicketService } from './service.js';
import { JIRA_PRESET, mapTicket, parseTicketText, SERVICENOW_PRESET, type TicketMapping } from './sources.js';
import { TicketError, type TicketVersion } from './ticket.js';

export interface TicketReceiverOptions {
  /** HMAC-SHA256 secret for `X-Glasswatch-Timestamp` / `X-Glasswatch-Signature` (see core/signing.ts). */
  secret: string;
  /**
   * Jira's own webhook secret (`X-Hub-Signature: sha256=<HMAC(body)>` on /tickets/jira), distinct from
   * `secret`: a leak of one does not forge the other. Without it, /tickets/jira takes only the
   * glasswatch signature.
   */
  jiraSecret?: string | null;
  /** Replay window for the signed timestamp. @default 300 */
  windowSeconds?: number;
  /** Age a Jira delivery's payload `timestamp` may have (Jira retries for a while). @default 3600 */
  jiraWindowSeconds?: number;
  /** Jira deliveries remembered for deduplication (each for `jiraWindowSeconds`). @default 10000 */
  jiraDedupeEntries?: number;
  host?: string;
  port?: number;
  tls?: { cert: Buffer; key: Buffer };
  jira?: TicketMapping;
  servicenow?: TicketMapping;
  /** Largest accepted body, checked before any HMAC is computed. @default 1 MiB */
  maxBytes?: number;
  /** Timeouts and connection caps; unset ones keep `DEFAULT_SERVER_LIMITS`. */
  limits?: Partial<ServerLimits>;
}

type Route = 'glasswatch' | 'jira' | 'servicenow';
type Scheme = 'glasswatch' | 'jira-hub';

const GLASSWATCH_SIGNATURE = /^v1=[0-9a-f]{64}$/;
const HUB_SIGNATURE = /^sha256=[0-9a-f]{64}$/;
const TIMESTAMP = /^\d{1,12}$/;

/**
 * Jira deliveries already applied, by `X-Atlassian-Webhook-Identifier` (unchanged across Jira's
 * retries) and by the digest of the signed body (the identifier is not signed, so a replay could
 * change it). Entries live as long as a delivery may be accepted (`jiraWindowSeconds`): an older
 * replay is refused by its payload timestamp instead. Bounded: when full of live entries, new
 * deliveries are refused with 503 (Jira retries) rather than forgetting one that could be replayed.
 */
class DeliveryDedupe {
  readonly #seen = new Map<string, number>();
  constructor(
    readonly capacity: number,
    readonly ttlMs: number,
  ) {}

  has(keys: string[], now = Date.now()): boolean {
    return keys.some((k) => (this.#seen.get(k) ?? 0) > now);
  }

  /** False when full of entries that have not expired. */
  roomFor(n: number, now = Date.now()): boolean {
    for (const [k, expires] of this.#seen) {
      if (this.#seen.size + n <= this.capacity) break;
      if (expires > now) return false;
      this.#seen.delete(k);
    }
    return this.#seen.size + n <= this.capacity;
  }

  add(keys: string[], now = Date.now()): void {
    // Re-inserted at the end, so the map stays ordered by expiry.
    for (const k of keys) {
      this.#seen.delete(k);
      this.#seen.set(k, now + this.ttlMs);
    }
  }

  get size(): number {
    return this.#seen.size;
  }
}

/**
 * The tickets endpoint. Every request is authenticated before its body is parsed:
 *   POST /tickets             a ticket, an array of tickets, or JSON lines (glasswatch's own format)
 *   POST /tickets/jira        a Jira webhook payload, mapped by the configured field paths
 *   POST /tickets/servicenow  a ServiceNow payload, likewise
 * Signature: HMAC-SHA256 over `<timestamp>.<body>` with a replay window; Jira Cloud's own
 * `X-Hub-Signature: sha256=<HMAC(body)>` with the separate Jira secret on /tickets/jira, where
 * Jira cannot sign a timestamp: there the signed payload `timestamp` must be within
 * `jiraWindowSeconds`, and a delivery seen before (same identifier or same body) is answered 200
 * without being applied again.
 *
 * Hostile clients: the signature headers are checked (present, well-formed, timestamp in the
 * window) before a byte of the body is read, and a failing request is answered 401 and its
 * connection closed; the body is capped (`maxBytes`, Content-Length first) before any HMAC; the
 * shared server limits (ingest/collector/http.ts) bound slow and flooding clients.
 */
export class TicketReceiver {
  #server: RunningServer | null = null;
  readonly #jiraSeen: DeliveryDedupe;
  readonly stats = { accepted: 0, rejected: 0, unauthorized: 0, duplicates: 0 };

  constructor(
    readonly service: TicketService,
    readonly options: TicketReceiverOptions,
    readonly log: Logger,
  ) {
    this.#jiraSeen = new DeliveryDedupe(options.jiraDedupeEntries ?? 10_000, (options.jiraWindowSeconds ?? 3600) * 1000);
  }

  async listen(): Promise<string> {
    this.#server = await startServer({
      host: this.options.host ?? '127.0.0.1',
      port: this.options.port ?? 0,
      ...(this.options.tls ? { tls: this.options.tls } : {}),
      handler: (req, res) => this.#handle(req, res),
      logger: this.log,
      ...(this.options.limits ? { limits: this.options.limits } : {}),
    });
    return this.#server.url;
  }

  /** The running server (tests: limits, refused connections). */
  get server(): RunningServer | null {
    return this.#server;
  }

  async close(): Promise<void> {
    await this.#server?.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown, close = false) => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(text)),
        // An unread body is never read: the connection is closed after the answer.
        ...(close ? { connection: 'close' } : {}),
      });
      res.end(text);
    };
    const path = (req.url ?? '').split('?')[0];
    const route: Route | null =
      path === '/tickets' ? 'glasswatch' : path === '/tickets/jira' ? 'jira' : path === '/tickets/servicenow' ? 'servicenow' : null;
    if (req.method !== 'POST' || !route) return reply(404, { error: 'POST /tickets, /tickets/jira or /tickets/servicenow' }, true);
    const scheme = this.#scheme(route, req);
    if (typeof scheme !== 'string') return this.#unauthorized(route, req, reply, scheme.why);
    const max = this.options.maxBytes ?? 1024 * 1024;
    let body: Buffer;
    try {
      body = await readBody(req, max, this.#server ? { idleTimeoutMs: this.#server.limits.bodyIdleTimeoutMs } : {});
    } catch (err) {
      return reply(bodyErrorStatus(err), { error: errorMessage(err) }, true);
    }
    if (!this.#authentic(scheme, req, body)) return this.#unauthorized(route, req, reply, 'signature does not match the body');
    let doc: unknown = null;
    let versions: TicketVersion[];
    try {
      const where = `${route} request`;
      if (route === 'glasswatch') versions = parseTicketText(body.toString('utf8'), where, this.service.parseOptions);
      else {
        doc = JSON.parse(body.toString('utf8'));
        const mapping = route === 'jira' ? (this.options.jira ?? JIRA_PRESET) : (this.options.servicenow ?? SERVICENOW_PRESET);
        versions = [mapTicket(doc, mapping, where, this.service.parseOptions)];
      }
    } catch (err) {
      this.stats.rejected++;
      return reply(400, { error: err instanceof TicketError ? err.message : `not valid JSON: ${errorMessage(err)}` });
    }
    let deliveryKeys: string[] = [];
    if (route === 'jira') {
      if (scheme === 'jira-hub') {
        // Jira signs no timestamp header: the payload's own (signed) timestamp bounds replays.
        const stale = this.#jiraStale(doc);
        if (stale) return this.#unauthorized(route, req, reply, stale);
      }
      deliveryKeys = jiraDeliveryKeys(req, body);
      if (this.#jiraSeen.has(deliveryKeys)) {
        this.stats.duplicates++;
        this.log.info('jira delivery already applied; not applied again', { delivery: deliveryKeys[0] });
        return reply(200, { received: versions.length, added: 0, duplicate: true });
      }
      if (!this.#jiraSeen.roomFor(deliveryKeys.length)) {
        this.log.warn('jira delivery dedupe memory full; answering 503 so Jira retries', { entries: this.#jiraSeen.size });
        return reply(503, { error: 'too many recent deliveries; retry' });
      }
    }
    try {
      const added = await this.service.accept(versions, route);
      this.stats.accepted += versions.length;
      // Remembered only once applied: a delivery that failed must be taken when Jira retries it.
      if (deliveryKeys.length > 0) this.#jiraSeen.add(deliveryKeys);
      return reply(202, { received: versions.length, added });
    } catch (err) {
      this.log.error('tickets could not be stored', { route, error: errorMessage(err) });
      return reply(503, { error: 'tickets could not be stored; retry' });
    }
  }

  #unauthorized(route: Route, req: IncomingMessage, reply: (s: number, b: unknown, close?: boolean) => void, why: string): void {
    this.stats.unauthorized++;
    this.log.warn('ticket request refused', { route, reason: why, remote: req.socket.remoteAddress });
    reply(401, { error: 'signature missing, stale or wrong' }, true);
  }

  /** Which signature the headers offer, judged from the headers alone (no body read yet). */
  #scheme(route: Route, req: IncomingMessage): Scheme | { why: string } {
    const ts = req.headers[TIMESTAMP_HEADER];
    const sig = req.headers[SIGNATURE_HEADER];
    if (ts !== undefined || sig !== undefined) {
      if (typeof ts !== 'string' || !TIMESTAMP.test(ts)) return { why: 'malformed or missing timestamp header' };
      if (typeof sig !== 'string' || !GLASSWATCH_SIGNATURE.test(sig)) return { why: 'malformed or missing signature header' };
      if (Math.abs(Date.now() / 1000 - Number(ts)) > (this.options.windowSeconds ?? 300)) return { why: 'stale timestamp' };
      return 'glasswatch';
    }
    const hub = req.headers['x-hub-signature'];
    if (route === 'jira' && hub !== undefined) {
      if (!this.options.jiraSecret) return { why: 'X-Hub-Signature given but no Jira secret is configured' };
      if (typeof hub !== 'string' || !HUB_SIGNATURE.test(hub)) return { why: 'malformed X-Hub-Signature' };
      return 'jira-hub';
    }
    return { why: 'no signature headers' };
  }

  #authentic(scheme: Scheme, req: IncomingMessage, body: Buffer): boolean {
    if (scheme === 'glasswatch') return verify(this.options.secret, req.headers, body, this.options.windowSeconds ?? 300).ok;
    const secret = this.options.jiraSecret;
    const hub = req.headers['x-hub-signature'];
    if (!secret || typeof hub !== 'string') return false;
    const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
    const given = Buffer.from(hub);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  /** Why a Jira payload is too old (or has no usable timestamp) to accept; null when fresh. */
  #jiraStale(doc: unknown): string | null {
    const t = doc !== null && typeof doc === 'object' ? (doc as { timestamp?: unknown }).timestamp : undefined;
    if (typeof t !== 'number' || !Number.isFinite(t)) return 'Jira payload has no numeric timestamp to bound replays';
    const windowMs = (this.options.jiraWindowSeconds ?? 3600) * 1000;
    if (Math.abs(Date.now() - t) > windowMs) return 'Jira payload timestamp outside the accepted window (replay?)';
    return null;
  }
}

/** The identifier Jira sends (same across its retries) and the digest of the signed body. */
function jiraDeliveryKeys(req: IncomingMessage, body: Buffer): string[] {
  const keys = [`body:${createHash('sha256').update(body).digest('hex')}`];
  const id = req.headers['x-atlassian-webhook-identifier'];
  if (typeof id === 'string' && id !== '' && id.length <= 200) keys.push(`id:${id}`);
  return keys;
}
