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

export interface ActivitySession {
  sessionId: string;
  identity: string;
  verdict: 'authorized' | 'unauthorized';
  reason: string | null;
  ticketId: string | null;
  approvers: string[];
  firstEventId: string;
  start: string;
  end: string;
  durationMs: number;
  events: number;
  activity: { command: number; data: number; config: number };
  timeToDetectMs: number | null;
  timeToRevokeMs: number | null;
  revocation: RevocationSummary;
}

export interface ActivityReport
  extends ReportBase<{ sessions: number; authorized: number; unauthorized: number; attempts: number; revocations: number }> {
  report: 'breakglass-activity';
  sessions: ActivitySession[];
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
  extends ReportBase<{ incidents: number; revoked: number; failed: number; notRevocable: number; manual: number; unrevoked: number }> {
  report: 'unauthorized-use';
  incidents: Incident[];
}

export const COVERAGE_KINDS = ['unused_ticket', 'use_without_ticket', 'self_approval', 'window_overrun'] as const;
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
  /** Sessions that used the ticket (ticket findings); how far a session ran outside its window (overruns). */
  uses: number | null;
  overrunMs: number | null;
  reason: string | null;
}

export interface CoverageReport
  extends ReportBase<{ tickets: number; unusedTickets: number; usesWithoutTicket: number; selfApprovals: number; windowOverruns: number }> {
  report: 'ticket-coverage';
  findings: CoverageFinding[];
}

export type CredentialKind = 'aws-root' | 'aws-iam-user' | 'aws-role' | 'okta-user' | 'k8s-user';
export type RotationCheck = 'after-use' | 'max-age';
export type RotationStatus = 'rotated' | 'late' | 'missing' | 'pending' | 'ok' | 'overdue' | 'not_applicable' | 'unverifiable';

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
  }> {
  report: 'rotation-compliance';
  afterUseHours: number;
  maxAgeDays: number;
  findings: RotationFinding[];
}

export type AnyReport = ActivityReport | UnauthorizedReport | CoverageReport | RotationReport;
