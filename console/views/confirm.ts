import type { ConfirmationStep } from '../../detectors/confirm/store.js';
import { type Html, html, when } from './html.js';

/** What was done, when, where, by which session: from the revocation request kept with the question. */
export interface QuestionFacts {
  identity: string;
  sessionId: string;
  principal: string;
  action: string;
  eventTime: string;
  where: string;
  sourceIp: string;
  dueAt: string;
}

export function questionFacts(asked: ConfirmationStep): QuestionFacts {
  let e: Record<string, unknown> = {};
  try {
    e = (JSON.parse(asked.request) as { request?: { event?: Record<string, unknown> } }).request?.event ?? {};
  } catch {
    // shown as unknown below
  }
  const actor = (e.actor ?? {}) as { name?: string; id?: string };
  return {
    identity: asked.identity,
    sessionId: asked.sessionId,
    principal: actor.name ?? actor.id ?? 'unknown principal',
    action: String(e.action ?? 'unknown'),
    eventTime: String(e.time ?? ''),
    where: [e.source, e.account, e.org, e.cluster].filter((v) => typeof v === 'string' && v !== '').join(' '),
    sourceIp: String(e.sourceIp ?? 'unknown IP'),
    dueAt: new Date(asked.dueAtMs).toISOString(),
  };
}

function factList(f: QuestionFacts): Html {
  const rows: [string, string][] = [
    ['identity', f.identity],
    ['who', f.principal],
    ['what', f.action],
    ['when', when(f.eventTime)],
    ['where', `${f.where || '—'} from ${f.sourceIp}`],
    ['session', f.sessionId],
  ];
  return html`<dl class="facts">${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;
}

/** The question. Nothing is done until one of the forms is posted (mail scanners follow links). */
export function questionView(f: QuestionFacts, action: string, formToken: string): Html {
  return html`<h1>Was this you?</h1>
<p>Break-glass identity <strong>${f.identity}</strong> was used without an approved ticket.</p>
${factList(f)}
<p>Answer before <strong>${when(f.dueAt)}</strong>. If you answer no, or nobody answers by then, the session is revoked.</p>
<form method="post" action="${action}" class="confirm-yes">
<input type="hidden" name="_csrf" value="${formToken}">
<input type="hidden" name="answer" value="yes">
<label>Ticket <input name="ticket" required maxlength="64" pattern="[A-Za-z0-9_.:#/-]{1,64}" placeholder="CHG-1234"></label>
<button type="submit">Yes, it was me (under this ticket)</button>
</form>
<form method="post" action="${action}" class="confirm-no">
<input type="hidden" name="_csrf" value="${formToken}">
<input type="hidden" name="answer" value="no">
<button type="submit">No, it was not me: revoke now</button>
</form>`;
}

export function answeredView(f: QuestionFacts, answer: 'yes' | 'no', ticket: string): Html {
  return html`<h1>Answer recorded</h1>
${factList(f)}
${
  answer === 'yes'
    ? html`<p>You said it was you, under ticket <strong>${ticket}</strong>. The session stays open and is flagged for review.</p>`
    : html`<p class="problem">You said it was not you. The session is being revoked now.</p>`
}`;
}

export function closedView(message: string): Html {
  return html`<h1>This link cannot be used</h1><p class="problem">${message}</p>`;
}
