import { GlasswatchError } from '../../core/errors.js';
import { signedHeaders } from '../../core/signing.js';
import type { RevocationRequest, RevocationResult, RevocationTarget } from './types.js';

export interface WebhookRevokerOptions {
  url: string;
  secret: string;
  timeoutMs?: number;
}

/**
 * Generic signed revocation webhook: for IdPs, PAM tools or SOAR playbooks glasswatch
 * has no native client for. The receiver answers 2xx when the session is cut,
 * `409 {"outcome":"not_revocable","detail":...}` when it cannot be.
 */
export class WebhookRevoker implements RevocationTarget {
  readonly kind = 'webhook' as const;
  constructor(readonly options: WebhookRevokerOptions) {}

  async revoke(r: RevocationRequest): Promise<RevocationResult> {
    const body = JSON.stringify({
      idempotencyKey: r.idempotencyKey,
      identity: r.identity,
      principal: r.principal,
      principalId: r.principalId,
      reason: r.reason,
      sessionId: r.session.id,
      alert: r.alert,
    });
    let res: Response;
    try {
      res = await fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': r.idempotencyKey, ...signedHeaders(this.options.secret, body) },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
      });
    } catch (cause) {
      throw new GlasswatchError('BG_REVOKE_WEBHOOK', `revocation webhook unreachable: ${(cause as Error).message}`, {
        stage: 'sending',
        retriable: true,
        cause,
      });
    }
    const text = await res.text();
    if (res.status === 409) {
      let detail = 'receiver says the session cannot be revoked';
      try {
        detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
      } catch {}
      return { outcome: 'not_revocable', detail };
    }
    if (!res.ok) {
      throw new GlasswatchError('BG_REVOKE_WEBHOOK', `revocation webhook answered HTTP ${res.status}`, {
        stage: 'sending',
        retriable: res.status >= 500 || res.status === 429 || res.status === 408,
      });
    }
    return { outcome: 'revoked', detail: `webhook accepted (HTTP ${res.status})` };
  }
}
