/**
 * Prints `docs/alerts.md` example sections (native, OCSF, ECS) for alert types built by their own
 * constructors, so the documented examples are what the code emits:
 *
 *   node --import tsx scripts/alert-examples.ts breakglass.session_closed pipeline.tamper ...
 *
 * Fixed times and ids: the output is the same on every run.
 */
import type { AuditEvent } from '../core/event.js';
import { type Alert, type AlertType, completeAlert, pipelineAlert } from '../detectors/alerts/alert.js';
import { sessionClosedAlert } from '../detectors/alerts/event-alert.js';
import { formatAlert } from '../detectors/alerts/formats/index.js';
import { revocationIneffectiveAlert } from '../detectors/alerts/revocation-alert.js';
import type { Identity } from '../detectors/identities.js';
import { linkedSessionAlert } from '../detectors/people/alert.js';
import type { BreakGlassSession } from '../detectors/sessions.js';
import { deliveryFailedAlert } from '../detectors/stages/delivery-worker.js';
import { rotationMissingAlert } from '../reports/schedule.js';

const producer = { name: 'glasswatch', version: '0.1.0', instance: 'soc-eu1' };
const runbooks = { default: 'https://wiki.example.com/runbooks/break-glass' };
const complete = (a: Alert) => completeAlert(a, { producer, runbooks });

const session: BreakGlassSession = {
  id: 'gw-s-0c1f6e2a9d4b7e51a3f0c8d2',
  identity: 'okta-emergency-admin',
  source: 'okta',
  principal: 'emergency-admin@example.com',
  principalId: '00u1emergency0admin7',
  sourceIps: ['198.51.100.23'],
  keys: ['okta-emergency-admin\u0000102nQbsYyZTQ6qEvJ8vGx0rFw'],
  firstEventId: 'a1b2c3d4-0000-4000-8000-000000000001',
  startMs: Date.parse('2026-11-20T23:41:07.000Z'),
  endMs: Date.parse('2026-11-20T23:58:44.000Z'),
  events: 14,
  verdict: 'unauthorized',
  reason: 'self_approved',
  ticketId: 'CHG-4712',
  approvers: ['emergency-admin@example.com'],
  unauthorizedEventId: 'a1b2c3d4-0000-4000-8000-000000000001',
  activity: { command: 3, data: 0, config: 2 },
  account: null,
  org: 'example.okta.com',
  cluster: null,
  detectedAtMs: Date.parse('2026-11-20T23:41:07.412Z'),
  version: 15,
};

const BUILDERS: Partial<Record<AlertType, () => Alert>> = {
  'breakglass.session_closed': () => sessionClosedAlert(session, 1_800_000, Date.parse('2026-11-21T00:28:51.000Z')),
  'breakglass.rotation_missing': () =>
    rotationMissingAlert(
      {
        check: 'after-use',
        identity: 'aws-root',
        principal: 'arn:aws:iam::111122223333:root',
        kind: 'aws-root',
        scope: '111122223333',
        sessionId: 'gw-s-5e0a7d1c93b24f68a0e1d7c4',
        usedAt: '2026-11-20T22:17:03.000Z',
        dueBy: '2026-11-21T22:17:03.000Z',
        rotatedAt: null,
        evidence: null,
        historySince: '2025-10-26T00:00:00.000Z',
        status: 'missing',
      } as Parameters<typeof rotationMissingAlert>[0],
      24,
      '2026-11-22T06:00:00.000Z',
    ),
  'breakglass.revocation_ineffective': () =>
    revocationIneffectiveAlert({
      identity: { id: 'okta-emergency-admin' } as Parameters<typeof revocationIneffectiveAlert>[0]['identity'],
      event: {
        source: 'okta',
        id: 'a1b2c3d4-0000-4000-8000-000000000031',
        time: '2026-11-20T23:44:52.000Z',
        actor: { id: '00u1emergency0admin7', name: 'emergency-admin@example.com', type: 'User', sessionKey: '102nQbsYyZTQ6qEvJ8vGx0rFw' },
        action: 'group.user_membership.add',
        targets: [{ id: '00g1admins', type: 'UserGroup', name: 'Okta Administrators' }],
        outcome: 'success',
        outcomeReason: null,
        sourceIp: '198.51.100.23',
        userAgent: 'Mozilla/5.0',
        account: null,
        org: 'example.okta.com',
        cluster: null,
        raw: {},
      },
      revocationId: 'gw-4e2a0d9c1b7f3a5e6c8d0b21:okta',
      sessionId: session.id,
      target: 'okta',
      record: {
        revocationId: 'gw-4e2a0d9c1b7f3a5e6c8d0b21:okta',
        alertId: 'gw-4e2a0d9c1b7f3a5e6c8d0b21',
        sessionId: session.id,
        identity: 'okta-emergency-admin',
        target: 'okta',
        principal: 'emergency-admin@example.com',
        outcome: 'revoked',
        detail: 'cleared the Okta sessions (and OAuth tokens) of 00u1emergency0admin7',
        attempts: 1,
        requestedAt: '2026-11-20T23:41:07.412Z',
        completedAt: '2026-11-20T23:41:07.905Z',
        timeToRevokeMs: 905,
      },
      handle: 'okta:session:102nQbsYyZTQ6qEvJ8vGx0rFw',
      afterSeconds: 225,
      allowanceSeconds: 10,
      detectedAtMs: Date.parse('2026-11-20T23:44:52.388Z'),
    }),
  'breakglass.linked_session': () => {
    const login = 'emergency-admin@example.com';
    const arn = `arn:aws:sts::111122223333:assumed-role/OktaAdmins/${login}`;
    const saml: AuditEvent = {
      source: 'cloudtrail',
      id: 'c3d4e5f6-0000-4000-8000-000000000047',
      time: '2026-11-20T23:41:19.000Z',
      actor: { id: `Xq1x9EZtExAmPlEOkTaIdP0=:${login}`, name: login, type: 'SAMLUser', sessionKey: null },
      action: 'sts.amazonaws.com:AssumeRoleWithSAML',
      targets: [{ id: 'arn:aws:iam::111122223333:role/OktaAdmins', type: 'AWS::IAM::Role', name: 'OktaAdmins' }],
      outcome: 'success',
      outcomeReason: null,
      sourceIp: '198.51.100.23',
      userAgent: 'Mozilla/5.0',
      account: '111122223333',
      org: null,
      cluster: null,
      raw: {},
    };
    return linkedSessionAlert(
      { id: 'okta-emergency-admin', revocation: { mode: 'auto', targets: ['okta'], followLinked: true } } as Identity,
      { ...session, personId: login },
      {
        id: 'act-5b0e2d7c91a4f3e8d6c1',
        personId: login,
        source: 'cloudtrail',
        key: arn,
        principal: login,
        principalId: saml.actor.id,
        firstMs: Date.parse(saml.time),
        lastMs: Date.parse(saml.time),
        lastEvent: saml,
        breakGlassSessionId: null,
        checked: true,
      },
      saml,
      { following: 'now', detectedAtMs: Date.parse('2026-11-20T23:41:19.204Z') },
    );
  },
  'pipeline.tamper': () =>
    pipelineAlert({
      type: 'pipeline.tamper',
      severity: 'high',
      key: ['object', 'AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/111122223333_CloudTrail_eu-west-1_20261120T2300Z_x.json.gz'],
      source: 'cloudtrail',
      reason:
        'AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/111122223333_CloudTrail_eu-west-1_20261120T2300Z_x.json.gz: mismatch: SHA-256 differs from its digest',
      time: '2026-11-21T00:04:12.000Z',
      detectedAt: '2026-11-21T00:04:12.000Z',
      summary:
        'CloudTrail log-file validation: AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/111122223333_CloudTrail_eu-west-1_20261120T2300Z_x.json.gz: mismatch: SHA-256 differs from its digest. Someone with write access to the trail bucket may be hiding activity; compare with `aws cloudtrail validate-logs`.',
    }),
  'pipeline.delivery_failed': () => {
    const original = complete(
      sessionClosedAlert({ ...session, verdict: 'unauthorized' }, 1_800_000, Date.parse('2026-11-21T00:28:51.000Z')),
    );
    const failed = deliveryFailedAlert(original, 'soc-webhook', 41, 'HTTP 503 from https://soc.example.com/hooks/glasswatch', 1440);
    return { ...failed, detectedAt: '2026-11-22T00:28:51.000Z' };
  },
};

function section(type: AlertType): string {
  const build = BUILDERS[type];
  if (!build) throw new Error(`no example builder for ${type} (have: ${Object.keys(BUILDERS).join(', ')})`);
  const a = complete(build());
  const block = (format: 'native' | 'ocsf' | 'ecs') =>
    `<details><summary>${format}</summary>\n\n\`\`\`json\n${JSON.stringify(formatAlert(a, format), null, 2)}\n\`\`\`\n\n</details>\n`;
  return `### Example: \`${type}\`\n\n${block('native')}\n${block('ocsf')}\n${block('ecs')}`;
}

const types = process.argv.slice(2) as AlertType[];
if (types.length === 0) {
  process.stderr.write(`usage: scripts/alert-examples.ts <type...> (${Object.keys(BUILDERS).join(', ')})\n`);
  process.exit(2);
}
process.stdout.write(types.map(section).join('\n'));
