import type { CompleteAlert } from '../alert.js';

/** OCSF schema version the findings declare (`metadata.version`). */
export const OCSF_VERSION = '1.8.0';
const CLASS_UID = 2004;
const CATEGORY_UID = 2;
const SEVERITY_CAPTION = ['Unknown', 'Informational', 'Low', 'Medium', 'High', 'Critical', 'Fatal'];
/** account.type_id (OCSF account object): 10 AWS Account. Okta orgs and clusters have no account type. */
const AWS_ACCOUNT = 10;
const MITRE_URL = 'https://attack.mitre.org';

/**
 * The alert as an OCSF Detection Finding (class 2004) with no profile applied, so that it
 * validates against the base class alone; glasswatch fields without an OCSF home (session, ticket,
 * revocation status, runbook) travel in `unmapped`.
 */
export function toOcsf(a: CompleteAlert): Record<string, unknown> {
  // A revocation outcome updates the finding of its session's unauthorized alert.
  // Update: a revocation outcome or the session's end says what became of an earlier finding.
  const activityId = a.type === 'breakglass.revocation' || a.type === 'breakglass.session_closed' ? 2 : 1;
  const detected = Date.parse(a.detectedAt);
  const attacks = [
    ...a.attack.techniques.map((t) => {
      const sub = t.id.includes('.');
      const parent = sub ? t.id.slice(0, t.id.indexOf('.')) : t.id;
      return {
        technique: { uid: parent, src_url: `${MITRE_URL}/techniques/${parent}/` },
        ...(sub ? { sub_technique: { uid: t.id, src_url: `${MITRE_URL}/techniques/${t.id.replace('.', '/')}/` } } : {}),
        ...(a.attack.tactics[0] ? { tactic: tactic(a.attack.tactics[0]) } : {}),
        ...(a.attack.tactics.length ? { tactics: a.attack.tactics.map(tactic) } : {}),
      };
    }),
    ...(a.attack.techniques.length ? [] : a.attack.tactics.map((t) => ({ tactic: tactic(t) }))),
  ];
  const user: Record<string, unknown> = { name: a.principal ?? a.identity ?? 'unknown' };
  if (a.account) user.account = { uid: a.account, type_id: AWS_ACCOUNT };
  if (a.org) user.domain = a.org;
  const evidence: Record<string, unknown> = { actor: { user } };
  if (a.sourceIp) evidence.src_endpoint = { ip: a.sourceIp };
  if (a.action) evidence.api = { operation: a.action };
  const resource: Record<string, unknown> | null = a.target
    ? {
        ...(a.target.id ? { uid: a.target.id } : {}),
        name: a.target.name ?? a.target.id ?? 'unknown',
        ...(a.target.type ? { type: a.target.type } : {}),
        ...(a.cluster ? { namespace: a.cluster } : {}),
      }
    : null;
  return {
    activity_id: activityId,
    activity_name: activityId === 1 ? 'Create' : 'Update',
    category_uid: CATEGORY_UID,
    category_name: 'Findings',
    class_uid: CLASS_UID,
    class_name: 'Detection Finding',
    type_uid: CLASS_UID * 100 + activityId,
    type_name: `Detection Finding: ${activityId === 1 ? 'Create' : 'Update'}`,
    severity_id: a.severityId,
    severity: SEVERITY_CAPTION[a.severityId] ?? 'Unknown',
    status_id: a.revocation?.outcome === 'revoked' ? 2 : 1,
    time: detected,
    message: a.summary,
    is_alert: a.type !== 'breakglass.authorized',
    metadata: {
      version: OCSF_VERSION,
      uid: a.id,
      ...(a.sessionId ? { correlation_uid: a.sessionId } : {}),
      log_name: 'glasswatch.alerts',
      original_time: a.time,
      product: { name: a.producer.name, vendor_name: 'glasswatch', version: a.producer.version },
      ...(a.source ? { log_provider: a.source } : {}),
    },
    finding_info: {
      uid: a.id,
      title: a.summary,
      types: [a.type],
      analytic: {
        type_id: 1,
        type: 'Rule',
        uid: a.ruleId ?? a.type,
        name: a.ruleTitle ?? a.type,
      },
      ...(attacks.length ? { attacks } : {}),
      created_time: detected,
      first_seen_time: Date.parse(a.time),
      ...(a.eventIds.length ? { related_events: a.eventIds.map((uid) => ({ uid })) } : {}),
      ...(a.references[0] ? { src_url: a.references[0] } : {}),
    },
    evidences: [evidence],
    ...(resource ? { resources: [resource] } : {}),
    unmapped: {
      schema_version: a.schemaVersion,
      instance: a.producer.instance,
      identity: a.identity,
      session_id: a.sessionId,
      ticket_id: a.ticketId,
      reason: a.reason,
      category: a.category,
      rule_author: a.ruleAuthor,
      account: a.account,
      org: a.org,
      cluster: a.cluster,
      runbook: a.runbook,
      references: a.references,
      session_events: a.sessionEvents,
      revocation_mode: a.revocationMode,
      revocation: a.revocation,
      request: a.request,
      ...(a.linkedSessions ? { linked_sessions: a.linkedSessions } : {}),
    },
  };
}

function tactic(t: { id: string | null; name: string }): Record<string, unknown> {
  return { ...(t.id ? { uid: t.id, src_url: `${MITRE_URL}/tactics/${t.id}/` } : {}), name: t.name };
}
