/**
 * The Okta System Log polling contract (`GET /api/v1/logs`), kept apart from the loop so the
 * loop reads as policy: URLs, `Link` parsing, rate-limit headers and the wait they ask for.
 *
 * Polling request = `sortOrder=ASCENDING`, no `until`: every event, by persistence time, and an
 * endless chain of `rel="next"` links (present even on an empty page). The `next` URL carries an
 * opaque `after` cursor that only Okta may craft, so it is the checkpoint.
 */
import { GlasswatchError } from '../../core/errors.js';
import { type HttpResponse, request } from '../../core/http.js';

export interface RateLimit {
  limit: number | null;
  remaining: number | null;
  /** Epoch ms when the window resets. */
  resetMs: number | null;
}

export interface SystemLogPage {
  status: number;
  /** Parsed body of a 200 (an array of LogEvents); null otherwise. */
  events: unknown[] | null;
  next: string | null;
  rateLimit: RateLimit;
  /** Server time from the `Date` header (epoch ms), to read `X-Rate-Limit-Reset` against Okta's clock. */
  serverNowMs: number | null;
  retryAfterMs: number | null;
  /** Error summary of a non-200 (Okta errorCode/errorSummary), never the request headers. */
  error: string | null;
}

export function firstPageUrl(orgUrl: string, since: string, limit: number): string {
  const url = new URL('/api/v1/logs', orgUrl);
  url.searchParams.set('since', since);
  url.searchParams.set('sortOrder', 'ASCENDING');
  url.searchParams.set('limit', String(limit));
  return url.toString();
}

/** `Link: <u1>; rel="self", <u2>; rel="next"` → { self: u1, next: u2 }. Several header lines are joined by node. */
export function parseLinks(header: string | string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  for (const m of text.matchAll(/<([^>]*)>\s*;\s*rel="?([^";,\s]+)"?/g)) if (m[1] !== undefined && m[2] !== undefined) out[m[2]] = m[1];
  return out;
}

function headerNumber(h: string | string[] | undefined): number | null {
  const v = Array.isArray(h) ? h[0] : h;
  if (v === undefined || v.trim() === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** `Retry-After` as seconds or an HTTP date. */
function retryAfterMs(h: string | string[] | undefined, nowMs: number): number | null {
  const v = Array.isArray(h) ? h[0] : h;
  if (v === undefined) return null;
  if (/^\d+$/.test(v.trim())) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.max(0, t - nowMs);
}

export function readPage(res: HttpResponse, nowMs = Date.now()): SystemLogPage {
  const reset = headerNumber(res.headers['x-rate-limit-reset']);
  const date = typeof res.headers.date === 'string' ? Date.parse(res.headers.date) : Number.NaN;
  const page: SystemLogPage = {
    status: res.status,
    events: null,
    next: parseLinks(res.headers.link).next ?? null,
    rateLimit: {
      limit: headerNumber(res.headers['x-rate-limit-limit']),
      remaining: headerNumber(res.headers['x-rate-limit-remaining']),
      resetMs: reset === null ? null : reset * 1000,
    },
    serverNowMs: Number.isNaN(date) ? null : date,
    retryAfterMs: retryAfterMs(res.headers['retry-after'], nowMs),
    error: null,
  };
  if (res.status === 200) {
    let body: unknown;
    try {
      body = JSON.parse(res.text);
    } catch (err) {
      page.status = 502;
      page.error = `response is not JSON: ${(err as Error).message}`;
      return page;
    }
    if (!Array.isArray(body)) {
      page.status = 502;
      page.error = `expected a JSON array of LogEvents, got ${typeof body}`;
      return page;
    }
    page.events = body;
  } else {
    try {
      const e = JSON.parse(res.text) as { errorCode?: unknown; errorSummary?: unknown };
      page.error = `${String(e.errorCode ?? '')} ${String(e.errorSummary ?? '')}`.trim() || `HTTP ${res.status}`;
    } catch {
      page.error = `HTTP ${res.status}`;
    }
  }
  return page;
}

/**
 * How long to wait before the next request so the per-minute budget is not exhausted:
 * at or below `reserve` remaining → until the reset; in the last quarter of the budget → spread
 * the remaining requests over the time to reset; otherwise 0.
 */
export function rateLimitDelayMs(rl: RateLimit, reserve: number, serverNowMs: number | null, nowMs = Date.now()): number {
  if (rl.remaining === null || rl.resetMs === null) return 0;
  const untilReset = Math.max(0, rl.resetMs - (serverNowMs ?? nowMs));
  if (rl.remaining <= reserve) return untilReset;
  if (rl.limit !== null && rl.remaining < rl.limit / 4) return Math.round(untilReset / (rl.remaining - reserve + 1));
  return 0;
}

export interface FetchOptions {
  authorization: string;
  timeoutMs: number;
  /** The org origin: a `next` link elsewhere is refused, so the token is never sent to another host. */
  orgOrigin: string;
}

export async function fetchPage(url: string, o: FetchOptions): Promise<SystemLogPage> {
  if (new URL(url).origin !== o.orgOrigin) {
    throw new GlasswatchError('BG_INGEST_OKTA_FOREIGN_LINK', `refusing to follow a System Log link outside ${o.orgOrigin}`, {
      stage: 'receiving',
      context: { origin: new URL(url).origin },
    });
  }
  const res = await request({
    method: 'GET',
    url,
    headers: { authorization: o.authorization, accept: 'application/json', 'user-agent': 'glasswatch-okta-collector' },
    timeoutMs: o.timeoutMs,
  });
  return readPage(res);
}
