/**
 * The normalized audit event every stage after ingest works on.
 *
 * Normalization is lossy by design (a few dozen fields out of hundreds), so the
 * untouched original travels with it as `raw`: Sigma rules and the SQL retro-hunt
 * run over `raw`, never over the normalized view.
 */
export const SOURCES = ['cloudtrail', 'okta', 'k8s'] as const;
export type Source = (typeof SOURCES)[number];

export type Outcome = 'success' | 'failure' | 'unknown';

export interface Actor {
  /** Stable principal id: CloudTrail principalId / ARN, Okta user id, Kubernetes uid or username. */
  id: string | null;
  /** Human-facing name: IAM user name or ARN, Okta alternateId (login), Kubernetes username. */
  name: string | null;
  /** Source's own principal kind: Root, IAMUser, AssumedRole, User, SystemPrincipal, ... */
  type: string | null;
  /**
   * What ties several events of one actor into one session: AWS access key id (or the
   * console session's), Okta externalSessionId, Kubernetes username@sourceIP.
   */
  sessionKey: string | null;
}

export interface Target {
  id: string | null;
  type: string | null;
  name: string | null;
}

export interface AuditEvent {
  source: Source;
  /** The source's own id: CloudTrail eventID, Okta uuid, Kubernetes auditID. */
  id: string;
  /** Event time, ISO 8601 UTC with milliseconds. */
  time: string;
  actor: Actor;
  /** CloudTrail `eventSource:eventName`, Okta eventType, Kubernetes `verb resource[/subresource]`. */
  action: string;
  targets: Target[];
  outcome: Outcome;
  /** Error code or failure reason when the source gives one. */
  outcomeReason: string | null;
  sourceIp: string | null;
  userAgent: string | null;
  /** AWS account id (recipientAccountId) when known. */
  account: string | null;
  /** AWS Organization id or Okta org host when known. */
  org: string | null;
  /** Kubernetes cluster name when known (from config or the AKS wrapper). */
  cluster: string | null;
  /** The untouched original record, exactly as the source produced it. */
  raw: Record<string, unknown>;
}

export function isSource(value: unknown): value is Source {
  return typeof value === 'string' && (SOURCES as readonly string[]).includes(value);
}
