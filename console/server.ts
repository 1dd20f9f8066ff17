import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import fastifyCookie from '@fastify/cookie';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { GlasswatchError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { packageRoot } from '../core/paths.js';
import type { Store } from '../core/store/client.js';
import type { ConfirmSettings } from '../detectors/confirm/config.js';
import { registerApi } from './api.js';
import { type ConsoleAuth, LOGIN_COOKIE, type Principal, SESSION_COOKIE, sameSecret } from './auth.js';
import type { ConsoleOptions } from './config.js';
import { CONFIRM_PREFIX, registerConfirm } from './confirm.js';
import type { LiveFeed, SseHub } from './live.js';
import { registerPages } from './pages.js';
import { html, page } from './views/html.js';
import { loginView } from './views/pages.js';

export interface ConsoleContext {
  store: Store;
  feed: LiveFeed;
  hub: SseHub;
  auth: ConsoleAuth;
  log: Logger;
  secure: boolean;
  /** `revocation.confirm`: answers to "was this you?" links (null: not configured). */
  confirm?: ConfirmSettings | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** No inline script or style, nothing from another origin, no framing, forms only to this console. */
export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const PUBLIC = new Set(['/login', '/favicon.ico']);

export async function buildConsoleServer(ctx: ConsoleContext, options: ConsoleOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
  }) as unknown as FastifyInstance;
  app.decorateRequest('principal', null);
  await app.register(fastifyCookie);
  await app.register(fastifyRateLimit, { global: false });
  await app.register(fastifyStatic, {
    root: join(packageRoot(), 'console', 'static'),
    prefix: '/static/',
    cacheControl: true,
    maxAge: 60_000,
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });

  app.addHook('onRequest', async (req, reply) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
    reply.header('cache-control', 'no-store');
    const path = req.url.split('?')[0] ?? '';
    // Bearer first (scripts, SOAR); a browser has its login cookie.
    req.principal = ctx.auth.fromAuthorization(req.headers.authorization) ?? ctx.auth.fromSession(req.cookies?.[SESSION_COOKIE]);
    // A confirmation link is its own credential, for its one page only (console/confirm.ts).
    if (PUBLIC.has(path) || path.startsWith('/static/') || path.startsWith(CONFIRM_PREFIX)) return;
    if (!req.principal) return refuse(reply, path, 401, 'authentication required');
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.principal.csrf !== null) {
      // A browser login changing state must prove it comes from a console page: its CSRF token in a
      // header (console.js) or a form field, and (when the browser says) this origin.
      const origin = req.headers.origin;
      if (origin && origin !== `${ctx.secure ? 'https' : 'http'}://${req.headers.host}`)
        return refuse(reply, path, 403, 'cross-origin request refused');
    }
  });
  app.addHook('preHandler', async (req, reply) => {
    const p = req.principal;
    if (!p || p.csrf === null || req.method === 'GET' || req.method === 'HEAD' || req.url.startsWith(CONFIRM_PREFIX)) return;
    const sent = (req.headers['x-csrf-token'] as string | undefined) ?? (req.body as Record<string, unknown> | undefined)?._csrf;
    if (!sameSecret(typeof sent === 'string' ? sent : undefined, p.csrf)) return refuse(reply, req.url, 403, 'CSRF token missing or wrong');
  });
  app.setErrorHandler((err, req, reply) => {
    const status =
      err instanceof GlasswatchError
        ? err.code === 'BG_CONSOLE_NO_ALERT' || err.code === 'BG_CONSOLE_NOT_FOUND'
          ? 404
          : 400
        : ((err as { statusCode?: number }).statusCode ?? 500);
    if (status >= 500) ctx.log.error('console request failed', { path: req.url.split('?')[0], error: (err as Error).message });
    const message = status >= 500 ? 'internal error (see the glasswatch log)' : (err as Error).message;
    return refuse(reply, req.url, status, message, err instanceof GlasswatchError ? err.hint : undefined);
  });
  app.setNotFoundHandler((req, reply) => refuse(reply, req.url, 404, 'not found'));

  app.get('/login', async (_req, reply) => {
    const csrf = randomBytes(24).toString('base64url');
    reply.setCookie(LOGIN_COOKIE, csrf, { httpOnly: true, sameSite: 'strict', secure: ctx.secure, path: '/login', maxAge: 3600 });
    return reply
      .type('text/html; charset=utf-8')
      .send(page({ title: 'log in', view: 'login', csrf: null, user: null, body: loginView(csrf, null) }));
  });
  app.post('/login', { config: { rateLimit: { max: 20, timeWindow: 60_000 } } }, async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!sameSecret(typeof body._csrf === 'string' ? body._csrf : undefined, req.cookies[LOGIN_COOKIE]))
      return refuse(reply, '/login', 403, 'CSRF token missing or wrong: reload the login page');
    const session = typeof body.token === 'string' && body.token.length <= 512 ? ctx.auth.login(body.token) : null;
    if (!session) {
      const csrf = req.cookies[LOGIN_COOKIE] ?? '';
      return reply
        .code(401)
        .type('text/html; charset=utf-8')
        .send(page({ title: 'log in', view: 'login', csrf: null, user: null, body: loginView(csrf, 'That token is not valid.') }));
    }
    reply.clearCookie(LOGIN_COOKIE, { path: '/login' });
    reply.setCookie(SESSION_COOKIE, session.sessionId, {
      httpOnly: true,
      sameSite: 'strict',
      secure: ctx.secure,
      path: '/',
      maxAge: Math.floor(ctx.auth.sessionMs / 1000),
    });
    return reply.redirect('/', 303);
  });
  app.post('/logout', async (req, reply) => {
    ctx.auth.logout(req.cookies[SESSION_COOKIE]);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.redirect('/login', 303);
  });
  registerPages(app, ctx);
  registerConfirm(app, { store: ctx.store, log: ctx.log, secure: ctx.secure, confirm: ctx.confirm ?? null });
  registerApi(app, ctx);
  return app;
}

/** A refusal: JSON for the API, the login page (401) or a short page otherwise. */
export function refuse(reply: FastifyReply, url: string, status: number, message: string, hint?: string): FastifyReply {
  if (url.startsWith('/api/'))
    return reply
      .code(status)
      .type('application/json')
      .send({ error: message, ...(hint ? { hint } : {}) });
  if (status === 401) {
    return reply
      .code(401)
      .type('text/html; charset=utf-8')
      .send(page({ title: 'log in', view: 'login', csrf: null, user: null, body: loginRedirect() }));
  }
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .send(page({ title: String(status), view: 'error', csrf: null, user: null, body: errorBody(status, message) }));
}

function loginRedirect() {
  return html`<h1>Log in first</h1><p>This console needs a login. <a href="/login">Log in</a> with your console token.</p>`;
}

function errorBody(status: number, message: string) {
  return html`<h1>${status}</h1><p class="problem">${message}</p><p><a href="/">back to the console</a></p>`;
}
