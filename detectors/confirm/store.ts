import type { Store } from '../../core/store/client.js';
import { insertRows } from '../../core/store/writer.js';

/**
 * Steps of one question. `asked` is written before anything is sent; `yes` / `no` by the console
 * (the answer, with the link's nonce); `timeout`, `undelivered` and `revoked` by the gate after it
 * acted. Every step is a row of `confirmations`, an evidence table, so each one is chained.
 */
export type ConfirmState = 'asked' | 'yes' | 'no' | 'timeout' | 'undelivered' | 'revoked';
/** After one of these the question is settled: nothing is left for the gate to do. */
export const SETTLED: readonly ConfirmState[] = ['yes', 'timeout', 'undelivered', 'revoked'];

export interface ConfirmationStep {
  confirmationId: string;
  state: ConfirmState;
  sessionId: string;
  identity: string;
  alertId: string;
  via: string;
  owner: string;
  nonce: string;
  ticketId: string;
  /** Who answered (the link's holder, with the browser's address), or the gate. */
  actor: string;
  detail: string;
  askedAtMs: number;
  dueAtMs: number;
  atMs: number;
  /** The revocation request as JSON (`asked` only): what a restarted gate revokes with. */
  request: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

export async function recordStep(store: Store, s: ConfirmationStep): Promise<void> {
  await insertRows(store, 'confirmations', [
    {
      confirmation_id: s.confirmationId,
      state: s.state,
      session_id: s.sessionId,
      identity: s.identity,
      alert_id: s.alertId,
      via: s.via,
      owner: s.owner,
      nonce: s.nonce,
      ticket_id: s.ticketId,
      actor: s.actor,
      detail: s.detail,
      asked_at: iso(s.askedAtMs),
      due_at: iso(s.dueAtMs),
      at: iso(s.atMs),
      request: s.request,
    },
  ]);
}

const COLUMNS = `confirmation_id, state, session_id, identity, alert_id, via, owner, nonce, ticket_id, actor, detail,
  toUnixTimestamp64Milli(asked_at) AS asked_ms, toUnixTimestamp64Milli(due_at) AS due_ms, toUnixTimestamp64Milli(at) AS at_ms, request`;

function stepOf(r: Record<string, unknown>): ConfirmationStep {
  return {
    confirmationId: String(r.confirmation_id),
    state: String(r.state) as ConfirmState,
    sessionId: String(r.session_id),
    identity: String(r.identity),
    alertId: String(r.alert_id),
    via: String(r.via),
    owner: String(r.owner),
    nonce: String(r.nonce),
    ticketId: String(r.ticket_id),
    actor: String(r.actor),
    detail: String(r.detail),
    askedAtMs: Number(r.asked_ms),
    dueAtMs: Number(r.due_ms),
    atMs: Number(r.at_ms),
    request: String(r.request),
  };
}

async function select(store: Store, query: string, params: Record<string, unknown>): Promise<ConfirmationStep[]> {
  const rows = await (await store.client.query({ query, query_params: params, format: 'JSONEachRow' })).json<Record<string, unknown>>();
  return rows.map(stepOf);
}

/** Every step of the given questions, oldest first. */
export async function stepsOf(store: Store, ids: readonly string[]): Promise<ConfirmationStep[]> {
  if (ids.length === 0) return [];
  return select(
    store,
    `SELECT ${COLUMNS} FROM confirmations WHERE confirmation_id IN {ids:Array(String)}
     ORDER BY at, state LIMIT 1 BY confirmation_id, state, at`,
    { ids },
  );
}

/** The questions of a session (the console's session page). */
export async function stepsOfSession(store: Store, sessionId: string): Promise<ConfirmationStep[]> {
  return select(
    store,
    `SELECT ${COLUMNS} FROM confirmations WHERE session_id = {id:String} ORDER BY at, state LIMIT 1 BY confirmation_id, state, at`,
    { id: sessionId },
  );
}

/** Questions asked and not settled: what a starting gate takes back (a crash loses none). */
export async function openQuestions(store: Store): Promise<ConfirmationStep[]> {
  return select(
    store,
    `SELECT ${COLUMNS} FROM confirmations
     WHERE state = 'asked'
       AND confirmation_id NOT IN (SELECT confirmation_id FROM confirmations WHERE state IN {settled:Array(String)})
     ORDER BY at LIMIT 1 BY confirmation_id`,
    { settled: SETTLED },
  );
}

/** Answers (yes / no) recorded since `sinceMs`: what the gate polls for (no list of ids to send each time). */
export async function answersSince(store: Store, sinceMs: number): Promise<ConfirmationStep[]> {
  return select(
    store,
    `SELECT ${COLUMNS} FROM confirmations WHERE state IN ('yes', 'no') AND at >= fromUnixTimestamp64Milli({since:Int64})
     ORDER BY at LIMIT 1 BY confirmation_id`,
    { since: sinceMs },
  );
}

/** Ids of the questions asked since `sinceMs`. */
export async function askedSince(store: Store, sinceMs: number): Promise<string[]> {
  const rows = await (
    await store.client.query({
      query: `SELECT DISTINCT confirmation_id FROM confirmations WHERE state = 'asked' AND asked_at >= fromUnixTimestamp64Milli({since:Int64})`,
      query_params: { since: sinceMs },
      format: 'JSONEachRow',
    })
  ).json<{ confirmation_id: string }>();
  return rows.map((r) => r.confirmation_id);
}

/** The first answer (yes or no) of each question, if any. */
export function firstAnswer(steps: readonly ConfirmationStep[], id: string): ConfirmationStep | null {
  return steps.find((s) => s.confirmationId === id && (s.state === 'yes' || s.state === 'no')) ?? null;
}
