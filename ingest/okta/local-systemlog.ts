/**
 * A local stand-in for the Okta System Log polling API, implementing the documented contract
 * (docs: System Log API, rate limits): `GET /api/v1/logs` with `since` or the opaque `after`
 * cursor, `limit`, `sortOrder=ASCENDING`; `Link: <…>; rel="self"` always and `rel="next"`
 * always (also on empty pages); `X-Rate-Limit-Limit/Remaining/Reset` with a per-window budget
 * and 429 `E0000047` beyond it. Tests, the benchmark and demos poll it instead of an org.
 * Failures can be injected (`failNext`) to exercise 429/5xx handling.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type RunningServer, sendJson, startServer } from '../collector/http.js';

export interface LocalSystemLogOptions {
  /** Exact `Authorization` header value required. */
  authorization: string;
  /** Requests per window. @default 1000 */
  rateLimit?: number;
  /** @default 60000 */
  windowMs?: number;
  /** Refuse a `since` older than this many days with 400 E0000001, as Okta does past 180. @default no check */
  maxSinceAgeDays?: number;
}

export interface InjectedFailure {
  status: 429 | 500 | 503;
  /** For 429: `X-Rate-Limit-Reset` this many seconds ahead (rounded up to a whole second, as Okta's epoch seconds are). */
  resetInSeconds?: number;
  /** For 429: send `Retry-After` seconds too. */
  retryAfterSeconds?: number;
}

export interface LoggedRequest {
  at: number;
  url: string;
  status: number;
  events: number;
  /** `X-Rate-Limit-Reset` sent, epoch ms. */
  resetMs: number;
}

export class LocalSystemLog {
  /** LogEvents in persistence order; the `after` cursor is an index into it. */
  readonly events: Record<string, unknown>[] = [];
  readonly requests: LoggedRequest[] = [];
  readonly #o: Required<LocalSystemLogOptions>;
  readonly #failures: InjectedFailure[] = [];
  #windowStart = Date.now();
  #used = 0;
  #server: RunningServer | null = null;

  constructor(options: LocalSystemLogOptions) {
    this.#o = { rateLimit: 1000, windowMs: 60_000, maxSinceAgeDays: Number.POSITIVE_INFINITY, ...options };
  }

  get url(): string {
    if (!this.#server) throw new Error('LocalSystemLog not started');
    return this.#server.url;
  }

  async start(): Promise<this> {
    this.#server = await startServer({ port: 0, handler: (req, res) => this.#handle(req, res) });
    return this;
  }

  async close(): Promise<void> {
    await this.#server?.close();
    this.#server = null;
  }

  add(events: Record<string, unknown>[]): void {
    this.events.push(...events);
  }

  failNext(...failures: InjectedFailure[]): void {
    this.#failures.push(...failures);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    const now = Date.now();
    if (now - this.#windowStart >= this.#o.windowMs) {
      this.#windowStart = now;
      this.#used = 0;
    }
    let resetMs = Math.ceil((this.#windowStart + this.#o.windowMs) / 1000) * 1000;
    const log = (status: number, events = 0) => this.requests.push({ at: now, url: url.pathname + url.search, status, events, resetMs });
    if (url.pathname !== '/api/v1/logs' || req.method !== 'GET') {
      log(404);
      sendJson(res, 404, { errorCode: 'E0000022', errorSummary: 'The endpoint does not support the provided HTTP method' });
      return;
    }
    if (req.headers.authorization !== this.#o.authorization) {
      log(401);
      sendJson(res, 401, { errorCode: 'E0000011', errorSummary: 'Invalid token provided' });
      return;
    }
    const failure = this.#failures.shift();
    if (failure?.status === 429 && failure.resetInSeconds !== undefined)
      resetMs = Math.ceil((now + failure.resetInSeconds * 1000) / 1000) * 1000;
    const limitHeaders = (remaining: number) => ({
      'x-rate-limit-limit': String(this.#o.rateLimit),
      'x-rate-limit-remaining': String(Math.max(0, remaining)),
      'x-rate-limit-reset': String(resetMs / 1000),
    });
    if (failure) {
      log(failure.status);
      const extra: Record<string, string> =
        failure.retryAfterSeconds !== undefined ? { 'retry-after': String(failure.retryAfterSeconds) } : {};
      if (failure.status === 429) {
        sendJson(
          res,
          429,
          { errorCode: 'E0000047', errorSummary: 'API call exceeded rate limit due to too many requests.' },
          { ...limitHeaders(0), ...extra },
        );
        return;
      }
      sendJson(
        res,
        failure.status,
        { errorCode: 'E0000009', errorSummary: 'Internal Server Error' },
        limitHeaders(this.#o.rateLimit - this.#used),
      );
      return;
    }
    if (this.#used >= this.#o.rateLimit) {
      log(429);
      sendJson(
        res,
        429,
        { errorCode: 'E0000047', errorSummary: 'API call exceeded rate limit due to too many requests.' },
        limitHeaders(0),
      );
      return;
    }
    this.#used++;

    const after = url.searchParams.get('after');
    const since = url.searchParams.get('since');
    if (after !== null && since !== null) {
      log(400);
      sendJson(res, 400, { errorCode: 'E0000001', errorSummary: 'Api validation failed: since and after are mutually exclusive' });
      return;
    }
    const limit = Math.min(1000, Math.max(0, Number(url.searchParams.get('limit') ?? 100)));
    let start = 0;
    if (after !== null) start = Number(Buffer.from(after, 'base64url').toString('utf8').replace(/^c/, ''));
    else if (since !== null) {
      const t = Date.parse(since);
      if (this.#o.maxSinceAgeDays !== undefined && t < now - this.#o.maxSinceAgeDays * 86_400_000) {
        log(400);
        sendJson(res, 400, {
          errorCode: 'E0000001',
          errorSummary: 'Api validation failed: since',
          errorCauses: [{ errorSummary: `since: must be within the last ${this.#o.maxSinceAgeDays} days` }],
        });
        return;
      }
      start = this.events.findIndex((e) => Date.parse(String(e.published)) >= t);
      if (start === -1) start = this.events.length;
    }
    const page = this.events.slice(start, start + limit);
    const cursor = Buffer.from(`c${start + page.length}`).toString('base64url');
    const next = new URL('/api/v1/logs', this.url);
    next.searchParams.set('after', cursor);
    next.searchParams.set('limit', String(limit));
    next.searchParams.set('sortOrder', 'ASCENDING');
    log(200, page.length);
    // Two `Link` header lines, as Okta sends them.
    res.setHeader('link', [`<${url.toString()}>; rel="self"`, `<${next.toString()}>; rel="next"`]);
    sendJson(res, 200, page, { ...limitHeaders(this.#o.rateLimit - this.#used), date: new Date(now).toUTCString() });
  }
}

/** A synthetic LogEvent; `n` makes uuid and actor deterministic. */
export function syntheticOktaEvent(n: number, publishedMs: number, actors = 20): Record<string, unknown> {
  const actor = n % actors;
  return {
    uuid: `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
    published: new Date(publishedMs).toISOString(),
    eventType: n % 7 === 0 ? 'user.session.start' : 'user.authentication.sso',
    version: '0',
    severity: 'INFO',
    displayMessage: 'synthetic',
    actor: { id: `00u${actor}`, type: 'User', alternateId: `user${actor}@example.com`, displayName: `User ${actor}` },
    client: { ipAddress: '198.51.100.7', userAgent: { rawUserAgent: 'glasswatch-test' } },
    outcome: { result: 'SUCCESS', reason: null },
    authenticationContext: { externalSessionId: `sess-${actor}` },
    target: [{ id: '0oa1', type: 'AppInstance', alternateId: 'app', displayName: 'App' }],
    transaction: { type: 'WEB', id: `tx-${n}` },
    debugContext: { debugData: { seq: n } },
  };
}
