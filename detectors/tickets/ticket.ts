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

/** One or more problems with ticket input; `problems` lists each (file, line, ticket, field), all found in one pass. */
export class TicketError extends GlasswatchError {
  readonly problems: string[];
  constructor(where: string, message: string | string[]) {
    const problems = typeof message === 'string' ? [`${where}: ${message}`] : message;
    super('BG_DETECT_TICKET', problems.length === 1 ? problems[0]! : `${where}: ${problems.length} problems\n  ${problems.join('\n  ')}`, {
      stage: 'receiving',
      context: { where, problems: problems.length },
    });
    this.problems = problems;
  }
}

export const TICKET_KEYS = [
  'id',
  'identities',
  'requester',
  'approvers',
  'status',
  'notBefore',
  'notAfter',
  'scope',
  'reason',
  'updatedAt',
] as const;
type TicketKey = (typeof TICKET_KEYS)[number];
const SCOPE_KEYS = ['accounts', 'orgs', 'clusters'] as const;

export interface ParseTicketOptions {
  /** The identity ids of the config: a ticket naming any other is refused. Unchecked when absent. */
  identities?: readonly string[];
  /** Where each field came from (an ITSM payload path), named in errors next to the field. */
  paths?: Partial<Record<TicketKey, string>>;
}

/**
 * An ISO 8601 date-time with its zone (`Z`, `±hh:mm`, or Jira's `±hhmm`). A time without a
 * zone would be read in the host's zone, so the same ticket would be authorized in Tokyo
 * and not in UTC: it is refused.
 */
const ZONED_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i;
/** Looks like a time, zone or not: a zone-less one gets the zone message rather than "not a time". */
const TIME_LIKE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?/i;

/** Parses a time that must carry its zone; null when it does not (or is no time). */
export function zonedTime(v: string): number | null {
  if (!ZONED_TIME.test(v.trim())) return null;
  const ms = Date.parse(v.trim());
  return Number.isNaN(ms) ? null : ms;
}

/** The closest known name to a mistyped key (`approver` → `approvers`), or null. */
export function suggest(key: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

/**
 * Validates one ticket record like config: unknown keys (with a suggestion), types,
 * missing fields, zone-less times, identities the config does not define. `where` names
 * the file and line (or the request); every problem of the record is thrown together.
 */
export function parseTicket(input: unknown, where: string, options: ParseTicketOptions = {}): TicketVersion {
  if (!input || typeof input !== 'object' || Array.isArray(input))
    throw new TicketError(where, `a ticket must be a JSON object, got ${kindOf(input)}`);
  const t = input as Record<string, unknown>;
  const id = typeof t.id === 'string' ? t.id.trim() : '';
  const at = id ? `${where} (ticket ${id})` : where;
  const problems: string[] = [];
  const problem = (message: string) => problems.push(`${at}: ${message}`);
  const field = (name: TicketKey) => (options.paths?.[name] ? `${name} (${options.paths[name]})` : name);

  for (const k of Object.keys(t)) {
    if ((TICKET_KEYS as readonly string[]).includes(k)) continue;
    const s = suggest(k, TICKET_KEYS);
    problem(`${k}: unknown key (${s ? `did you mean ${s}?` : `known: ${TICKET_KEYS.join(', ')}`})`);
  }
  if (t.id === undefined || t.id === null) problem(`${field('id')} is missing`);
  else if (id === '') problem(`${field('id')} must be a non-empty string, got ${kindOf(t.id)}`);

  const text = (name: 'requester' | 'reason', required: boolean): string | undefined => {
    const v = t[name];
    if (v === undefined || v === null) {
      if (required) problem(`${field(name)} is missing`);
      return undefined;
    }
    if (typeof v !== 'string' || (required && v.trim() === '')) {
      problem(`${field(name)} must be a ${required ? 'non-empty ' : ''}string, got ${kindOf(v)}`);
      return undefined;
    }
    return required ? v.trim() : v;
  };
  const list = (name: string, v: unknown, required: boolean, what: string): string[] => {
    if (v === undefined || v === null) {
      if (required) problem(`${name} is missing (a list of ${what})`);
      return [];
    }
    if (!Array.isArray(v)) {
      problem(`${name} must be a list of ${what}, got ${kindOf(v)}`);
      return [];
    }
    if (v.some((s) => typeof s !== 'string' || s.trim() === '')) {
      problem(`${name} must be a list of non-empty strings`);
      return [];
    }
    if (required && v.length === 0) problem(`${name} must not be empty`);
    return (v as string[]).map((s) => s.trim());
  };
  const time = (name: 'notBefore' | 'notAfter' | 'updatedAt'): number => {
    const v = t[name];
    if (v === undefined || v === null) {
      problem(`${field(name)} is missing`);
      return Number.NaN;
    }
    if (typeof v !== 'string') {
      problem(`${field(name)} must be an ISO 8601 time string, got ${kindOf(v)}`);
      return Number.NaN;
    }
    const ms = zonedTime(v);
    if (ms !== null) return ms;
    if (TIME_LIKE.test(v.trim()) && !Number.isNaN(Date.parse(v.trim().replace(' ', 'T'))))
      problem(`${field(name)} "${v}" has no time zone: write Z or ±hh:mm (e.g. 2026-11-20T09:00:00Z)`);
    else problem(`${field(name)} is not an ISO 8601 time: "${v}"`);
    return Number.NaN;
  };

  const status = t.status;
  if (status === undefined || status === null) problem(`${field('status')} is missing (one of ${TICKET_STATUSES.join(', ')})`);
  else if (typeof status !== 'string' || !(TICKET_STATUSES as readonly string[]).includes(status))
    problem(`${field('status')} must be one of ${TICKET_STATUSES.join(', ')}, got ${JSON.stringify(status)}`);
  const requester = text('requester', true);
  const reason = text('reason', false);
  const identities = list(field('identities'), t.identities, true, 'identity ids');
  if (options.identities) {
    for (const i of identities) {
      if (options.identities.includes(i)) continue;
      const s = suggest(i, options.identities);
      const known = options.identities.join(', ') || 'none';
      problem(`${field('identities')}: "${i}" is not an identity of the config (known: ${known})${s ? `; did you mean ${s}?` : ''}`);
    }
  }
  const approvers = list(field('approvers'), t.approvers, false, 'approver names');
  const notBeforeMs = time('notBefore');
  const notAfterMs = time('notAfter');
  if (notAfterMs < notBeforeMs) problem(`${field('notAfter')} is before notBefore`);
  const updatedAtMs = time('updatedAt');

  let scope: Ticket['scope'];
  if (t.scope !== undefined && t.scope !== null) {
    if (typeof t.scope !== 'object' || Array.isArray(t.scope))
      problem(`scope must be an object with accounts, orgs and/or clusters, got ${kindOf(t.scope)}`);
    else {
      const s = t.scope as Record<string, unknown>;
      scope = {};
      for (const k of Object.keys(s)) {
        if ((SCOPE_KEYS as readonly string[]).includes(k)) continue;
        const hint = suggest(k, SCOPE_KEYS);
        problem(`scope.${k}: unknown key (${hint ? `did you mean ${hint}?` : `known: ${SCOPE_KEYS.join(', ')}`})`);
      }
      for (const k of SCOPE_KEYS) if (s[k] !== undefined) scope[k] = list(`scope.${k}`, s[k], true, `${k.slice(0, -1)} names`);
    }
  }
  if (problems.length) throw new TicketError(at, problems);
  return {
    id,
    identities,
    requester: requester!,
    approvers,
    status: status as TicketStatus,
    notBefore: new Date(notBeforeMs).toISOString(),
    notAfter: new Date(notAfterMs).toISOString(),
    ...(scope ? { scope } : {}),
    ...(reason !== undefined ? { reason } : {}),
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
