/**
 * The report story of fixtures.ts with what an auditor asks about added (all through the real
 * `glasswatch replay` into chDB):
 *
 *  T-100 gets a `requested` version (03-09 11:00) before its approval and a `closed` one (03-10 10:05).
 *  E1 03-11 01:00-01:29  breakglass-ops, 30 events (key AKIAOPS3), 9 h before T-104's window (10:00-11:00): early use
 *  E2 03-12 00:30-00:40  breakglass-ops (key AKIAOPS4) under T-105 (03-11 23:00 - 03-12 02:00), self-approved by dave:
 *                        the window spans two days, the use is in the second
 *  T-106 (k8s-breakglass, 03-13 12:00-13:00) approved by its own requester and never used.
 *  A second failed Root sign-in, 03-11 03:00 from 198.51.100.99.
 *  The detector links a use up to 10 h from a window (detector.nearWindowMinutes: 600).
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ACCOUNT, type Fixture, writeFixture } from './fixtures.js';

let n = 0;
const eventId = () => `ax-${String(++n).padStart(4, '0')}-0000-4000-8000-000000000000`;

function opsCall(time: string, name: string, key: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const [source, event] = name.split(':') as [string, string];
  return {
    eventVersion: '1.09',
    userIdentity: {
      type: 'IAMUser',
      principalId: 'AIDAOPS',
      arn: `arn:aws:iam::${ACCOUNT}:user/breakglass-ops`,
      accountId: ACCOUNT,
      userName: 'breakglass-ops',
      accessKeyId: key,
    },
    eventTime: time,
    eventSource: source,
    eventName: event,
    awsRegion: 'us-east-1',
    sourceIPAddress: '198.51.100.10',
    userAgent: 'aws-cli/2.22.4',
    requestParameters: null,
    responseElements: null,
    eventID: eventId(),
    eventType: 'AwsApiCall',
    recipientAccountId: ACCOUNT,
    ...extra,
  };
}

export const EARLY_USE_EVENTS = 30;

export function writeAuditorFixture(dir: string, extraConfig = ''): Fixture {
  const f = writeFixture(dir, extraConfig);
  writeFileSync(
    f.config,
    readFileSync(f.config, 'utf8').replace('  ruleMatchAlerts: false\n', '  ruleMatchAlerts: false\n  nearWindowMinutes: 600\n'),
  );
  const records: Record<string, unknown>[] = [];
  for (let i = 0; i < EARLY_USE_EVENTS; i++)
    records.push(
      opsCall(`2026-03-11T01:${String(i).padStart(2, '0')}:00Z`, 'ec2.amazonaws.com:DescribeInstances', 'AKIAOPS3', {
        requestParameters: { instancesSet: { items: [{ instanceId: `i-${i}` }] } },
      }),
    );
  records.push(opsCall('2026-03-12T00:30:00Z', 'sts.amazonaws.com:GetCallerIdentity', 'AKIAOPS4'));
  records.push(opsCall('2026-03-12T00:40:00Z', 'ec2.amazonaws.com:DescribeInstances', 'AKIAOPS4'));
  records.push({
    eventVersion: '1.09',
    userIdentity: { type: 'Root', principalId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:root`, accountId: ACCOUNT },
    eventTime: '2026-03-11T03:00:00Z',
    eventSource: 'signin.amazonaws.com',
    eventName: 'ConsoleLogin',
    awsRegion: 'us-east-1',
    sourceIPAddress: '198.51.100.99',
    userAgent: 'Mozilla/5.0',
    requestParameters: null,
    responseElements: { ConsoleLogin: 'Failure' },
    errorMessage: 'Failed authentication',
    eventID: eventId(),
    eventType: 'AwsConsoleSignIn',
    recipientAccountId: ACCOUNT,
  });
  writeFileSync(join(f.data, 'cloudtrail', 'auditor.json'), JSON.stringify({ Records: records }));
  const version = (t: Record<string, unknown>) => `\n${JSON.stringify({ status: 'approved', updatedAt: '2026-03-09T12:00:00Z', ...t })}`;
  const t100 = {
    id: 'T-100',
    identities: ['aws-breakglass-ops'],
    requester: 'alice@example.com',
    approvers: ['bob@example.com'],
    notBefore: '2026-03-10T09:00:00Z',
    notAfter: '2026-03-10T10:00:00Z',
    reason: 'db failover',
  };
  appendFileSync(
    f.tickets,
    [
      version({ ...t100, status: 'requested', approvers: [], updatedAt: '2026-03-09T11:00:00Z' }),
      version({ ...t100, status: 'closed', updatedAt: '2026-03-10T10:05:00Z' }),
      version({
        id: 'T-104',
        identities: ['aws-breakglass-ops'],
        requester: 'alice@example.com',
        approvers: ['bob@example.com'],
        notBefore: '2026-03-11T10:00:00Z',
        notAfter: '2026-03-11T11:00:00Z',
      }),
      version({
        id: 'T-105',
        identities: ['aws-breakglass-ops'],
        requester: 'dave@example.com',
        approvers: ['Dave@example.com '],
        notBefore: '2026-03-11T23:00:00Z',
        notAfter: '2026-03-12T02:00:00Z',
      }),
      version({
        id: 'T-106',
        identities: ['k8s-breakglass'],
        requester: 'erin@example.com',
        approvers: ['erin@example.com'],
        notBefore: '2026-03-13T12:00:00Z',
        notAfter: '2026-03-13T13:00:00Z',
      }),
    ].join(''),
  );
  return f;
}
