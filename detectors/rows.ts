import type { Alert } from './alerts/alert.js';
import type { BreakGlassSession } from './sessions.js';

/** The `alerts` and `sessions` rows of the store (core/store/migrations.ts), written by the detector. */
export function alertRow(a: Alert): Record<string, unknown> {
  return {
    alert_id: a.id,
    type: a.type,
    severity: a.severity,
    identity: a.identity ?? '',
    source: a.source ?? '',
    event_ids: a.eventIds,
    ticket_id: a.ticketId ?? '',
    reason: a.reason ?? '',
    category: a.category ?? '',
    rule_id: a.ruleId ?? '',
    rule_title: a.ruleTitle ?? '',
    rule_author: a.ruleAuthor ?? '',
    session_id: a.sessionId ?? '',
    principal: a.principal ?? '',
    source_ip: a.sourceIp ?? '',
    time: a.time,
    detected_at: a.detectedAt,
    summary: a.summary,
  };
}

export function sessionRow(s: BreakGlassSession): Record<string, unknown> {
  return {
    session_id: s.id,
    version: s.version,
    identity: s.identity,
    source: s.source,
    principal: s.principal ?? '',
    verdict: s.verdict,
    reason: s.reason ?? '',
    ticket_id: s.ticketId ?? '',
    approvers: s.approvers,
    first_event_id: s.firstEventId,
    unauthorized_event_id: s.unauthorizedEventId ?? '',
    start: new Date(s.startMs).toISOString(),
    end: new Date(s.endMs).toISOString(),
    events: s.events,
    activity_command: s.activity.command,
    activity_data: s.activity.data,
    activity_config: s.activity.config,
    source_ips: s.sourceIps,
    account: s.account ?? '',
    org: s.org ?? '',
    cluster: s.cluster ?? '',
    detected_at: s.detectedAtMs === null ? null : new Date(s.detectedAtMs).toISOString(),
    keys: s.keys,
    person_id: s.personId ?? '',
    linked_session_ids: s.linkedSessionIds ?? [],
  };
}
