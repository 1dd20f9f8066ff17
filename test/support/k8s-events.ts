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
