import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
import { k8sStandIn, oktaStandIn, type StandIn } from '../../detectors/revoke/standins.js';

/**
 * Issue contract: after `glasswatch replay <files> --config C --tickets T --store S`,
 * `glasswatch report run breakglass-activity --store S --format json` lists every
 * break-glass session of those files with the right verdicts and counts.
 */
const root = new URL('../../demo', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gw-report-e2e-'));
const stands: StandIn[] = [];

beforeAll(async () => {
  const oktaId = `00u${createHash('md5').update('emergency-admin@example.com').digest('hex').slice(0, 17)}`;
  const okta = await oktaStandIn({ token: 'o', users: [oktaId] });
  const k8s = await k8sStandIn({
    token: 'k',
    bindings: [{ kind: 'ClusterRoleBinding', name: 'bg', role: 'cluster-admin', subjects: [{ kind: 'User', name: 'breakglass-admin' }] }],
  });
  stands.push(okta, k8s);
  Object.assign(process.env, {
    GLASSWATCH_OKTA_URL: okta.url,
    GLASSWATCH_OKTA_TOKEN: 'o',
    GLASSWATCH_K8S_API: k8s.url,
    GLASSWATCH_K8S_TOKEN: 'k',
  });
});
afterAll(async () => {
  for (const s of stands) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('replay, then the breakglass-activity report', () => {
  it('lists every break-glass session of the demo incident with its verdict, counts and revocation', async () => {
    const store = join(dir, 'store');
    const code = await main([
      'replay',
      join(root, 'data'),
      '--config',
      join(root, 'glasswatch.yml'),
      '--tickets',
      join(root, 'tickets.jsonl'),
      '--store',
      store,
      '--alerts-out',
      join(dir, 'alerts.jsonl'),
      '--out',
      'none',
      '--quiet',
    ]);
    expect(code).toBe(3); // the demo carries two deliberately broken records
    const out = join(dir, 'report.json');
    expect(
      await main([
        'report',
        'run',
        'breakglass-activity',
        '--from',
        '2026-11-20T00:00:00Z',
        '--to',
        '2026-11-21T00:00:00Z',
        '--store',
        store,
        '--format',
        'json',
        '--out',
        out,
      ]),
    ).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.report).toBe('breakglass-activity');
    expect(report.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(report.totals).toMatchObject({ sessions: 4, authorized: 1, unauthorized: 3, attempts: 2 });
    const row = (identity: string) => report.sessions.find((s: { identity: string }) => s.identity === identity);
    expect(row('aws-breakglass-role')).toMatchObject({ verdict: 'authorized', ticketId: 'CHG-2041', events: 6, reason: null });
    expect(row('aws-root')).toMatchObject({ verdict: 'unauthorized', reason: 'no_ticket', events: 6, revocation: 'not_revocable' });
    // CHG-2050 (self-approved) is for the next morning, 9 h away: no explanation of this use (issue 10, item 1).
    expect(row('okta-emergency-admin')).toMatchObject({
      verdict: 'unauthorized',
      reason: 'no_ticket',
      ticketId: null,
      events: 4,
      revocation: 'revoked',
    });
    expect(row('k8s-breakglass')).toMatchObject({ verdict: 'unauthorized', reason: 'no_ticket', events: 5, revocation: 'not_revocable' });
    expect(row('okta-emergency-admin').timeToRevokeMs).toBeGreaterThanOrEqual(0);
    expect(row('aws-root').activity).toMatchObject({ data: 1 });
  }, 120_000);
});
