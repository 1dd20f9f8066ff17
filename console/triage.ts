import { randomUUID } from 'node:crypto';
import { GlasswatchError } from '../core/errors.js';
import type { Store } from '../core/store/client.js';
import { insertRows } from '../core/store/writer.js';
import { alertExists } from './queries.js';

export const TRIAGE_STATES = ['open', 'acknowledged', 'resolved'] as const;
export type TriageState = (typeof TRIAGE_STATES)[number];

export interface TriageAction {
  alertId: string;
  state: TriageState;
  actor: string;
  comment: string;
}

const MAX_COMMENT = 2000;

/** Validates a triage request body (API JSON or a browser form); throws a 400-coded error naming the field. */
export function parseTriage(alertId: string, body: unknown, actor: string): TriageAction {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const state = b.state;
  if (typeof state !== 'string' || !(TRIAGE_STATES as readonly string[]).includes(state))
    throw triageError(`state must be one of ${TRIAGE_STATES.join(', ')}`);
  const comment = b.comment === undefined || b.comment === null ? '' : b.comment;
  if (typeof comment !== 'string') throw triageError('comment must be a string');
  if (comment.length > MAX_COMMENT) throw triageError(`comment is longer than ${MAX_COMMENT} characters`);
  return { alertId, state: state as TriageState, actor, comment };
}

function triageError(message: string): GlasswatchError {
  return new GlasswatchError('BG_CONSOLE_TRIAGE', message, {
    stage: 'receiving',
    hint: 'send {"state":"acknowledged"|"resolved"|"open","comment":"..."}',
  });
}

/**
 * Records one triage action as its own row of `alert_triage` (the history is kept; the alert's state
 * is its latest row). Written through `insertRows`, so evidence tables chained by the audit trail
 * (evidence/tables.ts lists `alert_triage`) get this action in the chain.
 */
export async function recordTriage(store: Store, action: TriageAction, nowMs = Date.now()): Promise<Record<string, unknown>> {
  if (!(await alertExists(store, action.alertId)))
    throw new GlasswatchError('BG_CONSOLE_NO_ALERT', `no alert ${action.alertId}`, {
      stage: 'receiving',
      hint: 'list alerts with GET /api/alerts',
    });
  const row = {
    triage_id: randomUUID(),
    alert_id: action.alertId,
    state: action.state,
    actor: action.actor,
    comment: action.comment,
    at: new Date(nowMs).toISOString(),
  };
  await insertRows(store, 'alert_triage', [row]);
  return row;
}
