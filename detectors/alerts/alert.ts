import { createHash } from 'node:crypto';
import type { Source } from '../../core/event.js';

export const ALERT_TYPES = [
  'breakglass.unauthorized',
  'breakglass.authorized',
  'breakglass.attempt',
  'breakglass.activity',
  'breakglass.revocation',
  'breakglass.revocation_ineffective',
  'breakglass.linked_session',
  'breakglass.session_closed',
  'breakglass.rotation_missing',
  'breakglass.requested',
  'breakglass.approved',
  'breakglass.approval_overdue',
  'rule.match',
  'pipeline.silence',
  'pipeline.ticket_forged',
  'pipeline.poison',
  'pipeline.delivery_failed',
  'pipeline.tamper',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];
export type Severity = 'informational' | 'low' | 'medium' | 'high' | 'critical';
export type ActivityCategory = 'command' | 'data' | 'config';

/** The one alert schema every output carries. Field names are a contract for SOC tooling. */
export interface Alert extends AlertScope {
  /** Deterministic: the same finding always gets the same id, so deliveries are idempotent across replays and restarts. */
  id: string;
  type: AlertType;
  severity: Severity;
  identity: string | null;
  source: Source | null;
  /** The triggering event first. */
  eventIds: string[];
  ticketId: string | null;
  reason: string | null;
  category: ActivityCategory | null;
  ruleId: string | null;
  ruleTitle: string | null;
  /** Sigma rule author, kept as the Detection Rule License requires. */
  ruleAuthor: string | null;
  sessionId: string | null;
  principal: string | null;
  sourceIp: string | null;
  /** Event time of the triggering event. */
  time: string;
  /** When glasswatch raised it (in replay: event time plus the measured processing time). */
  detectedAt: string;
  summary: string;
  /**
   * On `breakglass.unauthorized` when `detector.people` links planes: the same person's sessions in
   * the other planes within the link window (detectors/people). Absent when linking is off.
   */
  linkedSessions?: LinkedSession[];
}

/** A session of the same person in another plane (Okta, AWS, Kubernetes), as an alert lists it. */
export interface LinkedSession {
  /** A break-glass session's id, or `act-…` for the person's other activity. */
  sessionId: string;
  personId: string;
  source: Source;
  principal: string | null;
  /** First and last event of the linked session seen so far (ISO 8601 UTC). */
  firstTime: string;
  lastTime: string;
  breakGlass: boolean;
}

/**
 * An alert about the pipeline itself (silence, poison, a forged ticket): no identity, event, rule or
 * session. The id comes from `key`, so the same finding raised again (a re-read, a restart) is one alert.
 */
export function pipelineAlert(o: {
  type: AlertType;
  severity: Severity;
  key: string[];
  source?: Source | null;
  reason: string;
  time: string;
  detectedAt: string;
  summary: string;
}): Alert {
  return {
    id: alertId(o.type, ...o.key),
    type: o.type,
    severity: o.severity,
    identity: null,
    source: o.source ?? null,
    eventIds: [],
    ticketId: null,
    reason: o.reason,
    category: null,
    ruleId: null,
    ruleTitle: null,
    ruleAuthor: null,
    sessionId: null,
    principal: null,
    sourceIp: null,
    time: o.time,
    detectedAt: o.detectedAt,
    summary: o.summary,
  };
}

export function alertId(...parts: (string | null)[]): string {
  return `gw-${createHash('sha256')
    .update(parts.map((p) => p ?? '').join('\u0000'))
    .digest('hex')
    .slice(0, 24)}`;
}

export const SEVERITY_RANK: Record<Severity, number> = { informational: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** Sigma `level` to alert severity. */
export function severityOfLevel(level: string | null | undefined): Severity {
  switch (level) {
    case 'critical':
      return 'critical';
    case 'high':
      return 'high';
    case 'medium':
      return 'medium';
    case 'low':
      return 'low';
    default:
      return 'informational';
  }
}

/** Version of the native alert schema; bumped when a field changes meaning or disappears (adding fields is minor). */
export const ALERT_SCHEMA_VERSION = '2.0';

export interface Producer {
  name: string;
  version: string;
  /** Which glasswatch deployment raised it (config `alerts.instance`, else the host name). */
  instance: string;
}

export interface AlertTarget {
  id: string | null;
  type: string | null;
  name: string | null;
}

export interface AttackTactic {
  /** `TA0004`; null for a tactic name we cannot map. */
  id: string | null;
  /** `privilege-escalation`, as Sigma tags spell it. */
  name: string;
}

export interface AttackTechnique {
  /** `T1078` or `T1078.004`. */
  id: string;
}

export interface AlertAttack {
  tactics: AttackTactic[];
  techniques: AttackTechnique[];
}

/** How an unauthorized session of this identity is cut off (identity config `revocation.mode`). */
export type RevocationModeText = 'automatic' | 'manual' | 'off';

/** Carried by `breakglass.revocation` alerts: the response status the SOC acts on. */
export interface RevocationStatus {
  target: string;
  outcome: 'revoked' | 'failed' | 'not_revocable' | 'manual';
  /** From the triggering event to the target's answer; null when nobody revoked (manual). */
  timeToRevokeSeconds: number | null;
  detail: string;
  /** What the SOC must do now, in words. */
  nextStep: string;
}

/**
 * Fields added by schema 2.0. Optional in the type so collectors that raise pipeline alerts keep
 * compiling; `completeAlert` fills every one of them before an alert reaches the store or an output.
 */
export interface AlertScope {
  schemaVersion?: string;
  producer?: Producer;
  /** OCSF severity_id: 1 informational … 5 critical. */
  severityId?: number;
  account?: string | null;
  org?: string | null;
  cluster?: string | null;
  /** CloudTrail `eventSource:eventName`, Okta eventType, Kubernetes `verb resource`. */
  action?: string | null;
  target?: AlertTarget | null;
  attack?: AlertAttack;
  references?: string[];
  runbook?: string | null;
  /** Events of the session so far (eventIds may be capped; this is the true count). */
  sessionEvents?: number | null;
  /** On `breakglass.unauthorized`: whether glasswatch cuts the session off itself. */
  revocationMode?: RevocationModeText | null;
  revocation?: RevocationStatus | null;
  /** On `breakglass.requested` / `approved` / `approval_overdue`: the request as the ticket states it. */
  request?: TicketRequestFacts | null;
}

/** The ticket request behind a request or approval alert (times ISO 8601 UTC). */
export interface TicketRequestFacts {
  requester: string;
  approvers: string[];
  reason: string | null;
  /** The access window asked for. */
  notBefore: string;
  notAfter: string;
  /** When the ticket was first requested; null when no `requested` version of it is known. */
  requestedAt: string | null;
  /** On `breakglass.approved`: when it was approved. */
  approvedAt: string | null;
  /** Approved: from request to approval. Overdue: waited so far. Null when the request time is unknown. */
  waitSeconds: number | null;
  /** `tickets.approvalSlaMinutes` in force; null when none is set. */
  slaMinutes: number | null;
}

export type CompleteAlert = Alert & Required<AlertScope>;

export const SEVERITY_ID: Record<Severity, number> = { informational: 1, low: 2, medium: 3, high: 4, critical: 5 };

/** MITRE ATT&CK Enterprise tactics, as Sigma tags name them (`attack.privilege-escalation`). */
const TACTICS: Record<string, string> = {
  reconnaissance: 'TA0043',
  'resource-development': 'TA0042',
  'initial-access': 'TA0001',
  execution: 'TA0002',
  persistence: 'TA0003',
  'privilege-escalation': 'TA0004',
  'defense-evasion': 'TA0005',
  'credential-access': 'TA0006',
  discovery: 'TA0007',
  'lateral-movement': 'TA0008',
  collection: 'TA0009',
  'command-and-control': 'TA0011',
  exfiltration: 'TA0010',
  impact: 'TA0040',
};
const TACTIC_BY_ID = new Map(Object.entries(TACTICS).map(([name, id]) => [id, name]));
const TECHNIQUE_TAG = /^attack\.(t\d{4}(?:\.\d{3})?)$/;
const TACTIC_ID_TAG = /^attack\.(ta\d{4})$/;

/** Tactics and techniques from a rule's `attack.*` tags; other tags (`attack.g0016`, `cve.*`) are ignored. */
export function attackOfTags(tags: readonly string[]): AlertAttack {
  const tactics = new Map<string, AttackTactic>();
  const techniques = new Map<string, AttackTechnique>();
  for (const raw of tags) {
    const t = raw.toLowerCase().replace(/_/g, '-');
    if (!t.startsWith('attack.')) continue;
    const tech = TECHNIQUE_TAG.exec(t);
    if (tech?.[1]) {
      const id = tech[1].toUpperCase();
      techniques.set(id, { id });
      continue;
    }
    const taId = TACTIC_ID_TAG.exec(t)?.[1]?.toUpperCase();
    const name = taId ? TACTIC_BY_ID.get(taId) : t.slice('attack.'.length);
    const id = taId ?? (name ? TACTICS[name] : undefined);
    if (name && id) tactics.set(id, { id, name });
  }
  return { tactics: [...tactics.values()], techniques: [...techniques.values()] };
}

export interface AlertContext {
  producer: Producer;
  /** Runbook URL or text per identity id; `default` for the rest. */
  runbooks?: Readonly<Record<string, string>>;
  /** The rule's `references`, by rule id and by rule key. */
  ruleReferences?: ReadonlyMap<string, readonly string[]>;
}

/** Fills the schema 2.0 fields an alert was raised without (in place, and returns it). */
export function completeAlert(alert: Alert, ctx: AlertContext): CompleteAlert {
  const a = alert as Alert & AlertScope;
  a.schemaVersion ??= ALERT_SCHEMA_VERSION;
  a.producer ??= ctx.producer;
  a.severityId ??= SEVERITY_ID[a.severity];
  a.account ??= null;
  a.org ??= null;
  a.cluster ??= null;
  a.action ??= null;
  a.target ??= null;
  a.attack ??= { tactics: [], techniques: [] };
  a.references ??= [...((a.ruleId && ctx.ruleReferences?.get(a.ruleId)) || [])];
  a.runbook ??= (a.identity ? ctx.runbooks?.[a.identity] : undefined) ?? ctx.runbooks?.default ?? null;
  a.sessionEvents ??= null;
  a.revocationMode ??= null;
  a.revocation ??= null;
  a.request ??= null;
  return a as CompleteAlert;
}

/** The next step a SOC analyst takes after a revocation attempt, in words. */
export function revocationNextStep(outcome: RevocationStatus['outcome'], target: string, identity: string | null): string {
  const who = identity ?? 'the identity';
  switch (outcome) {
    case 'revoked':
      return `Session cut off at ${target}. Confirm with the user who used ${who} and why; rotate its credentials if the use is not explained.`;
    case 'failed':
      return `Revocation at ${target} FAILED: cut the session off by hand now (disable the principal, revoke its sessions), then rotate the credentials of ${who}.`;
    case 'not_revocable':
      return `${target} cannot revoke this session (for example AWS root): rotate the credentials of ${who} now and review everything the session did.`;
    case 'manual':
      return `Revocation is manual for ${who}: cut the session off by hand now, then rotate its credentials.`;
  }
}

/**
 * ATT&CK of a break-glass use itself (verdict and attempt alerts carry no rule): Valid Accounts,
 * Cloud Accounts for AWS and Okta identities; initial access and privilege escalation.
 */
export function breakGlassAttack(source: Source | null): AlertAttack {
  return attackOfTags(['attack.initial-access', 'attack.privilege-escalation', source === 'k8s' ? 'attack.t1078' : 'attack.t1078.004']);
}
