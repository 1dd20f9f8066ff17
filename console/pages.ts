import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GlasswatchError } from '../core/errors.js';
import { instantParam, limitParam, textParam, triageParam } from './api.js';
import { countOpenSessions, listAlerts, listSessions, listTickets, recentTicketChanges, sessionDetail, storedHealth } from './queries.js';
import type { ConsoleContext } from './server.js';
import { parseTriage, recordTriage } from './triage.js';
import { type Html, page } from './views/html.js';
import { alertsView, healthView, nowView, requestsView, sessionView } from './views/pages.js';

/** Request and approval alerts (raised by detectors/tickets) shown on the Requests view. */
const REQUEST_ALERT_TYPES = ['breakglass.requested', 'breakglass.approved', 'breakglass.approval_overdue'];

/**
 * The server-rendered views. console.js asks for the same URL with `x-glasswatch-fragment: 1` when a
 * change arrives and swaps in the returned <main> content: no client-side templates, so every value
 * is escaped in one place.
 */
export function registerPages(app: FastifyInstance, ctx: ConsoleContext): void {
  const { store, feed } = ctx;
  const send = (req: FastifyRequest, reply: FastifyReply, view: string, title: string, body: Html) => {
    reply.type('text/html; charset=utf-8');
    if (req.headers['x-glasswatch-fragment'] === '1') return reply.send(body.text);
    return reply.send(page({ title, view, csrf: req.principal?.csrf ?? null, user: req.principal?.name ?? null, body }));
  };
  const csrf = (req: FastifyRequest) => req.principal?.csrf ?? '';

  app.get('/', async (req, reply) => {
    const sessions = await listSessions(store, { activeSinceMs: feed.openSinceMs(), limit: 500 });
    return send(req, reply, 'now', 'now', nowView(sessions, feed.clockMs()));
  });
  app.get('/requests', async (req, reply) => {
    const now = feed.clockMs();
    const [requested, approved, changes, alerts] = await Promise.all([
      listTickets(store, 'requested', now),
      listTickets(store, 'approved', now),
      recentTicketChanges(store, 50),
      Promise.all(REQUEST_ALERT_TYPES.map((type) => listAlerts(store, { type, limit: 50 }))).then((l) =>
        l.flat().sort((a, b) => String(b.detected_at).localeCompare(String(a.detected_at))),
      ),
    ]);
    return send(req, reply, 'requests', 'requests', requestsView({ requested, approved, changes, alerts, clockMs: now, csrf: csrf(req) }));
  });
  app.get('/alerts', async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const filters = {
      type: textParam(q, 'type') ?? '',
      severity: textParam(q, 'severity') ?? '',
      identity: textParam(q, 'identity') ?? '',
      since: textParam(q, 'since') ?? '',
      until: textParam(q, 'until') ?? '',
      triage: triageParam(q) ?? '',
    };
    const alerts = await listAlerts(store, {
      sinceMs: instantParam(q, 'since'),
      untilMs: instantParam(q, 'until'),
      type: filters.type || null,
      severity: filters.severity || null,
      identity: filters.identity || null,
      triage: triageParam(q),
      limit: limitParam(q, 200),
    });
    return send(req, reply, 'alerts', 'alerts', alertsView(alerts, filters, csrf(req)));
  });
  app.get('/sessions/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const detail = await sessionDetail(store, id);
    if (!detail) throw new GlasswatchError('BG_CONSOLE_NOT_FOUND', `no session ${id}`, { stage: 'receiving' });
    return send(req, reply, 'session', `session ${id}`, sessionView(detail, csrf(req)));
  });
  app.get('/health', async (req, reply) => {
    const [stored, open] = await Promise.all([storedHealth(store), countOpenSessions(store, feed.openSinceMs())]);
    return send(req, reply, 'health', 'health', healthView(feed.health(), stored, open, feed.clockMs()));
  });
  // The form of a page without JavaScript; console.js posts the same form and refreshes the view instead.
  app.post('/alerts/:id/triage', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const action = parseTriage(id, req.body, req.principal?.name ?? 'unknown');
    await recordTriage(store, action);
    ctx.hub.publish({ kind: 'triage', alert_id: id, state: action.state, actor: action.actor });
    return reply.redirect(backTo(req), 303);
  });
}

/** Back to the console page the form was on (same origin only), else the alerts feed. */
function backTo(req: FastifyRequest): string {
  const referer = req.headers.referer;
  if (!referer) return '/alerts';
  try {
    const u = new URL(referer);
    if (u.host !== req.headers.host) return '/alerts';
    return `${u.pathname}${u.search}`;
  } catch {
    return '/alerts';
  }
}
