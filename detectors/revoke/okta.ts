import { GlasswatchError } from '../../core/errors.js';
import type { RevocationRequest, RevocationResult, RevocationTarget } from './types.js';

export interface OktaRevokerOptions {
  /** e.g. https://example.okta.com */
  orgUrl: string;
  /** `SSWS <api token>` or `Bearer <access token>` with okta.users.manage; a secret. */
  authorization: string;
  /** Also revoke OAuth/OIDC tokens issued to the user. @default true */
  oauthTokens?: boolean;
  /** Suspend the user after clearing sessions, so the credential cannot sign in again. @default false */
  suspend?: boolean;
  timeoutMs?: number;
}

/** Okta: `DELETE /api/v1/users/{id}/sessions` (204), optionally `POST /api/v1/users/{id}/lifecycle/suspend`. */
export class OktaRevoker implements RevocationTarget {
  readonly kind = 'okta' as const;
  constructor(readonly options: OktaRevokerOptions) {}

  async #call(method: string, path: string): Promise<Response> {
    const url = new URL(path, this.options.orgUrl);
    try {
      return await fetch(url, {
        method,
        headers: {
          authorization: this.options.authorization,
          accept: 'application/json',
          'content-type': 'application/json',
          'user-agent': 'glasswatch',
        },
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
    } catch (cause) {
      throw new GlasswatchError('BG_REVOKE_OKTA', `Okta ${method} ${url.pathname} failed: ${(cause as Error).message}`, {
        stage: 'sending',
        retriable: true,
        cause,
      });
    }
  }

  async revoke(r: RevocationRequest): Promise<RevocationResult> {
    const userId = r.principalId;
    if (!userId) return { outcome: 'not_revocable', detail: 'the Okta events carry no actor id; clear the sessions in the Admin Console' };
    const id = encodeURIComponent(userId);
    const oauth = this.options.oauthTokens ?? true;
    const res = await this.#call('DELETE', `/api/v1/users/${id}/sessions?oauthTokens=${oauth}`);
    await res.arrayBuffer().catch(() => undefined);
    if (res.status !== 204 && res.status !== 200) {
      const retryAfter = res.headers.get('x-rate-limit-reset');
      throw new GlasswatchError(
        'BG_REVOKE_OKTA',
        `Okta clear sessions answered HTTP ${res.status}${retryAfter ? ` (rate limit resets at ${retryAfter})` : ''}`,
        {
          stage: 'sending',
          retriable: res.status === 429 || res.status >= 500,
          hint:
            res.status === 403 ? 'the API token needs the okta.users.manage scope / an admin role that can manage this user' : undefined,
        },
      );
    }
    let detail = `cleared all sessions of ${userId}${oauth ? ' and revoked its OAuth tokens' : ''}`;
    if (this.options.suspend) {
      const s = await this.#call('POST', `/api/v1/users/${id}/lifecycle/suspend`);
      await s.arrayBuffer().catch(() => undefined);
      if (!s.ok)
        throw new GlasswatchError('BG_REVOKE_OKTA', `sessions cleared, but suspending ${userId} answered HTTP ${s.status}`, {
          stage: 'sending',
          retriable: s.status >= 500 || s.status === 429,
        });
      detail += '; user suspended';
    }
    return { outcome: 'revoked', detail };
  }
}
