import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../core/log.js';
import type { Store } from '../core/store/client.js';
import type { ConfirmSettings } from '../detectors/confirm/config.js';
import { type ConfirmationStep, firstAnswer, recordStep, SETTLED, stepsOf } from '../detectors/confirm/store.js';
import { type ConfirmClaims, checkConfirmToken, confirmFormToken, sameText } from '../detectors/confirm/token.js';
import { answeredView, closedView, questionFacts, questionView } from './views/confirm.js';
import { page } from './views/html.js';

/** The path prefix served without a console login: the link's token is the credential, for its one page. */
export const CONFIRM_PREFIX = '/confirm/';
const TICKET = /^[A-Za-z0-9_.:#/-]{1,64}$/;

type Checked =
  | { ok: true; asked: ConfirmationStep; steps: ConfirmationStep[]; claims: ConfirmClaims }
  | { ok: false; status: number; message: string };

/**
 * "Was this you?" answered in the browser. GET shows the question and acts on nothing (mail
 * scanners and link previews follow GETs); only the POST of its form, with the form token derived
 * from the link's nonce and from this origin, records the answer. The link is checked on every
 * request: HMAC signature (constant time), expiry, bound to this question, session, identity and
 * nonce, and not answered before (the answer row records the nonce as used).
 */
export function registerConfirm(
  app: FastifyInstance,
  ctx: { store: Store; log: Logger; secure: boolean; confirm: ConfirmSettings | null },
): void {
  const { store, log } = ctx;
  // Two answers racing in this process: the second sees the first's row.
  const answering = new Set<string>();

  const check = async (id: string, token: unknown): Promise<Checked> => {
    if (!ctx.confirm) return { ok: false, status: 404, message: 'confirmations are not configured' };
    const t = checkConfirmToken(ctx.confirm.secret, token, id);
    if (!t.ok) {
      log.warn('confirmation link refused', { confirmationId: id.slice(0, 64), reason: t.reason });
      if (t.reason === 'expired')
        return { ok: false, status: 410, message: 'This question has expired: without an answer by its due time the session is revoked.' };
      return { ok: false, status: 403, message: 'This link is not valid.' };
    }
    const steps = await stepsOf(store, [id]);
    const asked = steps.find((s) => s.state === 'asked');
    if (!asked) return { ok: false, status: 404, message: 'No such question.' };
    const c = t.claims;
    // Bound to the question as asked: a token made for another session or identity is refused.
    if (c.s !== asked.sessionId || c.i !== asked.identity || c.e !== asked.dueAtMs || !sameText(c.n, asked.nonce)) {
      log.warn('confirmation link refused', { confirmationId: id, reason: 'other_session' });
      return { ok: false, status: 403, message: 'This link is not for this session.' };
    }
    if (firstAnswer(steps, id) || steps.some((s) => SETTLED.includes(s.state)))
      return { ok: false, status: 409, message: 'This question has been answered or closed already; a link works once.' };
    return { ok: true, asked, steps, claims: c };
  };

  const show = (reply: FastifyReply, status: number, title: string, body: ReturnType<typeof closedView>) =>
    reply
      .code(status)
      // The token is in the URL: never sent to another origin as a Referer (same-origin, not
      // no-referrer: with no-referrer a browser posts the form with Origin: null), never indexed.
      .header('referrer-policy', 'same-origin')
      .header('x-robots-tag', 'noindex, nofollow')
      .type('text/html; charset=utf-8')
      .send(page({ title, view: 'confirm', csrf: null, user: null, body }));

  const params = (req: FastifyRequest) => ({
    id: (req.params as { id: string }).id,
    token: (req.query as Record<string, unknown>).token,
  });

  app.get(`${CONFIRM_PREFIX}:id`, { config: { rateLimit: { max: 60, timeWindow: 60_000 } } }, async (req, reply) => {
    const { id, token } = params(req);
    const c = await check(id, token);
    if (!c.ok) return show(reply, c.status, 'confirmation', closedView(c.message));
    const action = `${CONFIRM_PREFIX}${encodeURIComponent(id)}?token=${encodeURIComponent(String(token))}`;
    return show(reply, 200, 'was this you?', questionView(questionFacts(c.asked), action, confirmFormToken(ctx.confirm!.secret, c.claims)));
  });

  app.post(`${CONFIRM_PREFIX}:id`, { config: { rateLimit: { max: 30, timeWindow: 60_000 } } }, async (req, reply) => {
    const { id, token } = params(req);
    const origin = req.headers.origin;
    if (origin && origin !== `${ctx.secure ? 'https' : 'http'}://${req.headers.host}`)
      return show(reply, 403, 'confirmation', closedView('Cross-origin request refused.'));
    const c = await check(id, token);
    if (!c.ok) return show(reply, c.status, 'confirmation', closedView(c.message));
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!sameText(body._csrf, confirmFormToken(ctx.confirm!.secret, c.claims)))
      return show(reply, 403, 'confirmation', closedView('Form token missing or wrong: open the link again.'));
    const answer = body.answer;
    if (answer !== 'yes' && answer !== 'no') return show(reply, 400, 'confirmation', closedView('Answer yes or no.'));
    const ticket = typeof body.ticket === 'string' ? body.ticket.trim() : '';
    if (answer === 'yes' && !TICKET.test(ticket))
      return show(reply, 400, 'confirmation', closedView('A "yes" needs the ticket you worked under (letters, digits, _ . : # / -).'));
    if (answering.has(id)) return show(reply, 409, 'confirmation', closedView('This question is being answered already.'));
    answering.add(id);
    try {
      // Read again inside the lock: the nonce is used once.
      const again = await check(id, token);
      if (!again.ok) return show(reply, again.status, 'confirmation', closedView(again.message));
      const now = Date.now();
      await recordStep(store, {
        ...c.asked,
        state: answer,
        ticketId: answer === 'yes' ? ticket : '',
        actor: `link holder (${c.asked.owner}) from ${req.ip}`,
        detail:
          answer === 'yes'
            ? `owner says it was them, under ticket ${ticket}: kept, flagged for review`
            : 'owner says it was not them: revoke',
        atMs: now,
        request: '',
      });
      log.warn('confirmation answered', { confirmationId: id, sessionId: c.asked.sessionId, answer, ticketId: ticket || undefined });
      return show(reply, 200, 'answer recorded', answeredView(questionFacts(c.asked), answer, ticket));
    } finally {
      answering.delete(id);
    }
  });
}
