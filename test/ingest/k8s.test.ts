import { describe, expect, it } from 'vitest';
import { normalizeK8sEvent } from '../../ingest/index.js';
import { deads, events, run, skips } from './helpers.js';

describe('Kubernetes audit JSON lines (log backend)', () => {
  const results = run('k8s/audit-v1.ndjson', { cluster: 'prod-eu' });
  const [binding, exec, denied, healthz, legacy, noKind] = events(results);

  it('maps a cluster-admin style binding create', () => {
    expect(binding).toMatchObject({
      source: 'k8s',
      id: 'bbbbbbbb-0000-4000-8000-000000000001',
      time: '2024-07-01T12:00:00.123Z', // requestReceivedTimestamp, not the later stageTimestamp
      actor: { id: 'grace@example.com', name: 'grace@example.com', type: 'User', sessionKey: 'grace@example.com@172.16.0.5' },
      action: 'create clusterrolebindings',
      targets: [{ id: null, type: 'clusterrolebindings', name: 'grace-admin' }],
      outcome: 'success',
      sourceIp: '172.16.0.5',
      userAgent: 'kubectl/v1.30.0',
      cluster: 'prod-eu',
    });
  });

  it('maps subresources, 403s, service accounts and non-resource requests', () => {
    expect(exec).toMatchObject({ action: 'create pods/exec', targets: [{ type: 'pods', name: 'prod/api-7d9f' }], outcome: 'success' });
    expect(denied).toMatchObject({
      action: 'list secrets',
      outcome: 'failure',
      outcomeReason: 'Forbidden',
      actor: { id: '6f1e0000-sa', type: 'ServiceAccount' },
      targets: [{ name: 'kube-system/*' }],
    });
    expect(healthz).toMatchObject({ action: 'get /healthz', targets: [], actor: { type: 'Anonymous' } });
  });

  it('reads the legacy `timestamp` shape and lists the impersonated user as a target', () => {
    expect(legacy).toMatchObject({
      time: '2018-03-01T10:00:00.000Z',
      actor: { name: 'system:admin', type: 'User' },
      targets: [
        { type: 'secrets', name: 'default/*' },
        { type: 'ImpersonatedUser', name: 'henry' },
      ],
    });
  });

  it('recognises an Event line without kind/apiVersion', () => {
    expect(noKind?.id).toBe('bbbbbbbb-0000-4000-8000-000000000006');
  });

  it('dead-letters wrong types and a non-Event object', () => {
    expect(deads(results).map((d) => d.reason)).toEqual([
      'k8s: requestReceivedTimestamp is not a timestamp (42) at line 7',
      'k8s: user is not an object ("x") at line 8',
      'unrecognised record: no CloudTrail, Okta or Kubernetes audit shape (keys: kind) at line 9',
    ]);
  });
});

describe('Kubernetes envelopes', () => {
  it('reads an EventList (webhook body) item by item', () => {
    const results = run('k8s/eventlist.json');
    expect(results.map((r) => [r.kind, r.origin.path])).toEqual([
      ['event', 'items[0]'],
      ['event', 'items[1]'],
      ['dead', 'items[2]'],
    ]);
    // items[] implies Kubernetes, so the reason names the missing field rather than "unrecognised".
    expect(deads(results)[0]?.reason).toBe('k8s: auditID is missing at items[2]');
  });

  it('unwraps AKS diagnostics (log as string or object) and names the cluster from the resource id', () => {
    const results = run('k8s/aks-records.json', { cluster: 'ignored-default' });
    expect(results.map((r) => r.kind)).toEqual(['event', 'event', 'skipped', 'dead']);
    expect(events(results).map((e) => [e.action, e.cluster])).toEqual([
      ['create clusterrolebindings', 'PROD-AKS'],
      ['create pods/exec', 'PROD-AKS'],
    ]);
    expect(skips(results)[0]).toMatchObject({ what: 'azure-diagnostic:kube-apiserver', source: 'k8s' });
    expect(deads(results)[0]?.reason).toMatch(/^k8s: properties\.log is not valid JSON .* at records\[3\]\.properties\.log$/);
  });

  it('recognises and skips a GKE Cloud Audit Log entry', () => {
    expect(skips(run('k8s/gke-entry.json'))).toMatchObject([{ what: 'gke-cloud-audit-log', source: 'k8s' }]);
  });

  it('unwraps a SEKOIA sample wrapper', () => {
    expect(events(run('k8s/sekoia-wrapper.json'))[0]?.action).toBe('create clusterrolebindings');
  });

  it('exposes the record normalizer directly', () => {
    expect(normalizeK8sEvent({ auditID: 'a', verb: 'get', stageTimestamp: '2024-07-01T12:00:00Z', user: 'x' })).toBe(
      'user is not an object ("x")',
    );
    expect(
      normalizeK8sEvent({ auditID: 'a', verb: 'get', stageTimestamp: '2024-07-01T12:00:00Z', responseStatus: { code: '500' } }),
    ).toMatchObject({
      outcome: 'failure',
    });
  });
});

describe('Kubernetes responseStatus.code as a string (log shippers re-type numbers)', () => {
  const line = (code: unknown) =>
    JSON.stringify({
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      auditID: `code-${String(code)}`,
      stage: 'ResponseComplete',
      verb: 'get',
      requestURI: '/api/v1/namespaces/prod/secrets/db',
      user: { username: 'breakglass-admin', groups: ['system:masters'] },
      sourceIPs: ['203.0.113.7'],
      objectRef: { resource: 'secrets', namespace: 'prod', name: 'db' },
      responseStatus: { code },
      requestReceivedTimestamp: '2026-11-20T23:00:00.000000Z',
      stageTimestamp: '2026-11-20T23:00:00.010000Z',
    });

  it('keeps the event (never a dead letter): "403" is a failure, " 200 " a success, anything else unknown', () => {
    const results = run('codes.jsonl', {}, Buffer.from([line('403'), line(' 200 '), line('forbidden'), line({ x: 1 })].join('\n')));
    expect(deads(results)).toEqual([]);
    expect(events(results).map((e) => [e.id, e.outcome])).toEqual([
      ['code-403', 'failure'],
      ['code- 200 ', 'success'],
      ['code-forbidden', 'unknown'],
      ['code-[object Object]', 'unknown'],
    ]);
  });
});
