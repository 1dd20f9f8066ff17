import type { AuditEvent } from '../../core/event.js';
import { normalizeDocument } from '../../ingest/index.js';

/** Raw records shaped like the real sources, normalized by the real normalizers. */
let n = 0;
const nextId = (p: string) => `${p}-${String(++n).padStart(6, '0')}`;

export function normalize(raw: Record<string, unknown>, cluster?: string): AuditEvent {
  const results = normalizeDocument(raw, { file: 'test', line: null, index: null }, cluster ? { cluster } : {});
  const r = results[0];
  if (r?.kind !== 'event') throw new Error(`fixture did not normalize: ${JSON.stringify(r)}`);
  return r.event;
}

export function cloudtrail(
  time: string,
  eventName: string,
  userIdentity: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): AuditEvent {
  return normalize({
    eventVersion: '1.09',
    eventID: nextId('ct'),
    eventTime: time,
    eventSource:
      eventName === 'ConsoleLogin'
        ? 'signin.amazonaws.com'
        : eventName.startsWith('Get') && eventName.includes('Secret')
          ? 'secretsmanager.amazonaws.com'
          : 'iam.amazonaws.com',
    eventName,
    awsRegion: 'us-east-1',
    sourceIPAddress: '198.51.100.9',
    userAgent: 'aws-cli/2.17',
    recipientAccountId: '111122223333',
    userIdentity,
    requestParameters: null,
    responseElements: null,
    ...extra,
  });
}

export const root = (key?: string) => ({
  type: 'Root',
  principalId: '111122223333',
  arn: 'arn:aws:iam::111122223333:root',
  accountId: '111122223333',
  ...(key ? { accessKeyId: key } : {}),
});
export const bgRole = (key: string, created = '2026-11-20T09:00:00Z') => ({
  type: 'AssumedRole',
  principalId: 'AROABG:alice',
  arn: 'arn:aws:sts::111122223333:assumed-role/BreakGlassAdmin/alice',
  accountId: '111122223333',
  accessKeyId: key,
  sessionContext: {
    sessionIssuer: { type: 'Role', userName: 'BreakGlassAdmin', arn: 'arn:aws:iam::111122223333:role/BreakGlassAdmin' },
    attributes: { creationDate: created, mfaAuthenticated: 'true' },
  },
});
export const iamUser = (name: string) => ({
  type: 'IAMUser',
  principalId: `AIDA${name}`,
  arn: `arn:aws:iam::111122223333:user/${name}`,
  accountId: '111122223333',
  userName: name,
  accessKeyId: `AKIA${name}`,
});

export function okta(time: string, eventType: string, login: string, extra: Record<string, unknown> = {}): AuditEvent {
  return normalize({
    uuid: nextId('okta'),
    published: time,
    eventType,
    version: '0',
    severity: 'INFO',
    actor: { id: `00u-${login}`, type: 'User', alternateId: login, displayName: login },
    client: { ipAddress: '198.51.100.30', userAgent: { rawUserAgent: 'Mozilla/5.0' } },
    outcome: { result: 'SUCCESS' },
    target: [],
    authenticationContext: { externalSessionId: 'sess-1' },
    ...extra,
  });
}

export function k8s(
  time: string,
  verb: string,
  user: Record<string, unknown>,
  objectRef: Record<string, unknown>,
  code = 200,
  ip = '10.0.0.5',
): AuditEvent {
  return normalize(
    {
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level: 'Metadata',
      auditID: nextId('k8s'),
      stage: 'ResponseComplete',
      requestURI: `/api/v1/${String(objectRef.resource)}`,
      verb,
      user,
      sourceIPs: [ip],
      userAgent: 'kubectl/v1.31',
      objectRef,
      responseStatus: { metadata: {}, code },
      requestReceivedTimestamp: time,
      stageTimestamp: time,
    },
    'prod-eu1',
  );
}
