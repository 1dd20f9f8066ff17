import type { AuditEvent } from '../../core/event.js';
import type { Identity } from '../identities.js';
import type { RevocationMode, RevocationRecord } from '../revoke/dispatcher.js';
import { type Alert, alertId, type RevocationModeText, revocationNextStep, type Severity } from './alert.js';
import { breakGlassAlert } from './event-alert.js';

export function revocationModeText(mode: RevocationMode | undefined): RevocationModeText {
  return mode === 'auto' ? 'automatic' : mode === 'manual' ? 'manual' : 'off';
}

/** A failed or impossible revocation leaves an attacker in: as urgent as the unauthorized alert itself. */
const SEVERITY: Record<RevocationRecord['outcome'], Severity> = {
  revoked: 'high',
  failed: 'critical',
  not_revocable: 'critical',
  manual: 'critical',
};

/** `breakglass.revocation`: the outcome of one revocation attempt on the session of an unauthorized alert. */
export function revocationAlert(unauthorized: Alert, r: RevocationRecord): Alert {
  const seconds = r.timeToRevokeMs >= 0 ? Math.round(r.timeToRevokeMs) / 1000 : null;
  const nextStep = revocationNextStep(r.outcome, r.target, unauthorized.identity);
  const what =
    r.outcome === 'revoked'
      ? `revoked at ${r.target} in ${seconds} s`
      : r.outcome === 'manual'
        ? 'MANUAL revocation required'
        : r.outcome === 'not_revocable'
          ? `NOT REVOCABLE at ${r.target}`
          : `revocation at ${r.target} FAILED after ${r.attempts} attempt(s)`;
  // The linked sessions are the unauthorized alert's news; each revocation alert names its own session.
  const { linkedSessions: _listed, ...parent } = unauthorized;
  return {
    ...parent,
    id: alertId('breakglass.revocation', r.revocationId, r.outcome),
    type: 'breakglass.revocation',
    severity: SEVERITY[r.outcome],
    severityId: undefined,
    reason: unauthorized.reason,
    detectedAt: r.completedAt,
    summary: r.followedFrom
      ? `linked ${r.target} session ${r.sessionId} (${r.principal ?? 'unknown principal'}) of the person behind unauthorized session ${r.followedFrom} of ${unauthorized.identity ?? 'unknown identity'}: ${what}. ${nextStep}`
      : `break-glass session of ${unauthorized.identity ?? 'unknown identity'} (${r.principal ?? 'unknown principal'}): ${what}. ${nextStep}`,
    revocation: {
      target: r.target,
      outcome: r.outcome,
      timeToRevokeSeconds: seconds,
      detail: r.detail,
      nextStep,
    },
  };
}

/** `aws:key:AKIA…` → `aws key AKIA…`: a watched handle in words. */
export function handleText(handle: string): string {
  return handle.replace(/^(\w+):([\w-]+):/, '$1 $2 ');
}

/**
 * `breakglass.revocation_ineffective`: a revocation answered `revoked`, yet `event`, a successful
 * event by one of the session's handles after the target's allowance, shows the session still works.
 * One per revocation (the id is the revocation's).
 */
export function revocationIneffectiveAlert(o: {
  identity: Identity;
  event: AuditEvent;
  revocationId: string;
  sessionId: string;
  target: string;
  record: RevocationRecord;
  handle: string;
  afterSeconds: number;
  allowanceSeconds: number;
  detectedAtMs: number;
}): Alert {
  const e = o.event;
  const r = o.record;
  return breakGlassAlert(
    'breakglass.revocation_ineffective',
    alertId('breakglass.revocation_ineffective', o.revocationId),
    'critical',
    o.identity,
    e,
    o.detectedAtMs,
    {
      sessionId: o.sessionId,
      reason: 'revocation_ineffective',
      revocation: {
        target: o.target,
        outcome: 'revoked',
        timeToRevokeSeconds: r.timeToRevokeMs >= 0 ? r.timeToRevokeMs / 1000 : null,
        detail: r.detail,
        nextStep: `the session is still live: cut it off by hand now (the ${o.target} revocation did not hold) and find the path it did not cover`,
      },
      summary: `REVOCATION INEFFECTIVE: the ${o.target} revocation of the break-glass session of ${o.identity.id} answered revoked, but ${handleText(o.handle)} still succeeded ${o.afterSeconds} s later (allowance ${o.allowanceSeconds} s): ${e.action} (event ${e.id}) from ${e.sourceIp ?? 'unknown IP'}`,
    },
  );
}
