import type { RevocationMode, RevocationRecord } from '../revoke/dispatcher.js';
import { type Alert, alertId, type RevocationModeText, revocationNextStep, type Severity } from './alert.js';

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
  return {
    ...unauthorized,
    id: alertId('breakglass.revocation', r.revocationId, r.outcome),
    type: 'breakglass.revocation',
    severity: SEVERITY[r.outcome],
    severityId: undefined,
    reason: unauthorized.reason,
    detectedAt: r.completedAt,
    summary: `break-glass session of ${unauthorized.identity ?? 'unknown identity'} (${r.principal ?? 'unknown principal'}): ${what}. ${nextStep}`,
    revocation: {
      target: r.target,
      outcome: r.outcome,
      timeToRevokeSeconds: seconds,
      detail: r.detail,
      nextStep,
    },
  };
}
