import type { ActivityReport, AnyReport, CoverageReport, RotationReport, UnauthorizedReport } from '../types.js';
import { pick } from './cells.js';

/**
 * Every report as one flat table: one record per row, one value per cell, lists `;`-joined, never
 * JSON. A report with records of several kinds (the activity report's sessions, actions, log
 * objects and failed sign-ins) says in a `record` column what each row is; an incident's
 * revocations are one row each, with the incident's columns repeated.
 */
export interface FlatTable {
  columns: string[];
  rows: Record<string, unknown>[];
}

const SESSION_COLUMNS = [
  'sessionId',
  'identity',
  'source',
  'principal',
  'verdict',
  'reason',
  'ticketId',
  'requester',
  'approvers',
  'account',
  'org',
  'cluster',
  'sourceIps',
  'firstEventId',
  'start',
  'end',
  'durationMs',
  'events',
  'activityCommand',
  'activityData',
  'activityConfig',
  'timeToDetectMs',
  'timeToRevokeMs',
  'revocation',
  'ticketStatus',
  'ticketRequestedAt',
  'ticketRequestedBy',
  'ticketApprovedAt',
  'ticketApprovedBy',
  'ticketUsedAt',
  'ticketUsedBy',
  'ticketClosedAt',
  'ticketClosedAs',
  'ticketClosedVia',
  'logValidation',
];

function activity(r: ActivityReport): FlatTable {
  const columns = ['record', ...SESSION_COLUMNS, 'time', 'action', 'target', 'outcome', 'category', 'eventId', 'sourceIp', 'objectKey'];
  const rows: Record<string, unknown>[] = [];
  for (const s of r.sessions) {
    const t = s.ticket;
    rows.push({
      record: 'session',
      ...Object.fromEntries(SESSION_COLUMNS.map((c) => [c, pick(s as unknown as Record<string, unknown>, c)])),
      activityCommand: s.activity?.command,
      activityData: s.activity?.data,
      activityConfig: s.activity?.config,
      ticketStatus: t?.status,
      ticketRequestedAt: t?.requestedAt,
      ticketRequestedBy: t?.requestedBy,
      ticketApprovedAt: t?.approvedAt,
      ticketApprovedBy: t?.approvedBy,
      ticketUsedAt: t?.usedAt,
      ticketUsedBy: t?.usedBy,
      ticketClosedAt: t?.closedAt,
      ticketClosedAs: t?.closedAs,
      ticketClosedVia: t?.closedVia,
      logValidation: s.logValidation?.status,
    });
    const who = { sessionId: s.sessionId, identity: s.identity, source: s.source, principal: s.principal };
    for (const a of s.actions ?? []) rows.push({ record: 'action', ...who, ...a });
    for (const o of s.logValidation?.objects ?? [])
      rows.push({ record: 'log_object', ...who, objectKey: o.objectKey, logValidation: o.status });
  }
  for (const a of r.attempts ?? []) rows.push({ record: 'attempt', ...a });
  return { columns, rows };
}

const INCIDENT_COLUMNS = [
  'sessionId',
  'identity',
  'source',
  'principal',
  'reason',
  'ticketId',
  'approvers',
  'unauthorizedEventId',
  'sourceIps',
  'account',
  'org',
  'cluster',
  'start',
  'end',
  'events',
  'activityCommand',
  'activityData',
  'activityConfig',
  'detectedAt',
  'timeToDetectMs',
  'timeToRevokeMs',
  'revocation',
];
const REVOCATION_COLUMNS = [
  'revocationId',
  'target',
  'outcome',
  'detail',
  'attempts',
  'requestedAt',
  'completedAt',
  'timeToRevokeMs',
  // What later logs showed: true (quiet for the window), false (ineffective), empty (not verified).
  'verified',
  'verifiedAt',
  'verifyEventId',
  'verifyDetail',
];

function unauthorized(r: UnauthorizedReport): FlatTable {
  const prefixed = REVOCATION_COLUMNS.map((c) =>
    `revocation${c[0]!.toUpperCase()}${c.slice(1)}`.replace('revocationRevocationId', 'revocationId'),
  );
  const rows: Record<string, unknown>[] = [];
  for (const i of r.incidents) {
    const incident: Record<string, unknown> = Object.fromEntries(
      INCIDENT_COLUMNS.map((c) => [c, pick(i as unknown as Record<string, unknown>, c)]),
    );
    Object.assign(incident, { activityCommand: i.activity?.command, activityData: i.activity?.data, activityConfig: i.activity?.config });
    // A kept copy from before a field existed renders with the cell empty, not a crash.
    const revocations = i.revocations ?? [];
    if (revocations.length === 0) rows.push(incident);
    for (const rev of revocations)
      rows.push({
        ...incident,
        ...Object.fromEntries(REVOCATION_COLUMNS.map((c, k) => [prefixed[k]!, (rev as unknown as Record<string, unknown>)[c]])),
      });
  }
  return { columns: [...INCIDENT_COLUMNS, ...prefixed], rows };
}

const COVERAGE_COLUMNS = [
  'kind',
  'ticketId',
  'identities',
  'sessionId',
  'requester',
  'approvers',
  'notBefore',
  'notAfter',
  'start',
  'end',
  'uses',
  'earlyMs',
  'overrunMs',
  'reason',
];
const ROTATION_COLUMNS = [
  'check',
  'identity',
  'principal',
  'kind',
  'scope',
  'sessionId',
  'usedAt',
  'dueBy',
  'rotatedAt',
  'evidence',
  'historySince',
  'status',
];

const plain = (columns: string[], rows: object[]): FlatTable => ({ columns, rows: rows as Record<string, unknown>[] });

export function flatTable(report: AnyReport): FlatTable {
  switch (report.report) {
    case 'breakglass-activity':
      return activity(report);
    case 'unauthorized-use':
      return unauthorized(report);
    case 'ticket-coverage':
      return plain(COVERAGE_COLUMNS, (report as CoverageReport).findings);
    case 'rotation-compliance':
      return plain(ROTATION_COLUMNS, (report as RotationReport).findings);
  }
}
