import type { FastifyInstance } from 'fastify';
import { GlasswatchError } from '../core/errors.js';
import { countOpenSessions, listAlerts, listSessions, listTickets, recentTicketChanges, sessionDetail, storedHealth } from './queries.js';
import { type ConsoleContext, SECURITY_HEADERS } from './server.js';
import { parseTriage, recordTriage, TRIAGE_STATES, type TriageState } from './triage.js';

const ZONED = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;

export function badRequest(message: string, hint: string): GlasswatchError {
  return new GlasswatchError('BG_CONSOLE_REQUEST', message, { stage: 'receiving', hint });
}

/** An ISO time with a zone (a zone-less time would mean another instant on every host), or null when absent. */
export function instantParam(q: Record<string, unknown>, key: string): number | null {
  const v = q[key];
  if (v === undefined || v === '') return null;
  if (typeof v !== 'string' || !ZONED.test(v) || Number.isNaN(Date.parse(v)))
    throw badRequest(`${key} must be an ISO 8601 time with a zone, e.g. 2026-11-20T22:00:00Z`, `give ${key}=2026-11-20T22:00:00Z`);
  return Date.parse(v);
}

export function textParam(q: Record<string, unknown>, key: string): string | null {
  const v = q[key];
  if (v === undefined || v === '') return null;
  if (typeof v !== 'string' || v.length > 200) throw badRequest(`${key} must be one value of at most 200 characters`, `give ${key} once`);
  return v;
}

export function limitParam(q: Record<string, unknown>, fallback: number): number {
  const v = q.limit;
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw badRequest('limit must be a whole number in 1..10000', 'e.g. limit=500');
  return n;
}

export function triageParam(q: Record<string, unknown>): TriageState | null {
  const v = textParam(q, 'triage');
  if (v === null) return null;
  if (!(TRIAGE_STATES as readonly string[]).includes(v))
    throw badRequest(`triage must be one of ${TRIAGE_STATES.join(', ')}`, 'e.g. triage=open');
  return v as TriageState;
}

/**
 * The JSON API for SOAR and scripts (`Authorization: Bearer <token>`): the same data as the pages,
 * as objects whose items carry the store's column names.
 */
export function registerApi(app: FastifyInstance, ctx: ConsoleContext): void {
  const { store, feed } = ctx;
  app.get('/api/sessions', async (req) => {
    const q = req.query as Record<string, unknown>;
    const state = textParam(q, 'state') ?? 'open';
    if (state !== 'open' && state !== 'all') throw badRequest('state must be open or all', 'e.g. state=open');
    const sessions = await listSessions(store, { activeSinceMs: state === 'open' ? feed.openSinceMs() : null, limit: limitParam(q, 500) });
    return { sessions };
  });
  app.get('/api/sessions/:id', async (req) => {
    const id = (req.params as { id: string }).id;
    const detail = await sessionDetail(store, id);
    if (!detail)
      throw new GlasswatchError('BG_CONSOLE_NOT_FOUND', `no session ${id}`, {
        stage: 'receiving',
        hint: 'list sessions with GET /api/sessions?state=all',
      });
    return detail;
  });
  app.get('/api/alerts', async (req) => {
    const q = req.query as Record<string, unknown>;
    const alerts = await listAlerts(store, {
      sinceMs: instantParam(q, 'since'),
      untilMs: instantParam(q, 'until'),
      type: textParam(q, 'type'),
      severity: textParam(q, 'severity'),
      identity: textParam(q, 'identity'),
      triage: triageParam(q),
      limit: limitParam(q, 500),
    });
    return { alerts };
  });
  app.get('/api/tickets', async (req) => {
    const q = req.query as Record<string, unknown>;
    const status = textParam(q, 'status') ?? 'all';
    if (status !== 'requested' && status !== 'approved' && status !== 'all')
      throw badRequest('status must be requested, approved or all', 'e.g. status=requested');
    return { tickets: await listTickets(store, status, feed.clockMs(), limitParam(q, 500)) };
  });
  app.post('/api/alerts/:id/triage', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const action = parseTriage(id, req.body, req.principal?.name ?? 'unknown');
    const row = await recordTriage(store, action);
    ctx.hub.publish({ kind: 'triage', alert_id: id, state: action.state, actor: action.actor });
    return reply.code(201).send({ triage: row });
  });
  app.get('/api/health', async () => {
    const [stored, open] = await Promise.all([storedHealth(store), countOpenSessions(store, feed.openSinceMs())]);
    return { health: { live: feed.health(), stored: stored.sources, open_sessions: open, clock: new Date(feed.clockMs()).toISOString() } };
  });
  app.get('/api/tickets/changes', async (req) => ({
    tickets: await recentTicketChanges(store, limitParam(req.query as Record<string, unknown>, 50)),
  }));
  app.get('/api/stream', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    if (!ctx.hub.add(res)) {
      res.end('event: full\ndata: {"error":"too many live clients"}\n\n');
      return;
    }
    // The first message says the stream is live; `retry` makes a browser reconnect within 2 s.
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ user: req.principal?.name ?? null })}\n\n`);
  });
}
