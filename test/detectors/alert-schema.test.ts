import { describe, expect, it } from 'vitest';
import { packageVersion } from '../../core/paths.js';
import { ALERT_SCHEMA_VERSION, attackOfTags, SEVERITY_ID } from '../../detectors/alerts/alert.js';
import { replayDemo } from '../support/demo-alerts.js';

/** Issue 13, items 1 and 2: every alert carries scope, action, ATT&CK, producer and response status. */
const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

const run = replayDemo({
  instance: 'soc-test',
  runbooks: { 'aws-root': 'https://wiki.example.com/runbooks/aws-root', default: 'Call the on-call lead' },
});

describe('alert schema 2.0 on the demo incident', () => {
  it('every alert names its schema version, producer, severityId and uses ISO 8601 Z times', async () => {
    const { alerts } = await run;
    expect(alerts.length).toBeGreaterThan(10);
    for (const a of alerts) {
      expect(a.schemaVersion).toBe(ALERT_SCHEMA_VERSION);
      expect(a.producer).toEqual({ name: 'glasswatch', version: packageVersion(), instance: 'soc-test' });
      expect(a.severityId).toBe(SEVERITY_ID[a.severity as keyof typeof SEVERITY_ID]);
      expect(a.time).toMatch(ISO_Z);
      expect(a.detectedAt).toMatch(ISO_Z);
    }
  });

  it('scope and action of the triggering event: account, cluster, org, action, target', async () => {
    const { alerts } = await run;
    const root = alerts.find((a) => a.type === 'breakglass.unauthorized' && a.identity === 'aws-root');
    expect(root).toMatchObject({
      account: '111122223333',
      action: expect.stringMatching(/^signin\.amazonaws\.com:|:/),
      source: 'cloudtrail',
    });
    const k8s = alerts.filter((a) => a.source === 'k8s' && a.identity);
    expect(k8s.length).toBeGreaterThan(0);
    for (const a of k8s) expect(a).toMatchObject({ cluster: 'prod-eu1', action: expect.any(String) });
    const okta = alerts.filter((a) => a.source === 'okta' && a.identity);
    for (const a of okta) expect(a.org).toBe('example.okta.com');
    expect(alerts.some((a) => a.target && (a.target.name || a.target.id))).toBe(true);
  });

  it("activity alerts carry the rule's ATT&CK tactics and techniques and its references", async () => {
    const { alerts } = await run;
    const activity = alerts.filter((a) => a.type === 'breakglass.activity');
    expect(activity.length).toBeGreaterThan(0);
    for (const a of activity) expect(a.attack.tactics.length + a.attack.techniques.length).toBeGreaterThan(0);
    expect(activity.some((a) => a.attack.techniques.some((t: { id: string }) => /^T\d{4}(\.\d{3})?$/.test(t.id)))).toBe(true);
    expect(activity.some((a) => a.references.length > 0 && a.references.every((r: string) => r.startsWith('https://')))).toBe(true);
  });

  it('verdict and attempt alerts carry the ATT&CK of a break-glass use: Valid Accounts', async () => {
    const { alerts } = await run;
    const verdicts = alerts.filter((a) => ['breakglass.unauthorized', 'breakglass.authorized', 'breakglass.attempt'].includes(a.type));
    expect(verdicts.length).toBeGreaterThan(0);
    for (const a of verdicts) {
      expect(a.attack.techniques[0].id).toBe(a.source === 'k8s' ? 'T1078' : 'T1078.004');
      expect(a.attack.tactics.map((t: { id: string }) => t.id)).toEqual(['TA0001', 'TA0004']);
    }
  });

  it('runbook per identity, else the default', async () => {
    const { alerts } = await run;
    for (const a of alerts.filter((x) => x.identity)) {
      expect(a.runbook).toBe(a.identity === 'aws-root' ? 'https://wiki.example.com/runbooks/aws-root' : 'Call the on-call lead');
    }
  });

  it('session alerts list every event id of the session so far, triggering first, no duplicates', async () => {
    const { alerts } = await run;
    const session = alerts.filter((a) => a.sessionId);
    expect(session.length).toBeGreaterThan(0);
    const seen = new Map<string, Set<string>>();
    for (const a of session) {
      expect(new Set(a.eventIds).size).toBe(a.eventIds.length);
      expect(a.sessionEvents).toBeGreaterThanOrEqual(a.eventIds.length);
      const known = seen.get(a.sessionId) ?? new Set<string>();
      // Everything an earlier alert of the session listed is still listed (capped lists aside).
      if (a.eventIds.length < 500) for (const id of known) expect(a.eventIds).toContain(id);
      for (const id of a.eventIds) known.add(id);
      seen.set(a.sessionId, known);
    }
    expect(session.some((a) => a.type === 'breakglass.activity' && a.eventIds.length > 1)).toBe(true);
  });

  it('unauthorized alerts say whether revocation is automatic, manual or off; each attempt raises breakglass.revocation', async () => {
    const { alerts } = await run;
    const unauthorized = alerts.filter((a) => a.type === 'breakglass.unauthorized');
    expect(unauthorized.length).toBeGreaterThan(0);
    for (const a of unauthorized) expect(a.revocationMode).toBe(a.identity === 'k8s-breakglass' ? 'off' : 'manual');
    const revocations = alerts.filter((a) => a.type === 'breakglass.revocation');
    // manual identities: one outcome alert each; `off`: none.
    expect(revocations.length).toBe(unauthorized.filter((a) => a.revocationMode === 'manual').length);
    for (const r of revocations) {
      const u = unauthorized.find((a) => a.sessionId === r.sessionId);
      expect(u).toBeDefined();
      expect(r.revocation).toMatchObject({ target: 'manual', outcome: 'manual', timeToRevokeSeconds: null });
      expect(r.revocation.nextStep).toMatch(/cut the session off by hand/);
      expect(r.severity).toBe('critical');
      expect(r.id).not.toBe(u?.id);
    }
  });
});

describe('ATT&CK from Sigma tags', () => {
  it('maps tactic names and ids, techniques and sub-techniques; ignores the rest', () => {
    expect(
      attackOfTags(['attack.privilege_escalation', 'attack.t1078.004', 'attack.TA0005', 'attack.g0016', 'cve.2021-1', 'attack.t1098']),
    ).toEqual({
      tactics: [
        { id: 'TA0004', name: 'privilege-escalation' },
        { id: 'TA0005', name: 'defense-evasion' },
      ],
      techniques: [{ id: 'T1078.004' }, { id: 'T1098' }],
    });
  });
});
