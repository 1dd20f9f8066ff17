import type { LogValidationStatus } from './log-validation.js';

export type { LogValidationStatus };

/** The reporting period: [from, to), both UTC instants. */
export interface Period {
  fromMs: number;
  toMs: number;
}

export const REPORT_NAMES = ['breakglass-activity', 'unauthorized-use', 'ticket-coverage', 'rotation-compliance'] as const;
export type ReportName = (typeof REPORT_NAMES)[number];

export type RevocationSummary = 'revoked' | 'failed' | 'not_revocable' | 'manual' | null;

/**
 * Every report has the same envelope: its name, the period as ISO strings, totals, one
 * array of rows under a report-specific key, and a SHA-256 digest of all of it.
 */
export interface ReportBase<T extends Record<string, number>> {
  report: ReportName;
  from: string;
  to: string;
  digest: string;
  totals: T;
}

/** One step of a ticket's life, read from its stored versions (a ticket version names no actor for a close). */
export interface TicketTimeline {
  ticketId: string;
  status: string | null;
  notBefore: string | null;
  notAfter: string | null;
  requestedAt: string | null;
  requestedBy: string | null;
  approvedAt: string | null;
  approvedBy: string[];
  /** This session's first event, by its principal. */
  usedAt: string;
  usedBy: string | null;
  /** The first version that closed, revoked or rejected it; null while it stays open. */
  closedAt: string | null;
  closedAs: string | null;
  /** Where the closing version came from (`file`, `webhook`, `jira`...): the version itself names no person. */
  closedVia: string | null;
}

/** One stored event of a session: what was done, to what, with which outcome. */
export interface SessionAction {
  time: string;
  action: string;
  target: string | null;
  outcome: string;
  /** Review categories of the rules that matched it (`command`, `data`, `config`), joined with `+`; null when none matched. */
  category: string | null;
  eventId: string;
}

/** CloudTrail log-file validation of the objects a session's events came from. */
export interface SessionLogValidation {
  /** Worst status over the session's objects: mismatch > missing_digest > pending > valid; null when none was validated. */
  status: LogValidationStatus | null;
  objects: { objectKey: string; status: LogValidationStatus }[];
}

export interface ActivitySession {
  sessionId: string;
  identity: string;
  source: string;
  principal: string;
  verdict: 'authorized' | 'unauthorized';
  reason: string | null;
  ticketId: string | null;
  requester: string | null;
  approvers: string[];
  account: string | null;
  org: string | null;
  cluster: string | null;
  sourceIps: string[];
  firstEventId: string;
  start: string;
  end: string;
  durationMs: number;
  events: number;
  activity: { command: number; data: number; config: number };
  timeToDetectMs: number | null;
  timeToRevokeMs: number | null;
  revocation: RevocationSummary;
  ticket: TicketTimeline | null;
  /** Every stored event of the session, in time order (raw events removed by retention are not). */
  actions: SessionAction[];
  logValidation: SessionLogValidation;
}

/** A failed sign-in as a break-glass identity (a `breakglass.attempt` alert). */
export interface SignInAttempt {
  time: string;
  identity: string;
  source: string;
  principal: string | null;
  sourceIp: string | null;
  reason: string | null;
  eventId: string | null;
}

export interface ActivityReport
  extends ReportBase<{
    sessions: number;
    authorized: number;
    unauthorized: number;
    attempts: number;
    revocations: number;
    actions: number;
    /** Sessions whose CloudTrail log objects failed validation (mismatch or missing digest). */
    logValidationFailures: number;
  }> {
  report: 'breakglass-activity';
  sessions: ActivitySession[];
  attempts: SignInAttempt[];
}

export interface RevocationAttempt {
  revocationId: string;
  target: string;
  outcome: Exclude<RevocationSummary, null>;
  detail: string;
  attempts: number;
  requestedAt: string;
  completedAt: string;
  /** From the triggering event to the target's answer; null for manual hand-offs. */
  timeToRevokeMs: number | null;
  /**
   * What the later logs showed about a `revoked` revocation: true, its handles stayed quiet for the
   * verify window; false, one of them still succeeded (`breakglass.revocation_ineffective`); null, not (yet) verified.
   */
  verified: boolean | null;
  verifiedAt: string | null;
  /** The event that proved it ineffective, or the last event by its handles before it was verified. */
  verifyEventId: string | null;
  verifyDetail: string | null;
}

export interface Incident {
  sessionId: string;
  identity: string;
  source: string;
  principal: string;
  reason: string;
  ticketId: string | null;
  approvers: string[];
  unauthorizedEventId: string;
  sourceIps: string[];
  account: string | null;
  org: string | null;
  cluster: string | null;
  start: string;
  end: string;
  events: number;
  activity: { command: number; data: number; config: number };
  detectedAt: string | null;
  timeToDetectMs: number | null;
  timeToRevokeMs: number | null;
  revocation: RevocationSummary;
  revocations: RevocationAttempt[];
}

export interface UnauthorizedReport
  extends ReportBase<{
    incidents: number;
    revoked: number;
    failed: number;
    notRevocable: number;
    manual: number;
    unrevoked: number;
    /** Revocations (not incidents) the later logs proved held, and proved did not. */
    verified: number;
    ineffective: number;
  }> {
  report: 'unauthorized-use';
  incidents: Incident[];
}

export const COVERAGE_KINDS = ['unused_ticket', 'use_without_ticket', 'self_approval', 'early_use', 'window_overrun'] as const;
export type CoverageKind = (typeof COVERAGE_KINDS)[number];

export interface CoverageFinding {
  kind: CoverageKind;
  ticketId: string | null;
  identities: string[];
  sessionId: string | null;
  requester: string | null;
  approvers: string[];
  notBefore: string | null;
  notAfter: string | null;
  start: string | null;
  end: string | null;
  /** Sessions that used the ticket (unused and unused self-approved tickets); null for a finding about one use. */
  uses: number | null;
  /** How long before `notBefore` an early use began (`early_use`). */
  earlyMs: number | null;
  /** How long after `notAfter` a use ran on (`window_overrun`). */
  overrunMs: number | null;
  reason: string | null;
}

export interface CoverageReport
  extends ReportBase<{
    tickets: number;
    unusedTickets: number;
    usesWithoutTicket: number;
    selfApprovals: number;
    earlyUses: number;
    windowOverruns: number;
  }> {
  report: 'ticket-coverage';
  findings: CoverageFinding[];
}

export type CredentialKind = 'aws-root' | 'aws-iam-user' | 'aws-role' | 'okta-user' | 'k8s-user';
export type RotationCheck = 'after-use' | 'max-age';
export type RotationStatus =
  | 'rotated'
  | 'late'
  | 'missing'
  | 'pending'
  | 'ok'
  | 'overdue'
  | 'no_history'
  | 'not_applicable'
  | 'unverifiable';

export interface RotationFinding {
  check: RotationCheck;
  identity: string;
  principal: string;
  kind: CredentialKind;
  /** AWS account, Okta org or Kubernetes cluster the credential lives in. */
  scope: string | null;
  /** After-use: the use (session) and its end; max-age: null. */
  sessionId: string | null;
  usedAt: string | null;
  /** When a rotation was due: use end + afterUseHours, or last rotation + maxAgeDays. */
  dueBy: string | null;
  rotatedAt: string | null;
  /** The evidence recognised as the rotation (e.g. `iam.amazonaws.com:ChangePassword`). */
  evidence: string | null;
  /** Max-age: the oldest stored event of the credential's source and scope (what "never rotated" can mean). */
  historySince: string | null;
  status: RotationStatus;
}

export interface RotationReport
  extends ReportBase<{
    credentials: number;
    uses: number;
    rotated: number;
    late: number;
    missing: number;
    pending: number;
    overdue: number;
    noHistory: number;
  }> {
  report: 'rotation-compliance';
  afterUseHours: number;
  maxAgeDays: number;
  findings: RotationFinding[];
}

export type AnyReport = ActivityReport | UnauthorizedReport | CoverageReport | RotationReport;
