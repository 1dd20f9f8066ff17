import { readFileSync } from 'node:fs';
import { type ParseTicketOptions, parseTicket, TicketError, type TicketVersion } from './ticket.js';

/**
 * Reads tickets from a file: a JSON array, a single JSON object, or JSON lines. Errors
 * name the file and the line (or array index) of the bad ticket; all of them at once.
 */
export function loadTicketFile(path: string, options: ParseTicketOptions = {}): TicketVersion[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').replace(/^\uFEFF/, '');
  } catch (cause) {
    throw new TicketError(path, `cannot read tickets file: ${(cause as Error).message}`);
  }
  return parseTicketText(text, path, options);
}

/** Parses a whole file or request body; every problem of every ticket is reported in one `TicketError`. */
export function parseTicketText(text: string, file: string, options: ParseTicketOptions = {}): TicketVersion[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const out: TicketVersion[] = [];
  const problems: string[] = [];
  const one = (doc: unknown, where: string) => {
    try {
      out.push(parseTicket(doc, where, options));
    } catch (err) {
      if (!(err instanceof TicketError)) throw err;
      problems.push(...err.problems);
    }
  };
  const done = () => {
    if (problems.length) throw new TicketError(file, problems);
    return out;
  };
  if (trimmed.startsWith('[')) {
    let list: unknown;
    try {
      list = JSON.parse(trimmed);
    } catch (cause) {
      throw new TicketError(file, `not valid JSON: ${(cause as Error).message}`);
    }
    for (const [i, t] of (list as unknown[]).entries()) one(t, `${file}[${i}]`);
    return done();
  }
  const lines = text.split(/\r?\n/);
  // A single pretty-printed object is one document, not JSON lines.
  if (trimmed.startsWith('{') && lines.filter((l) => l.trim() !== '').length > 1) {
    let doc: unknown;
    let parsed = false;
    try {
      doc = JSON.parse(trimmed);
      parsed = true;
    } catch {
      // Not a single document: read it as JSON lines.
    }
    if (parsed) {
      one(doc, file);
      return done();
    }
  }
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch (cause) {
      problems.push(`${file}:${i + 1}: not valid JSON: ${(cause as Error).message}`);
      continue;
    }
    one(doc, `${file}:${i + 1}`);
  }
  return done();
}

/**
 * How to read a ticket out of an ITSM webhook payload (Jira, ServiceNow, anything).
 * Paths are dotted, `[]` fans out over an array: `issue.fields.customfield_10050[].emailAddress`.
 */
export interface TicketMapping {
  id: string;
  requester: string;
  approvers: string;
  identities: string;
  notBefore: string;
  notAfter: string;
  updatedAt: string;
  reason?: string;
  status: { path: string; map: Record<string, string>; default?: string };
  scope?: { accounts?: string; orgs?: string; clusters?: string };
  /**
   * Read `YYYY-MM-DD HH:MM:SS` (no zone) as UTC. Only for systems that document their
   * zone-less times as UTC (ServiceNow's internal date-time values); any other zone-less
   * time is refused, never read in the host's zone.
   */
  zonelessTimesAreUtc?: boolean;
}

/** Jira Cloud `jira:issue_updated` webhook; the custom field ids differ per site, so they are config. */
export const JIRA_PRESET: TicketMapping = {
  id: 'issue.key',
  requester: 'issue.fields.reporter.emailAddress',
  approvers: 'issue.fields.customfield_approvers[].emailAddress',
  identities: 'issue.fields.customfield_identities[].value',
  notBefore: 'issue.fields.customfield_not_before',
  notAfter: 'issue.fields.customfield_not_after',
  updatedAt: 'issue.fields.updated',
  reason: 'issue.fields.summary',
  status: {
    path: 'issue.fields.status.name',
    map: { Approved: 'approved', Rejected: 'rejected', Declined: 'rejected', Done: 'closed', Closed: 'closed', Revoked: 'revoked' },
    default: 'requested',
  },
};

/** ServiceNow change/request record as sent by a Business Rule / Flow REST step. */
export const SERVICENOW_PRESET: TicketMapping = {
  id: 'number',
  requester: 'requested_by.email',
  approvers: 'approvers[].email',
  identities: 'u_breakglass_identities[]',
  notBefore: 'start_date',
  notAfter: 'end_date',
  updatedAt: 'sys_updated_on',
  reason: 'short_description',
  // GlideDateTime getValue() (what a Business Rule or Flow sends) is UTC by definition.
  zonelessTimesAreUtc: true,
  status: {
    path: 'approval',
    map: {
      approved: 'approved',
      rejected: 'rejected',
      requested: 'requested',
      not_requested: 'requested',
      cancelled: 'revoked',
      closed: 'closed',
    },
  },
};

export function extractPath(doc: unknown, path: string): unknown[] {
  let current: unknown[] = [doc];
  for (const raw of path.split('.')) {
    const fan = raw.endsWith('[]');
    const key = fan ? raw.slice(0, -2) : raw;
    const next: unknown[] = [];
    for (const c of current) {
      if (c === null || typeof c !== 'object') continue;
      const v = (c as Record<string, unknown>)[key];
      if (v === undefined || v === null) continue;
      if (fan && Array.isArray(v)) next.push(...v);
      else next.push(v);
    }
    current = next;
  }
  return current;
}

/** ServiceNow sends `2026-11-20 08:55:12` (UTC, no zone): read it as UTC when the mapping says so. */
function utcIfStated(v: unknown, mapping: TicketMapping): unknown {
  return mapping.zonelessTimesAreUtc && typeof v === 'string' && /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(v)
    ? `${v.replace(' ', 'T')}Z`
    : v;
}

/** Maps an ITSM payload to a ticket and validates it; errors name the payload path of each field. */
export function mapTicket(payload: unknown, mapping: TicketMapping, where: string, options: ParseTicketOptions = {}): TicketVersion {
  const one = (p: string) => extractPath(payload, p)[0];
  const many = (p: string) => extractPath(payload, p).flatMap((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()) : [v]));
  const statusRaw = one(mapping.status.path);
  const status = (typeof statusRaw === 'string' ? mapping.status.map[statusRaw] : undefined) ?? mapping.status.default;
  if (!status)
    throw new TicketError(where, `status "${String(statusRaw)}" at ${mapping.status.path} has no mapping (add it to status.map)`);
  const scope: Record<string, unknown> = {};
  for (const k of ['accounts', 'orgs', 'clusters'] as const) {
    const p = mapping.scope?.[k];
    if (p) {
      const values = many(p);
      if (values.length) scope[k] = values;
    }
  }
  return parseTicket(
    {
      id: one(mapping.id),
      requester: one(mapping.requester),
      approvers: many(mapping.approvers),
      identities: many(mapping.identities),
      status,
      notBefore: utcIfStated(one(mapping.notBefore), mapping),
      notAfter: utcIfStated(one(mapping.notAfter), mapping),
      updatedAt: utcIfStated(one(mapping.updatedAt), mapping),
      ...(mapping.reason && typeof one(mapping.reason) === 'string' ? { reason: one(mapping.reason) } : {}),
      ...(Object.keys(scope).length ? { scope } : {}),
    },
    where,
    {
      ...options,
      paths: {
        id: mapping.id,
        requester: mapping.requester,
        approvers: mapping.approvers,
        identities: mapping.identities,
        notBefore: mapping.notBefore,
        notAfter: mapping.notAfter,
        updatedAt: mapping.updatedAt,
        status: mapping.status.path,
      },
    },
  );
}
