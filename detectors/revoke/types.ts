import type { AuditEvent } from '../../core/event.js';
import type { Alert } from '../alerts/alert.js';
import type { BreakGlassSession } from '../sessions.js';

export type RevocationOutcome = 'revoked' | 'failed' | 'not_revocable' | 'manual';

export interface RevocationRequest {
  alert: Alert;
  session: BreakGlassSession;
  /** Identity registry entry id. */
  identity: string;
  /** IAM user / role ARN, Okta user id, Kubernetes username. */
  principal: string | null;
  principalId: string | null;
  /** Kubernetes groups of the principal, when known. */
  groups: string[];
  reason: string;
  /** The event that made the session unauthorized: targets read the source's own principal from it. */
  event: AuditEvent;
  /** Same for every attempt of the same revocation: receivers deduplicate on it. */
  idempotencyKey: string;
  /**
   * A revocation that follows a link (`revocation.followLinked`): the unauthorized break-glass
   * session it followed from; `session` is then the person's linked session in `followTarget`'s plane.
   */
  followedFrom?: string;
  followTarget?: RevocationTarget['kind'];
}

export interface RevocationResult {
  outcome: Exclude<RevocationOutcome, 'manual' | 'failed'>;
  /** What was done or why nothing could be: shown to the SOC and in reports. */
  detail: string;
}

/** One way of cutting a session off. Throws a GlasswatchError (retriable or not) on failure. */
export interface RevocationTarget {
  readonly kind: 'webhook' | 'okta' | 'aws' | 'k8s';
  revoke(request: RevocationRequest): Promise<RevocationResult>;
}
