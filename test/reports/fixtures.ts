/**
 * A small break-glass story on 2026-03-10 (UTC), written as raw CloudTrail and Okta files and
 * replayed through the real detector into a chDB store. What the reports must find:
 *
 *  S1 09:10-09:40  breakglass-ops (IAM user) under T-100 (alice, approved by bob): authorized, 1 data
 *  S2 13:10-13:45  breakglass-ops under T-101 (window 13:00-13:30): unauthorized outside_window, overrun 15 min
 *  S3 18:05-18:10  emergency-admin (Okta) under T-103, self-approved: unauthorized self_approved, 1 config
 *  S4 22:00-22:10  Root, no ticket: unauthorized no_ticket, 1 config + 1 data; a failed Root sign-in at 21:55
 *  T-102 (for an identity never used): approved, unused
 *  Rotation evidence: alice UpdateLoginProfile breakglass-ops 03-10 10:30 (after S1: rotated);
 *  alice Create+DeleteAccessKey breakglass-ops 03-11 20:00/20:05 (after S2, past 24 h: late);
 *  carol resets emergency-admin's password 03-11 09:00 (after S3: rotated); nothing for Root (missing).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../cli/main.js';

export const ACCOUNT = '111122223333';
export const PERIOD = { from: '2026-03-10T00:00:00Z', to: '2026-03-12T00:00:00Z' };
/** Sorts, quotes and escapes: the requester and approver of the self-approved ticket. */
export const HOSTILE_REQUESTER = '<b>Mallory</b>, "ops" & co';

let n = 0;
const id = (prefix: string) => `${prefix}-${String(++n).padStart(4, '0')}-0000-4000-8000-000000000000`;

function ct(time: string, name: string, who: 'root' | 'ops' | 'alice', extra: Record<string, unknown> = {}): Record<string, unknown> {
  const identity =
    who === 'root'
      ? {
          type: 'Root',
          principalId: ACCOUNT,
          arn: `arn:aws:iam::${ACCOUNT}:root`,
          accountId: ACCOUNT,
          accessKeyId: 'ASIAROOTCONSOLE00001',
          sessionContext: { attributes: { creationDate: '2026-03-10T22:00:00Z', mfaAuthenticated: 'true' } },
        }
      : who === 'ops'
        ? {
            type: 'IAMUser',
            principalId: 'AIDAOPS',
            arn: `arn:aws:iam::${ACCOUNT}:user/breakglass-ops`,
            accountId: ACCOUNT,
            userName: 'breakglass-ops',
            accessKeyId: extra.key ?? 'AKIAOPS1',
          }
        : {
            type: 'IAMUser',
            principalId: 'AIDAALICE',
            arn: `arn:aws:iam::${ACCOUNT}:user/alice`,
            accountId: ACCOUNT,
            userName: 'alice',
            accessKeyId: 'AKIAALICE',
          };
  const [source, event] = name.split(':') as [string, string];
  const { key: _key, ...rest } = extra;
  return {
    eventVersion: '1.09',
    userIdentity: identity,
    eventTime: time,
    eventSource: source,
    eventName: event,
    awsRegion: 'us-east-1',
    sourceIPAddress: who === 'root' ? '203.0.113.77' : '198.51.100.10',
    userAgent: 'aws-cli/2.22.4',
    requestParameters: null,
    responseElements: null,
    eventID: id('ct'),
    eventType: 'AwsApiCall',
    recipientAccountId: ACCOUNT,
    ...rest,
  };
}

function okta(
  time: string,
  type: string,
  actor: string,
  target: Record<string, unknown>[] = [],
  result = 'SUCCESS',
): Record<string, unknown> {
  return {
    uuid: id('ok'),
    published: time,
    eventType: type,
    version: '0',
    severity: 'INFO',
    displayMessage: type,
    actor: { id: `00u-${actor}`, type: 'User', alternateId: actor, displayName: actor },
    client: { ipAddress: '192.0.2.50', userAgent: { rawUserAgent: 'Mozilla/5.0' } },
    outcome: { result, reason: null },
    target,
    authenticationContext: { externalSessionId: `sess-${actor}` },
  };
}

const ticket = (t: Record<string, unknown>) => JSON.stringify({ status: 'approved', updatedAt: '2026-03-09T12:00:00Z', ...t });

function rule(title: string, logsource: string, selection: string, tag: string): string {
  return `title: ${title}
id: 6f0c9f0e-0000-4000-8000-${String(++n).padStart(12, '0')}
status: test
logsource:
${logsource}
detection:
  selection:
    ${selection}
  condition: selection
tags:
  - glasswatch.${tag}
level: medium
`;
}

export interface Fixture {
  dir: string;
  config: string;
  tickets: string;
  data: string;
  store: string;
}

/** Writes the story and a config into `dir`; `extraConfig` is appended YAML (reports, smtp, schedules). */
export function writeFixture(dir: string, extraConfig = ''): Fixture {
  const data = join(dir, 'data');
  const rules = join(dir, 'rules');
  mkdirSync(join(data, 'cloudtrail'), { recursive: true });
  mkdirSync(join(data, 'okta'), { recursive: true });
  mkdirSync(rules, { recursive: true });
  const aws = '  product: aws\n  service: cloudtrail';
  writeFileSync(join(rules, 'secret.yml'), rule('Test secret read', aws, 'eventName: GetSecretValue', 'data'));
  writeFileSync(join(rules, 'logging.yml'), rule('Test logging stopped', aws, 'eventName: StopLogging', 'config'));
  writeFileSync(
    join(rules, 'okta.yml'),
    rule('Test privilege grant', '  product: okta\n  service: okta', 'eventType: user.account.privilege.grant', 'config'),
  );

  const records = [
    ct('2026-03-10T09:10:00Z', 'sts.amazonaws.com:GetCallerIdentity', 'ops'),
    ct('2026-03-10T09:25:00Z', 'secretsmanager.amazonaws.com:GetSecretValue', 'ops', { requestParameters: { secretId: 'prod/db' } }),
    ct('2026-03-10T09:40:00Z', 'ec2.amazonaws.com:DescribeInstances', 'ops'),
    ct('2026-03-10T10:30:00Z', 'iam.amazonaws.com:UpdateLoginProfile', 'alice', { requestParameters: { userName: 'breakglass-ops' } }),
    ct('2026-03-10T13:10:00Z', 'sts.amazonaws.com:GetCallerIdentity', 'ops', { key: 'AKIAOPS2' }),
    ct('2026-03-10T13:20:00Z', 'ec2.amazonaws.com:DescribeInstances', 'ops', { key: 'AKIAOPS2' }),
    ct('2026-03-10T13:45:00Z', 'ec2.amazonaws.com:RebootInstances', 'ops', { key: 'AKIAOPS2' }),
    ct('2026-03-10T21:55:00Z', 'signin.amazonaws.com:ConsoleLogin', 'root', {
      responseElements: { ConsoleLogin: 'Failure' },
      errorMessage: 'Failed authentication',
    }),
    ct('2026-03-10T22:00:00Z', 'signin.amazonaws.com:ConsoleLogin', 'root', { responseElements: { ConsoleLogin: 'Success' } }),
    ct('2026-03-10T22:05:00Z', 'cloudtrail.amazonaws.com:StopLogging', 'root', { requestParameters: { name: 'org-trail' } }),
    ct('2026-03-10T22:10:00Z', 'secretsmanager.amazonaws.com:GetSecretValue', 'root', { requestParameters: { secretId: 'prod/root' } }),
    ct('2026-03-11T20:00:00Z', 'iam.amazonaws.com:CreateAccessKey', 'alice', { requestParameters: { userName: 'breakglass-ops' } }),
    ct('2026-03-11T20:05:00Z', 'iam.amazonaws.com:DeleteAccessKey', 'alice', {
      requestParameters: { userName: 'breakglass-ops', accessKeyId: 'AKIAOPS1' },
    }),
  ];
  writeFileSync(join(data, 'cloudtrail', 'trail.json'), JSON.stringify({ Records: records }));
  const admin = 'emergency-admin@example.com';
  const events = [
    okta('2026-03-10T18:05:00.000Z', 'user.session.start', admin),
    okta('2026-03-10T18:07:00.000Z', 'user.account.privilege.grant', admin, [
      { id: '00u-x', type: 'User', alternateId: 'x@example.com', displayName: 'x' },
    ]),
    okta('2026-03-10T18:10:00.000Z', 'user.session.access_admin_app', admin),
    okta('2026-03-11T09:00:00.000Z', 'user.account.reset_password', 'carol@example.com', [
      { id: '00u-ea', type: 'User', alternateId: admin, displayName: 'Emergency Admin' },
    ]),
  ];
  writeFileSync(join(data, 'okta', 'system-log.json'), JSON.stringify(events));

  const tickets = join(dir, 'tickets.jsonl');
  writeFileSync(
    tickets,
    [
      ticket({
        id: 'T-100',
        identities: ['aws-breakglass-ops'],
        requester: 'alice@example.com',
        approvers: ['bob@example.com'],
        notBefore: '2026-03-10T09:00:00Z',
        notAfter: '2026-03-10T10:00:00Z',
        reason: 'db failover',
      }),
      ticket({
        id: 'T-101',
        identities: ['aws-breakglass-ops'],
        requester: 'alice@example.com',
        approvers: ['bob@example.com'],
        notBefore: '2026-03-10T13:00:00Z',
        notAfter: '2026-03-10T13:30:00Z',
      }),
      ticket({
        id: 'T-102',
        identities: ['k8s-breakglass'],
        requester: 'carol@example.com',
        approvers: ['dave@example.com'],
        notBefore: '2026-03-10T15:00:00Z',
        notAfter: '2026-03-10T16:00:00Z',
      }),
      ticket({
        id: 'T-103',
        identities: ['okta-emergency-admin'],
        requester: HOSTILE_REQUESTER,
        approvers: [HOSTILE_REQUESTER],
        notBefore: '2026-03-10T18:00:00Z',
        notAfter: '2026-03-10T19:00:00Z',
      }),
    ].join('\n'),
  );

  const store = join(dir, 'store');
  const config = join(dir, 'glasswatch.yml');
  writeFileSync(
    config,
    `store:
  path: ${JSON.stringify(store)}
detector:
  builtinRules: false
  rules: [${JSON.stringify(rules)}]
  ruleMatchAlerts: false
identities:
  - id: aws-root
    source: cloudtrail
    match: { userIdentity.type: Root }
    revocation: { mode: manual }
  - id: aws-breakglass-ops
    source: cloudtrail
    match: { userIdentity.userName: breakglass-ops }
    revocation: { mode: manual }
  - id: okta-emergency-admin
    source: okta
    match: { actor.alternateId: ${admin} }
    revocation: { mode: manual }
  - id: k8s-breakglass
    source: k8s
    match: { user.username: breakglass-admin }
    revocation: { mode: manual }
${extraConfig}`,
  );
  return { dir, config, tickets, data, store };
}

/** Replays the story through `glasswatch replay` (the real detector path) into the fixture's store. */
export async function replayFixture(f: Fixture): Promise<void> {
  const code = await main(['replay', f.data, '--config', f.config, '--tickets', f.tickets, '--store', f.store, '--out', 'none', '--quiet']);
  if (code !== 0) throw new Error(`replay exited ${code}`);
}
