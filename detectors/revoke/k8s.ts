import { GlasswatchError } from '../../core/errors.js';
import { type HttpResponse, request } from '../../core/http.js';
import type { RevocationRequest, RevocationResult, RevocationTarget } from './types.js';

export interface K8sRevokerOptions {
  /** API server URL, e.g. https://10.0.0.1:6443 */
  server: string;
  /** Bearer token of a service account allowed to list and delete (cluster)rolebindings; a secret. */
  token: string;
  /** PEM CA bundle of the API server. */
  caCert?: string;
  timeoutMs?: number;
}

interface Subject {
  kind: string;
  name: string;
  namespace?: string;
}
interface Binding {
  metadata: { name: string; namespace?: string };
  subjects?: Subject[];
}

/** Groups every authenticated user has: deleting their bindings would break the cluster, not the intruder. */
const SHARED_GROUPS = new Set(['system:authenticated', 'system:unauthenticated', 'system:serviceaccounts']);
const RBAC = '/apis/rbac.authorization.k8s.io/v1';

/**
 * Kubernetes: delete the RoleBindings and ClusterRoleBindings that name the identity
 * as a subject. `system:masters` bypasses RBAC and client certificates cannot be
 * revoked, so those are reported `not_revocable` with what to rotate.
 */
export class K8sRevoker implements RevocationTarget {
  readonly kind = 'k8s' as const;
  constructor(readonly options: K8sRevokerOptions) {}

  async #request(method: 'GET' | 'DELETE', path: string): Promise<unknown> {
    const url = new URL(path, this.options.server);
    let res: HttpResponse;
    try {
      res = await request({
        method,
        url,
        headers: { authorization: `Bearer ${this.options.token}`, accept: 'application/json', 'user-agent': 'glasswatch' },
        ...(this.options.caCert ? { ca: this.options.caCert } : {}),
        timeoutMs: this.options.timeoutMs ?? 10_000,
      });
    } catch (cause) {
      throw new GlasswatchError('BG_REVOKE_K8S', `Kubernetes ${method} ${url.pathname} failed: ${(cause as Error).message}`, {
        stage: 'sending',
        retriable: true,
        cause,
      });
    }
    if (method === 'DELETE' && res.status === 404) return null; // already gone: idempotent
    if (res.status < 200 || res.status >= 300) {
      throw new GlasswatchError('BG_REVOKE_K8S', `Kubernetes ${method} ${url.pathname} answered HTTP ${res.status}`, {
        stage: 'sending',
        retriable: res.status >= 500 || res.status === 429,
        hint: res.status === 403 ? 'the glasswatch service account needs list/delete on rolebindings and clusterrolebindings' : undefined,
      });
    }
    return res.text ? JSON.parse(res.text) : null;
  }

  async revoke(r: RevocationRequest): Promise<RevocationResult> {
    const user = r.principal;
    if (!user) return { outcome: 'not_revocable', detail: 'the audit events carry no username' };
    const groups = r.groups.filter((g) => !SHARED_GROUPS.has(g));
    const masters = groups.includes('system:masters');
    const named = (s: Subject) =>
      (s.kind === 'User' && s.name === user) || (s.kind === 'Group' && groups.includes(s.name) && s.name !== 'system:masters');
    const cluster = ((await this.#request('GET', `${RBAC}/clusterrolebindings`)) as { items?: Binding[] } | null)?.items ?? [];
    const namespaced = ((await this.#request('GET', `${RBAC}/rolebindings`)) as { items?: Binding[] } | null)?.items ?? [];
    const deleted: string[] = [];
    for (const b of cluster.filter((b) => b.subjects?.some(named))) {
      await this.#request('DELETE', `${RBAC}/clusterrolebindings/${encodeURIComponent(b.metadata.name)}`);
      deleted.push(`clusterrolebinding/${b.metadata.name}`);
    }
    for (const b of namespaced.filter((b) => b.subjects?.some(named))) {
      await this.#request(
        'DELETE',
        `${RBAC}/namespaces/${encodeURIComponent(b.metadata.namespace ?? 'default')}/rolebindings/${encodeURIComponent(b.metadata.name)}`,
      );
      deleted.push(`rolebinding/${b.metadata.namespace}/${b.metadata.name}`);
    }
    const done = deleted.length ? `deleted ${deleted.join(', ')}` : 'no RBAC binding names this identity';
    if (masters) {
      return {
        outcome: 'not_revocable',
        detail: `${user} is in system:masters, which bypasses RBAC: rotate the credential or the cluster CA (${done})`,
      };
    }
    if (deleted.length === 0) {
      return {
        outcome: 'not_revocable',
        detail: `${done}; if ${user} authenticates with a client certificate, rotate the credential or CA`,
      };
    }
    return { outcome: 'revoked', detail: done };
  }
}
