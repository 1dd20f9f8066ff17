// Generated audit records of one person federating from Okta into AWS (SAML) and Kubernetes (OIDC),
// in the shapes CloudTrail and the API server write them; shared by the linking tests and the bench.
import { type GlasswatchConfig, parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { kafkaTestOptions } from '../bus/helpers.js';
import { cloudtrail } from '../support/events.js';

export const ACCOUNT = '111122223333';
export const PEOPLE = { windowMinutes: 60, aws: { federatedRoles: ['AWSReservedSSO_*'] }, k8s: { oidcUsernamePrefix: 'oidc:' } };
export const oidcUser = (login: string) => `oidc:${login}`;
const roleId = (role: string) =>
  `AROA${role
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '')
    .slice(0, 12)}`;

export function identities(followLinked: boolean) {
  const follow = followLinked ? { followLinked: true } : {};
  return [
    {
      id: 'okta-emergency-admin',
      source: 'okta',
      match: { 'actor.alternateId': 'emergency-admin@example.com' },
      revocation: { mode: 'auto', targets: ['okta'], ...follow },
    },
    {
      id: 'aws-breakglass-role',
      source: 'cloudtrail',
      match: [
        { 'userIdentity.arn|contains': ':assumed-role/BreakGlass' },
        { eventName: 'AssumeRoleWithSAML', 'requestParameters.roleArn|endswith': ':role/BreakGlassAdmin' },
      ],
      revocation: { mode: 'auto', targets: ['aws'], ...follow },
    },
  ];
}

/**
 * `AssumeRoleWithSAML` as CloudTrail records it for an Okta SAML sign-in: userIdentity `SAMLUser`
 * (principalId `<issuer hash>:<NameID>`, userName the NameID = Okta login), the role session named
 * after the login (Okta's default RoleSessionName attribute).
 */
export function samlLogin(time: string, login: string, role: string): AuditEvent[] {
  const idp = 'Xq1x9EZtEXAMPLEhash=';
  return [
    cloudtrail(
      time,
      'AssumeRoleWithSAML',
      { type: 'SAMLUser', principalId: `${idp}:${login}`, userName: login, identityProvider: idp },
      {
        eventSource: 'sts.amazonaws.com',
        requestParameters: {
          sAMLAssertionID: `_${login.length}a1b2c3`,
          roleSessionName: login,
          roleArn: `arn:aws:iam::${ACCOUNT}:role/${role}`,
          principalArn: `arn:aws:iam::${ACCOUNT}:saml-provider/Okta`,
          durationSeconds: 3600,
        },
        responseElements: {
          credentials: { accessKeyId: `ASIA${roleId(role)}`, sessionToken: 'IQoJEXAMPLE', expiration: 'Nov 20, 2026, 11:47:52 PM' },
          assumedRoleUser: { assumedRoleId: `${roleId(role)}:${login}`, arn: `arn:aws:sts::${ACCOUNT}:assumed-role/${role}/${login}` },
          subject: login,
          subjectType: 'persistent',
          issuer: 'http://www.okta.com/exkEXAMPLE',
          audience: 'https://signin.aws.amazon.com/saml',
          nameQualifier: idp,
        },
      },
    ),
  ];
}

/** The `userIdentity` of calls made with the role session a SAML sign-in opened. */
export function federated(login: string, role: string, created: string) {
  return {
    type: 'AssumedRole',
    principalId: `${roleId(role)}:${login}`,
    arn: `arn:aws:sts::${ACCOUNT}:assumed-role/${role}/${login}`,
    accountId: ACCOUNT,
    accessKeyId: `ASIA${roleId(role)}`,
    sessionContext: {
      sessionIssuer: {
        type: 'Role',
        principalId: roleId(role),
        arn: `arn:aws:iam::${ACCOUNT}:role/${role}`,
        accountId: ACCOUNT,
        userName: role,
      },
      attributes: { creationDate: created, mfaAuthenticated: 'false' },
    },
  };
}

/**
 * The live linking config on the test broker: the identities following links, detector.people, and
 * the revocation targets of the stand-ins given (AWS IAM and Okta; Kubernetes when given).
 */
export function liveConfig(
  topics: Record<string, string>,
  stands: { iam: { url: string }; okta: { url: string }; k8s?: { url: string } },
  file: string,
): GlasswatchConfig {
  return parseConfig(
    {
      bus: { kind: 'kafka', brokers: kafkaTestOptions().brokers },
      topics,
      identities: identities(true),
      detector: { people: PEOPLE },
      revocation: {
        aws: { endpoint: stands.iam.url, accessKeyId: 'AKIAGLASSWATCH', secretAccessKey: 'secret' },
        okta: { orgUrl: stands.okta.url, token: 't0k' },
        ...(stands.k8s ? { k8s: { server: stands.k8s.url, token: 'sa-token' } } : {}),
      },
    },
    file,
  );
}
