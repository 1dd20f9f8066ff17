import type { CompleteAlert } from '../alert.js';

/** ECS release the documents declare (`ecs.version`). */
export const ECS_VERSION = '9.4.0';
const MITRE_URL = 'https://attack.mitre.org';

const CATEGORY: Record<CompleteAlert['type'], string[]> = {
  'breakglass.unauthorized': ['iam', 'session', 'intrusion_detection'],
  'breakglass.authorized': ['iam', 'session'],
  'breakglass.attempt': ['authentication', 'intrusion_detection'],
  'breakglass.activity': ['iam', 'configuration', 'api'],
  'breakglass.revocation': ['iam', 'session'],
  'breakglass.revocation_ineffective': ['iam', 'session', 'intrusion_detection'],
  'breakglass.linked_session': ['iam', 'session', 'intrusion_detection'],
  'breakglass.session_closed': ['iam', 'session'],
  'breakglass.rotation_missing': ['iam', 'configuration'],
  'breakglass.requested': ['iam'],
  'breakglass.approved': ['iam'],
  'breakglass.approval_overdue': ['iam'],
  'rule.match': ['intrusion_detection', 'api'],
  'pipeline.silence': ['configuration'],
  'pipeline.ticket_forged': ['configuration', 'intrusion_detection'],
  'pipeline.poison': ['configuration'],
  'pipeline.delivery_failed': ['configuration'],
  'pipeline.tamper': ['configuration', 'intrusion_detection'],
};

/**
 * The alert as an ECS 9 document (`event.kind: alert`: a detection made outside the Elastic
 * Stack). glasswatch fields without an ECS home go under the custom `glasswatch.*` set.
 */
export function toEcs(a: CompleteAlert): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    '@timestamp': a.detectedAt,
    ecs: { version: ECS_VERSION },
    message: a.summary,
    tags: ['glasswatch', a.type],
    event: {
      kind: 'alert',
      id: a.id,
      code: a.type,
      module: 'glasswatch',
      dataset: 'glasswatch.alerts',
      category: CATEGORY[a.type],
      // `info` is the one type every category above expects (ECS pairs event.type values with categories).
      type: ['info'],
      severity: a.severityId,
      created: a.detectedAt,
      start: a.time,
      ...(a.action ? { action: a.action } : {}),
      ...(a.reason ? { reason: a.reason } : {}),
      ...(a.source ? { provider: a.source } : {}),
      ...(a.runbook && /^https?:\/\//.test(a.runbook) ? { reference: a.runbook } : {}),
    },
  };
  if (a.ruleId || a.ruleTitle)
    doc.rule = {
      ...(a.ruleId ? { id: a.ruleId } : {}),
      ...(a.ruleTitle ? { name: a.ruleTitle } : {}),
      ...(a.ruleAuthor ? { author: [a.ruleAuthor] } : {}),
      ...(a.references[0] ? { reference: a.references[0] } : {}),
      ...(a.category ? { category: a.category } : {}),
      ruleset: 'glasswatch',
    };
  if (a.attack.tactics.length || a.attack.techniques.length) {
    const tech = a.attack.techniques.filter((t) => !t.id.includes('.'));
    const sub = a.attack.techniques.filter((t) => t.id.includes('.'));
    const parents = [...new Set([...tech.map((t) => t.id), ...sub.map((t) => t.id.split('.')[0] as string)])];
    doc.threat = {
      framework: 'MITRE ATT&CK',
      ...(a.attack.tactics.length
        ? {
            tactic: {
              id: a.attack.tactics.map((t) => t.id ?? ''),
              name: a.attack.tactics.map((t) => t.name),
              reference: a.attack.tactics.map((t) => (t.id ? `${MITRE_URL}/tactics/${t.id}/` : '')),
            },
          }
        : {}),
      ...(parents.length
        ? {
            technique: {
              id: parents,
              reference: parents.map((id) => `${MITRE_URL}/techniques/${id}/`),
              ...(sub.length
                ? {
                    subtechnique: {
                      id: sub.map((t) => t.id),
                      reference: sub.map((t) => `${MITRE_URL}/techniques/${t.id.replace('.', '/')}/`),
                    },
                  }
                : {}),
            },
          }
        : {}),
    };
  }
  if (a.principal) doc.user = { name: a.principal };
  if (a.sourceIp) doc.source = { ip: a.sourceIp };
  if (a.account) doc.cloud = { provider: 'aws', account: { id: a.account } };
  if (a.cluster) doc.orchestrator = { type: 'kubernetes', cluster: { name: a.cluster } };
  const related: Record<string, string[]> = {};
  if (a.principal) related.user = [a.principal];
  // The same person under the other planes' names (`linkedSessions`): ECS related.user is for exactly this pivot.
  for (const l of a.linkedSessions ?? []) {
    if (!l.principal || related.user?.includes(l.principal)) continue;
    related.user = [...(related.user ?? []), l.principal];
  }
  if (a.sourceIp) related.ip = [a.sourceIp];
  if (Object.keys(related).length) doc.related = related;
  doc.glasswatch = {
    schema_version: a.schemaVersion,
    producer: a.producer,
    identity: a.identity,
    session_id: a.sessionId,
    ticket_id: a.ticketId,
    event_ids: a.eventIds,
    session_events: a.sessionEvents,
    org: a.org,
    target: a.target,
    runbook: a.runbook,
    references: a.references,
    revocation_mode: a.revocationMode,
    revocation: a.revocation,
    request: a.request,
    ...(a.linkedSessions ? { linked_sessions: a.linkedSessions } : {}),
  };
  return doc;
}
