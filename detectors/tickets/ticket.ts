import { GlasswatchError } from '../../core/errors.js';

export const TICKET_STATUSES = ['requested', 'approved', 'rejected', 'revoked', 'closed'] as const;
export type TicketStatus = (typeof TICKET_STATUSES)[number];

/** One version of a break-glass access ticket. Later versions of the same id supersede earlier ones from their `updatedAt` on. */
export interface Ticket {
  id: string;
  /** Identity registry ids this ticket grants. */
  identities: string[];
  requester: string;
  approvers: string[];
  status: TicketStatus;
  notBefore: string;
  notAfter: string;
  scope?: { accounts?: string[]; orgs?: string[]; clusters?: string[] };
  reason?: string;
  updatedAt: string;
}

/** A ticket with its times parsed once, as the ledger keeps it. */
export interface TicketVersion extends Ticket {
  notBeforeMs: number;
  notAfterMs: number;
  updatedAtMs: number;
}

export class TicketError extends GlasswatchError {
  constructor(where: string, message: string) {
    super('BG_DETECT_TICKET', `${where}: ${message}`, { stage: 'receiving', context: { where } });
  }
}

function time(where: string, field: string, v: unknown): number {
  if (typeof v !== 'string') throw new TicketError(where, `${field} must be an ISO 8601 time string, got ${JSON.stringify(v)}`);
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw new TicketError(where, `${field} is not an ISO 8601 time: "${v}"`);
  return ms;
}

function strings(where: string, field: string, v: unknown, required: boolean): string[] {
  if (v === undefined || v === null) {
    if (required) throw new TicketError(where, `${field} is required (a list of strings)`);
    return [];
  }
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s.trim() === ''))
    throw new TicketError(where, `${field} must be a list of non-empty strings`);
  return (list as string[]).map((s) => s.trim());
}

/** Validates one ticket record; `where` names the file and line (or the request) in errors. */
export function parseTicket(input: unknown, where: string): TicketVersion {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new TicketError(where, 'a ticket must be a JSON object');
  const t = input as Record<string, unknown>;
  const id = t.id;
  if (typeof id !== 'string' || id.trim() === '') throw new TicketError(where, 'id is required (a non-empty string)');
  const at = `${where} (ticket ${id})`;
  const status = t.status;
  if (typeof status !== 'string' || !(TICKET_STATUSES as readonly string[]).includes(status)) {
    throw new TicketError(at, `status must be one of ${TICKET_STATUSES.join(', ')}, got ${JSON.stringify(status)}`);
  }
  if (typeof t.requester !== 'string' || t.requester.trim() === '') throw new TicketError(at, 'requester is required');
  const notBeforeMs = time(at, 'notBefore', t.notBefore);
  const notAfterMs = time(at, 'notAfter', t.notAfter);
  if (notAfterMs < notBeforeMs) throw new TicketError(at, 'notAfter is before notBefore');
  const updatedAtMs = time(at, 'updatedAt', t.updatedAt);
  let scope: Ticket['scope'];
  if (t.scope !== undefined && t.scope !== null) {
    if (typeof t.scope !== 'object' || Array.isArray(t.scope))
      throw new TicketError(at, 'scope must be an object with accounts, orgs and/or clusters');
    const s = t.scope as Record<string, unknown>;
    for (const k of Object.keys(s))
      if (!['accounts', 'orgs', 'clusters'].includes(k)) throw new TicketError(at, `scope.${k} is not a scope (accounts, orgs, clusters)`);
    scope = {};
    if (s.accounts !== undefined) scope.accounts = strings(at, 'scope.accounts', s.accounts, true);
    if (s.orgs !== undefined) scope.orgs = strings(at, 'scope.orgs', s.orgs, true);
    if (s.clusters !== undefined) scope.clusters = strings(at, 'scope.clusters', s.clusters, true);
  }
  return {
    id: id.trim(),
    identities: strings(at, 'identities', t.identities, true),
    requester: t.requester.trim(),
    approvers: strings(at, 'approvers', t.approvers, false),
    status: status as TicketStatus,
    notBefore: new Date(notBeforeMs).toISOString(),
    notAfter: new Date(notAfterMs).toISOString(),
    ...(scope ? { scope } : {}),
    ...(typeof t.reason === 'string' ? { reason: t.reason } : {}),
    updatedAt: new Date(updatedAtMs).toISOString(),
    notBeforeMs,
    notAfterMs,
    updatedAtMs,
  };
}

/** The ticket as stored and published: without the parsed-time helpers. */
export function ticketRecord(t: TicketVersion): Ticket {
  const { notBeforeMs: _a, notAfterMs: _b, updatedAtMs: _c, ...rest } = t;
  return rest;
}

/** Identities compare case-insensitively: `Bob@Example.com` approving for `bob@example.com` is self-approval. */
export function samePerson(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}
