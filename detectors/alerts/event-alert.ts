import type { AuditEvent } from '../../core/event.js';
import type { RuleMatch } from '../../rules/engine/index.js';
import type { Identity } from '../identities.js';
import { categoryOf } from '../review.js';
import type { BreakGlassSession } from '../sessions.js';
import { type Alert, type AlertType, alertId, attackOfTags, breakGlassAttack, type Severity, severityOfLevel } from './alert.js';

/**
 * The alerts the detector raises for one event: a break-glass verdict or attempt (`breakGlassAlert`,
 * the caller gives id, type, severity and summary) and a Sigma rule match (`ruleAlert`), each with
 * the scope and action of the event (schema 2.0).
 */
export function breakGlassAlert(
  type: AlertType,
  id: string,
  severity: Severity,
  identity: Identity,
  e: AuditEvent,
  detectedAtMs: number,
  extra: Partial<Alert> & { summary: string },
): Alert {
  return {
    id,
    type,
    severity,
    identity: identity.id,
    source: e.source,
    eventIds: [e.id],
    ticketId: null,
    reason: null,
    category: null,
    ruleId: null,
    ruleTitle: null,
    ruleAuthor: null,
    sessionId: null,
    principal: e.actor.name,
    sourceIp: e.sourceIp,
    time: e.time,
    detectedAt: new Date(detectedAtMs).toISOString(),
    ...eventScope(e),
    attack: breakGlassAttack(e.source),
    ...extra,
  };
}

export function ruleAlert(
  type: 'rule.match' | 'breakglass.activity',
  m: RuleMatch,
  e: AuditEvent,
  identity: Identity | null,
  session: BreakGlassSession | null,
  detectedAtMs: number,
): Alert {
  return {
    id: alertId(type, m.rule, e.source, e.id),
    type,
    severity: severityOfLevel(m.level),
    identity: identity?.id ?? null,
    source: e.source,
    eventIds: [e.id],
    ticketId: session?.ticketId ?? null,
    reason: null,
    category: type === 'rule.match' ? null : categoryOf(m),
    ruleId: m.id ?? m.rule,
    ruleTitle: m.title,
    ruleAuthor: m.author ?? null,
    sessionId: session?.id ?? null,
    principal: e.actor.name,
    sourceIp: e.sourceIp,
    time: e.time,
    detectedAt: new Date(detectedAtMs).toISOString(),
    summary: `${m.title} (${e.actor.name ?? 'unknown'})`,
    ...eventScope(e),
    attack: attackOfTags(m.tags),
  };
}

/** Where it happened and what was done (schema 2.0 scope and action). */
export function eventScope(e: AuditEvent): Pick<Alert, 'account' | 'org' | 'cluster' | 'action' | 'target'> {
  const t = e.targets[0];
  return {
    account: e.account,
    org: e.org,
    cluster: e.cluster,
    action: e.action || null,
    target: t ? { id: t.id, type: t.type, name: t.name } : null,
  };
}

/**
 * `breakglass.session_closed` (live): the session saw no event for the idle gap at its partition's
 * event time. PagerDuty resolves the session's incident with it; chat and e-mail outputs get it in
 * the session's grouped update.
 */
export function sessionClosedAlert(s: BreakGlassSession, idleMs: number, detectedAtMs: number): Alert {
  const minutes = Math.round(idleMs / 60_000);
  const ticket = s.ticketId ? ` under ticket ${s.ticketId}` : '';
  return {
    id: alertId('breakglass.session_closed', s.identity, s.source, s.id),
    type: 'breakglass.session_closed',
    severity: 'informational',
    identity: s.identity,
    source: s.source,
    eventIds: [s.firstEventId],
    ticketId: s.ticketId,
    reason: s.reason,
    category: null,
    ruleId: null,
    ruleTitle: null,
    ruleAuthor: null,
    sessionId: s.id,
    principal: s.principal,
    sourceIp: s.sourceIps[0] ?? null,
    time: new Date(s.endMs).toISOString(),
    detectedAt: new Date(detectedAtMs).toISOString(),
    summary: `break-glass session of ${s.identity} (${s.principal ?? 'unknown principal'}) ended: ${s.events} event(s), ${s.verdict}${ticket}; no event for ${minutes} min`,
    account: s.account,
    org: s.org,
    cluster: s.cluster,
    action: null,
    target: null,
    attack: breakGlassAttack(s.source),
  };
}
