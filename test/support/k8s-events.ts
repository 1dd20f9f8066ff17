/** A deterministic `audit.k8s.io/v1` Event number `n`, as the apiserver's webhook backend sends it. */
export function syntheticAuditEvent(n: number, options: { users?: number; resource?: 'secrets' | 'pods' } = {}): Record<string, unknown> {
  const t = new Date(Date.parse('2025-06-01T00:00:00Z') + n).toISOString();
  const resource = options.resource ?? 'secrets';
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
    stage: 'ResponseComplete',
    requestURI: `/api/v1/namespaces/default/${resource}`,
    verb: n % 5 === 0 ? 'get' : 'list',
    user: { username: `user${n % (options.users ?? 10)}`, groups: ['system:authenticated'] },
    sourceIPs: ['10.0.0.1'],
    userAgent: 'kubectl/v1.31',
    objectRef: { resource, namespace: 'default', apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: t,
    stageTimestamp: t,
    annotations: { 'glasswatch.test/seq': String(n) },
  };
}

/**
 * One apiserver batch (`EventList`) of `n` audit events of run `run` from number `from`: one in
 * `breakGlassEvery` is by its own break-glass user (`breakglass-admin-<i>`, a new session each), the
 * rest by 200 ordinary users. What the live benchmarks and the kill tests post to the webhook.
 */
export function auditListBody(run: string, from: number, n: number, breakGlassEvery = 0): string {
  const items = [];
  for (let i = from; i < from + n; i++) {
    const t = new Date(Date.UTC(2026, 10, 20, 10) + i).toISOString().replace('Z', '000Z');
    items.push({
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level: 'Metadata',
      auditID: `${run}-${i}`,
      stage: 'ResponseComplete',
      requestURI: `/api/v1/namespaces/team-${i % 50}/pods`,
      verb: i % 3 === 0 ? 'list' : 'get',
      user: {
        username: breakGlassEvery > 0 && i % breakGlassEvery === 0 ? `breakglass-admin-${i}` : `dev-${i % 200}@example.com`,
        groups: ['system:authenticated'],
      },
      sourceIPs: [`10.0.${(i >> 8) & 255}.${i & 255}`],
      userAgent: 'kubectl/v1.31.0',
      objectRef: { resource: 'pods', namespace: `team-${i % 50}`, apiVersion: 'v1' },
      responseStatus: { metadata: {}, code: 200 },
      requestReceivedTimestamp: t,
      stageTimestamp: t,
    });
  }
  return JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items });
}
