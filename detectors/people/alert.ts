import type { AuditEvent } from '../../core/event.js';
import { type Alert, alertId, attackOfTags } from '../alerts/alert.js';
import { breakGlassAlert } from '../alerts/event-alert.js';
import type { Identity } from '../identities.js';
import type { BreakGlassSession } from '../sessions.js';
import { linkedSessionOf, type PersonActivity } from './linker.js';

const PLANE = { cloudtrail: 'AWS', okta: 'Okta', k8s: 'Kubernetes' } as const;
const FOLLOWING = {
  now: 'revoking it too (revocation.followLinked)',
  later: "it is revoked with the session's own revocation (revocation.followLinked)",
  no: 'not revoked by glasswatch (revocation.followLinked is off): cut it off by hand',
} as const;

/**
 * `breakglass.linked_session`: the person behind an unauthorized break-glass session is active in
 * another plane, in a session found after the unauthorized alert (which lists the ones known then).
 * One per linked session; `eventIds[0]` is the linked session's event, `linkedSessions` the link.
 */
export function linkedSessionAlert(
  identity: Identity,
  session: BreakGlassSession,
  a: PersonActivity,
  e: AuditEvent,
  /** `now`: its revocation is ordered with this alert; `later`: with the session's own (e.g. after "was this you?"); `no`: followLinked is off. */
  o: { following: 'now' | 'later' | 'no'; detectedAtMs: number },
): Alert {
  const link = linkedSessionOf(a);
  return breakGlassAlert(
    'breakglass.linked_session',
    alertId('breakglass.linked_session', session.id, link.sessionId),
    'high',
    identity,
    e,
    o.detectedAtMs,
    {
      sessionId: session.id,
      reason: session.reason,
      ticketId: session.ticketId,
      linkedSessions: [link],
      // The same person moving on with another plane's credentials: lateral movement with valid accounts.
      attack: attackOfTags(['attack.lateral-movement', e.source === 'k8s' ? 'attack.t1078' : 'attack.t1078.004']),
      summary: `the person behind UNAUTHORIZED break-glass session ${session.id} of ${identity.id} (${a.personId}) is active in ${PLANE[a.source]} as ${a.source === 'cloudtrail' ? a.key : (a.principal ?? a.key)} since ${link.firstTime}: ${FOLLOWING[o.following]}`,
    },
  );
}
