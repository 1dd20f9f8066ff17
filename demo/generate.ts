/**
 * Writes the bundled demo incident under demo/data/: one day of CloudTrail, Okta and
 * Kubernetes audit for a fictitious company (account 111122223333, example.com),
 * in the shapes each source really delivers. Deterministic: same bytes every run.
 *
 * The story (all times UTC, 2026-11-20):
 *  - 09:12 alice assumes the BreakGlassAdmin role under approved ticket CHG-2041 (approver bob)
 *    to fix a broken instance: an authorized break-glass session.
 *  - 22:41 someone fails, then succeeds, to sign in as the AWS root user from 203.0.113.77,
 *    creates an access key, stops the CloudTrail trail and reads a production secret: no ticket.
 *  - 22:47 the Okta emergency super-admin fails, then succeeds, to sign in and, scripted, within
 *    eight seconds opens the admin console, grants Super Administrator to mallory, resets bob's MFA
 *    factors and federates into AWS through Okta's SAML app (role OktaAdmins, session named after the
 *    login): no ticket. glasswatch clears the Okta session at the sign-in; the session is silent
 *    after it (verified from the logs), but the AWS role session it minted keeps working until
 *    22:52 — the same person's linked AWS session (detector.people), listed beside the Okta one.
 *  - 22:53 the Kubernetes breakglass-admin credential (system:masters) lists secrets, execs
 *    into a pod and binds cluster-admin to a new service account: no ticket.
 *  - Around it, ordinary traffic; one Kubernetes log line cut by rotation and one Okta event
 *    missing its timestamp (dead letters), and a CloudTrail digest file (skipped).
 *
 * Run: npm run demo:generate
 *
 * One file on purpose (it is longer than our usual ~400 lines): the whole incident reads top to
 * bottom as one story, and every record shape the demo shows is built here.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), 'data');
const ACCOUNT = '111122223333';
const DAY = '2026-11-20';
const ATTACKER_IP = '203.0.113.77';

let seq = 0;
/** Deterministic UUID-shaped ids. */
function uuid(tag: string): string {
  const h = createHash('sha256').update(`glasswatch-demo:${tag}:${seq++}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
let rng = 42;
function rand(): number {
  rng = (rng * 1103515245 + 12345) & 0x7fffffff;
  return rng / 0x7fffffff;
}
const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
const at = (hhmmss: string, ms = 0) => `${DAY}T${hhmmss}.${String(ms).padStart(3, '0')}Z`;
const ctTime = (iso: string) => iso.replace(/\.\d{3}Z$/, 'Z');
const clock = (minutes: number) => {
  const h = Math.floor(minutes / 60);
  const m = Math.floor(minutes % 60);
  const s = Math.floor((minutes * 60) % 60);
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
};

// ---------------------------------------------------------------- CloudTrail
type Rec = Record<string, unknown>;

function ct(time: string, eventSource: string, eventName: string, userIdentity: Rec, extra: Rec = {}): Rec {
  return {
    eventVersion: '1.09',
    userIdentity,
    eventTime: ctTime(time),
    eventSource,
    eventName,
    awsRegion: 'us-east-1',
    sourceIPAddress: '198.51.100.20',
    userAgent: 'aws-cli/2.17.0 Python/3.11.9 Linux/6.1 exe/x86_64',
    requestParameters: null,
    responseElements: null,
    requestID: uuid('req'),
    eventID: uuid('ct'),
    readOnly: eventName.startsWith('Describe') || eventName.startsWith('Get') || eventName.startsWith('List'),
    eventType: 'AwsApiCall',
    managementEvent: true,
    recipientAccountId: ACCOUNT,
    eventCategory: 'Management',
    ...extra,
  };
}

const iamUser = (name: string, key: string): Rec => ({
  type: 'IAMUser',
  principalId: `AIDA${createHash('md5').update(name).digest('hex').slice(0, 16).toUpperCase()}`,
  arn: `arn:aws:iam::${ACCOUNT}:user/${name}`,
  accountId: ACCOUNT,
  accessKeyId: key,
  userName: name,
});

const root = (key?: string): Rec => ({
  type: 'Root',
  principalId: ACCOUNT,
  arn: `arn:aws:iam::${ACCOUNT}:root`,
  accountId: ACCOUNT,
  ...(key ? { accessKeyId: key } : {}),
});

const breakGlassSession = (key: string): Rec => ({
  type: 'AssumedRole',
  principalId: 'AROAEXAMPLEBREAKGLASS:alice',
  arn: `arn:aws:sts::${ACCOUNT}:assumed-role/BreakGlassAdmin/alice`,
  accountId: ACCOUNT,
  accessKeyId: key,
  sessionContext: {
    sessionIssuer: {
      type: 'Role',
      principalId: 'AROAEXAMPLEBREAKGLASS',
      arn: `arn:aws:iam::${ACCOUNT}:role/BreakGlassAdmin`,
      accountId: ACCOUNT,
      userName: 'BreakGlassAdmin',
    },
    attributes: { creationDate: '2026-11-20T09:12:03Z', mfaAuthenticated: 'true' },
  },
});

function cloudtrailBackground(fromMin: number, toMin: number, n: number): Rec[] {
  const people = [
    iamUser('carol', 'AKIAEXAMPLECAROL0001'),
    iamUser('dave', 'AKIAEXAMPLEDAVE00002'),
    iamUser('ci-deployer', 'AKIAEXAMPLECIDEPLOY3'),
  ];
  const calls: [string, string, Rec | null][] = [
    ['ec2.amazonaws.com', 'DescribeInstances', { instancesSet: {}, filterSet: {} }],
    ['s3.amazonaws.com', 'ListBuckets', null],
    ['s3.amazonaws.com', 'GetBucketAcl', { bucketName: 'example-app-assets', acl: '' }],
    ['sts.amazonaws.com', 'GetCallerIdentity', null],
    ['kms.amazonaws.com', 'Decrypt', { encryptionAlgorithm: 'SYMMETRIC_DEFAULT' }],
    ['lambda.amazonaws.com', 'ListFunctions20150331', null],
    ['ssm.amazonaws.com', 'DescribeParameters', null],
    ['cloudformation.amazonaws.com', 'DescribeStacks', null],
  ];
  const out: Rec[] = [];
  for (let i = 0; i < n; i++) {
    const [src, name, params] = pick(calls);
    const minute = fromMin + ((toMin - fromMin) * i) / n;
    out.push(
      ct(at(clock(minute), Math.floor(rand() * 1000)), src, name, pick(people), {
        requestParameters: params,
        sourceIPAddress: pick(['198.51.100.20', '198.51.100.21', '10.20.3.14']),
      }),
    );
  }
  return out;
}

function cloudtrailMorning(): Rec[] {
  const alice = iamUser('alice', 'AKIAEXAMPLEALICE0004');
  const bgKey = 'ASIAEXAMPLEBREAKGL01';
  const bg = breakGlassSession(bgKey);
  const ip = '198.51.100.44';
  return [
    ct(at('09:12:03'), 'sts.amazonaws.com', 'AssumeRole', alice, {
      sourceIPAddress: ip,
      readOnly: true,
      requestParameters: { roleArn: `arn:aws:iam::${ACCOUNT}:role/BreakGlassAdmin`, roleSessionName: 'alice', durationSeconds: 3600 },
      responseElements: {
        credentials: { accessKeyId: bgKey, sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE', expiration: 'Nov 20, 2026, 10:12:03 AM' },
        assumedRoleUser: {
          assumedRoleId: 'AROAEXAMPLEBREAKGLASS:alice',
          arn: `arn:aws:sts::${ACCOUNT}:assumed-role/BreakGlassAdmin/alice`,
        },
      },
      resources: [{ accountId: ACCOUNT, type: 'AWS::IAM::Role', ARN: `arn:aws:iam::${ACCOUNT}:role/BreakGlassAdmin` }],
    }),
    ct(at('09:13:40'), 'ec2.amazonaws.com', 'DescribeInstances', bg, {
      sourceIPAddress: ip,
      requestParameters: { instancesSet: { items: [{ instanceId: 'i-0a1b2c3d4e5f60718' }] } },
    }),
    ct(at('09:15:02'), 'ec2.amazonaws.com', 'GetConsoleOutput', bg, {
      sourceIPAddress: ip,
      requestParameters: { instanceId: 'i-0a1b2c3d4e5f60718' },
    }),
    ct(at('09:21:17'), 'ec2.amazonaws.com', 'ModifyInstanceAttribute', bg, {
      sourceIPAddress: ip,
      readOnly: false,
      requestParameters: { instanceId: 'i-0a1b2c3d4e5f60718', instanceType: { value: 'm6i.large' } },
      responseElements: { _return: true },
    }),
    ct(at('09:24:55'), 'ec2.amazonaws.com', 'StartInstances', bg, {
      sourceIPAddress: ip,
      readOnly: false,
      requestParameters: { instancesSet: { items: [{ instanceId: 'i-0a1b2c3d4e5f60718' }] } },
    }),
    ct(at('09:31:08'), 'ssm.amazonaws.com', 'StartSession', bg, {
      sourceIPAddress: ip,
      readOnly: false,
      requestParameters: { target: 'i-0a1b2c3d4e5f60718' },
    }),
  ];
}

function cloudtrailNight(): Rec[] {
  const newKey = 'AKIAEXAMPLEROOTKEY99';
  const consoleLogin = (time: string, ok: boolean) =>
    ct(time, 'signin.amazonaws.com', 'ConsoleLogin', root(), {
      sourceIPAddress: ATTACKER_IP,
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0',
      readOnly: false,
      requestParameters: null,
      responseElements: { ConsoleLogin: ok ? 'Success' : 'Failure' },
      additionalEventData: { LoginTo: 'https://console.aws.amazon.com/console/home', MobileVersion: 'No', MFAUsed: 'No' },
      ...(ok ? {} : { errorMessage: 'Failed authentication' }),
      eventType: 'AwsConsoleSignIn',
    });
  const consoleRoot = {
    ...root('ASIAEXAMPLEROOTCONS1'),
    sessionContext: { attributes: { creationDate: '2026-11-20T22:41:52Z', mfaAuthenticated: 'false' } },
  };
  const web = { sourceIPAddress: ATTACKER_IP, userAgent: 'AWS Internal', readOnly: false };
  return [
    consoleLogin(at('22:41:10'), false),
    consoleLogin(at('22:41:52'), true),
    ct(at('22:42:30'), 'iam.amazonaws.com', 'ListUsers', consoleRoot, { ...web, readOnly: true }),
    ct(at('22:43:05'), 'iam.amazonaws.com', 'CreateAccessKey', consoleRoot, {
      ...web,
      requestParameters: null,
      responseElements: {
        accessKey: { accessKeyId: newKey, status: 'Active', userName: ACCOUNT, createDate: 'Nov 20, 2026, 10:43:05 PM' },
      },
    }),
    ct(at('22:44:12'), 'cloudtrail.amazonaws.com', 'StopLogging', root(newKey), {
      sourceIPAddress: ATTACKER_IP,
      userAgent: 'aws-cli/2.17.0 Python/3.11.9 Linux/6.1 exe/x86_64',
      readOnly: false,
      requestParameters: { name: `arn:aws:cloudtrail:us-east-1:${ACCOUNT}:trail/org-audit-trail` },
      resources: [
        { accountId: ACCOUNT, type: 'AWS::CloudTrail::Trail', ARN: `arn:aws:cloudtrail:us-east-1:${ACCOUNT}:trail/org-audit-trail` },
      ],
    }),
    ct(at('22:45:31'), 'secretsmanager.amazonaws.com', 'GetSecretValue', root(newKey), {
      sourceIPAddress: ATTACKER_IP,
      readOnly: true,
      requestParameters: { secretId: `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:prod/payments/db-AbCdEf` },
    }),
    ct(at('22:46:02'), 'iam.amazonaws.com', 'AttachUserPolicy', root(newKey), {
      sourceIPAddress: ATTACKER_IP,
      readOnly: false,
      requestParameters: { userName: 'svc-backup', policyArn: 'arn:aws:iam::aws:policy/AdministratorAccess' },
    }),
  ];
}

/** What the EventBridge "AWS API Call via CloudTrail" rule delivers, seconds after the call. */
function eventBridge(record: Rec): Rec {
  return {
    version: '0',
    id: uuid('eb'),
    'detail-type': 'AWS API Call via CloudTrail',
    source: `aws.${String(record.eventSource).split('.')[0]}`,
    account: ACCOUNT,
    time: record.eventTime,
    region: 'us-east-1',
    resources: [],
    detail: record,
  };
}

// ---------------------------------------------------------------- Okta
function okta(time: string, eventType: string, actor: Rec, extra: Rec = {}): Rec {
  return {
    uuid: uuid('okta'),
    published: time,
    eventType,
    version: '0',
    severity: 'INFO',
    legacyEventType: null,
    displayMessage: eventType,
    actor,
    client: {
      userAgent: {
        rawUserAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari/605.1.15',
        os: 'Mac OS X',
        browser: 'SAFARI',
      },
      zone: 'null',
      device: 'Computer',
      id: null,
      ipAddress: '198.51.100.30',
      geographicalContext: {
        city: 'Amsterdam',
        state: 'North Holland',
        country: 'Netherlands',
        postalCode: '1012',
        geolocation: { lat: 52.37, lon: 4.89 },
      },
    },
    outcome: { result: 'SUCCESS', reason: null },
    target: [],
    transaction: { type: 'WEB', id: uuid('tx').replace(/-/g, '').slice(0, 20), detail: {} },
    debugContext: { debugData: { requestUri: '/idp/idx/authenticate', url: '/idp/idx/authenticate?' } },
    authenticationContext: {
      authenticationProvider: null,
      credentialProvider: null,
      credentialType: null,
      issuer: null,
      interface: null,
      authenticationStep: 0,
      externalSessionId: 'trs-normal',
    },
    securityContext: { asNumber: 64496, asOrg: 'example isp', isp: 'example isp', domain: 'example.net', isProxy: false },
    ...extra,
  };
}
const oktaUser = (login: string, name: string): Rec => ({
  id: `00u${createHash('md5').update(login).digest('hex').slice(0, 17)}`,
  type: 'User',
  alternateId: login,
  displayName: name,
  detailEntry: null,
});
const emergency = oktaUser('emergency-admin@example.com', 'Emergency Administrator');

function oktaBackground(n: number): Rec[] {
  const people = [
    oktaUser('carol@example.com', 'Carol Díaz'),
    oktaUser('dave@example.com', 'Dave Okafor'),
    oktaUser('erin@example.com', 'Erin Walsh'),
    oktaUser('alice@example.com', 'Alice Moreau'),
  ];
  const out: Rec[] = [];
  for (let i = 0; i < n; i++) {
    const who = pick(people);
    const sid = `102${createHash('md5')
      .update(`${String(who.alternateId)}${i >> 2}`)
      .digest('hex')
      .slice(0, 20)}`;
    const type = pick(['user.session.start', 'user.authentication.sso', 'user.authentication.sso', 'policy.evaluate_sign_on']);
    out.push(
      okta(at(clock(420 + (900 * i) / n), Math.floor(rand() * 1000)), type, who, {
        authenticationContext: { externalSessionId: sid, authenticationStep: 0 },
      }),
    );
  }
  return out;
}

function oktaIncident(): { api: Rec[]; hook: Rec[] } {
  const sid = '102EmErGeNcYsEsSiOn01';
  const fromAttacker = (r: Rec): Rec => ({
    ...r,
    client: {
      ...(r.client as Rec),
      ipAddress: ATTACKER_IP,
      geographicalContext: { city: null, state: null, country: 'Unknown', postalCode: null, geolocation: null },
    },
  });
  const failed = fromAttacker(
    okta(at('22:47:03', 120), 'user.session.start', emergency, {
      outcome: { result: 'FAILURE', reason: 'INVALID_CREDENTIALS' },
      severity: 'WARN',
      authenticationContext: { externalSessionId: 'unknown', authenticationStep: 0 },
    }),
  );
  const login = fromAttacker(
    okta(at('22:47:41', 803), 'user.session.start', emergency, {
      authenticationContext: { externalSessionId: sid, authenticationStep: 0 },
    }),
  );
  const admin = fromAttacker(
    okta(at('22:47:43', 15), 'user.session.access_admin_app', emergency, {
      authenticationContext: { externalSessionId: sid, authenticationStep: 0 },
      target: [{ id: '0oa1adminconsole0000', type: 'AppInstance', alternateId: 'Okta Admin Console', displayName: 'Okta Admin Console' }],
    }),
  );
  const grant = fromAttacker(
    okta(at('22:47:46', 470), 'user.account.privilege.grant', emergency, {
      authenticationContext: { externalSessionId: sid, authenticationStep: 0 },
      target: [{ ...oktaUser('mallory@example.com', 'Mallory Example'), detailEntry: null }],
      debugContext: { debugData: { privilegeGranted: 'Super administrator', requestUri: '/api/internal/administrators/00umallory/roles' } },
    }),
  );
  const mfaReset = fromAttacker(
    okta(at('22:47:49', 9), 'user.mfa.factor.reset_all', emergency, {
      authenticationContext: { externalSessionId: sid, authenticationStep: 0 },
      target: [oktaUser('bob@example.com', 'Bob Lindqvist')],
    }),
  );
  return { api: [failed, login, admin], hook: [grant, mfaReset] };
}

// ---------------------------------------------------------------- Kubernetes
function k8s(time: string, verb: string, user: Rec, objectRef: Rec, code: number, extra: Rec = {}): Rec {
  const path = `/api${objectRef.apiGroup ? `s/${String(objectRef.apiGroup)}/${String(objectRef.apiVersion)}` : '/v1'}${objectRef.namespace ? `/namespaces/${String(objectRef.namespace)}` : ''}/${String(objectRef.resource)}${objectRef.name ? `/${String(objectRef.name)}` : ''}${objectRef.subresource ? `/${String(objectRef.subresource)}` : ''}`;
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: uuid('k8s'),
    stage: 'ResponseComplete',
    requestURI: path,
    verb,
    user,
    sourceIPs: ['10.20.0.15'],
    userAgent: 'kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46',
    objectRef,
    responseStatus: { metadata: {}, code },
    requestReceivedTimestamp: time.replace('Z', '000Z'),
    stageTimestamp: time.replace(/(\d{3})Z$/, (_m, ms: string) => `${ms}412Z`),
    annotations: { 'authorization.k8s.io/decision': code < 400 ? 'allow' : 'forbid', 'authorization.k8s.io/reason': '' },
    ...extra,
  };
}

function k8sBackground(n: number, fromMin = 20 * 60, toMin = 23 * 60): Rec[] {
  const accounts = [
    {
      username: 'system:serviceaccount:kube-system:replicaset-controller',
      uid: 'b1c2',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
    },
    {
      username: 'system:serviceaccount:monitoring:prometheus',
      uid: 'c2d3',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:monitoring', 'system:authenticated'],
    },
    { username: 'carol@example.com', uid: 'd3e4', groups: ['oidc:platform-team', 'system:authenticated'] },
  ];
  const reads: [string, Rec][] = [
    ['list', { resource: 'pods', namespace: 'payments', apiVersion: 'v1' }],
    ['watch', { resource: 'endpoints', namespace: 'payments', apiVersion: 'v1' }],
    ['get', { resource: 'deployments', namespace: 'payments', name: 'api', apiGroup: 'apps', apiVersion: 'v1' }],
    ['list', { resource: 'nodes', apiVersion: 'v1' }],
    ['get', { resource: 'configmaps', namespace: 'monitoring', name: 'prometheus-config', apiVersion: 'v1' }],
  ];
  const out: Rec[] = [];
  for (let i = 0; i < n; i++) {
    const [verb, ref] = pick(reads);
    out.push(k8s(at(clock(fromMin + ((toMin - fromMin) * i) / n), Math.floor(rand() * 1000)), verb, pick(accounts), ref, 200));
  }
  return out;
}

function k8sIncident(): Rec[] {
  const admin = { username: 'breakglass-admin', groups: ['system:masters', 'system:authenticated'] };
  const fromAttacker = { sourceIPs: [ATTACKER_IP], userAgent: 'kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46' };
  return [
    k8s(
      at('22:52:40', 100),
      'list',
      { username: 'system:anonymous', groups: ['system:unauthenticated'] },
      { resource: 'secrets', namespace: 'kube-system', apiVersion: 'v1' },
      401,
      fromAttacker,
    ),
    k8s(at('22:53:02', 250), 'list', admin, { resource: 'secrets', namespace: 'payments', apiVersion: 'v1' }, 200, fromAttacker),
    k8s(
      at('22:53:30', 20),
      'get',
      admin,
      { resource: 'secrets', namespace: 'payments', name: 'payments-db-credentials', apiVersion: 'v1' },
      200,
      fromAttacker,
    ),
    k8s(
      at('22:54:11', 640),
      'create',
      admin,
      { resource: 'pods', namespace: 'payments', name: 'api-7d9f8b6c5-x2x9q', subresource: 'exec', apiVersion: 'v1' },
      101,
      {
        ...fromAttacker,
        requestURI: '/api/v1/namespaces/payments/pods/api-7d9f8b6c5-x2x9q/exec?command=sh&container=api&stdin=true&stdout=true&tty=true',
      },
    ),
    k8s(
      at('22:55:47', 305),
      'create',
      admin,
      { resource: 'serviceaccounts', namespace: 'kube-system', name: 'metrics-helper', apiVersion: 'v1' },
      201,
      fromAttacker,
    ),
    k8s(
      at('22:56:03', 77),
      'create',
      admin,
      { resource: 'clusterrolebindings', name: 'metrics-helper-admin', apiGroup: 'rbac.authorization.k8s.io', apiVersion: 'v1' },
      201,
      {
        ...fromAttacker,
        level: 'RequestResponse',
        requestObject: {
          kind: 'ClusterRoleBinding',
          apiVersion: 'rbac.authorization.k8s.io/v1',
          metadata: { name: 'metrics-helper-admin' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
          subjects: [{ kind: 'ServiceAccount', name: 'metrics-helper', namespace: 'kube-system' }],
        },
      },
    ),
  ];
}

// ---------------------------------------------------------------- files
function write(rel: string, data: string | Buffer): void {
  const file = join(ROOT, rel);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, data);
}
const byTime = (key: string) => (a: Rec, b: Rec) => String(a[key]).localeCompare(String(b[key]));
// gzip output must be byte-stable: fix mtime-free header by using level and no filename (zlib writes mtime 0).
const gz = (value: unknown) => gzipSync(Buffer.from(JSON.stringify(value)), { level: 9 });

rmSync(ROOT, { recursive: true, force: true });
const prefix = `cloudtrail/AWSLogs/${ACCOUNT}/CloudTrail/us-east-1/2026/11/20`;
const morning = [...cloudtrailBackground(8 * 60 + 50, 9 * 60 + 40, 140), ...cloudtrailMorning()].sort(byTime('eventTime'));
const night = cloudtrailNight();
const stopLogging = night.find((r) => r.eventName === 'StopLogging')!;
const nightS3 = [...cloudtrailBackground(22 * 60 + 35, 22 * 60 + 55, 90), ...night.filter((r) => r !== stopLogging)].sort(
  byTime('eventTime'),
);
write(`${prefix}/${ACCOUNT}_CloudTrail_us-east-1_20261120T0915Z_Qm3xTq8ZbW1yVn0c.json.gz`, gz({ Records: morning }));
write(`${prefix}/${ACCOUNT}_CloudTrail_us-east-1_20261120T2245Z_Hj7pLr2KdX9sFa4e.json.gz`, gz({ Records: nightS3 }));
// StopLogging also stops S3 delivery for the trail: the EventBridge rule is how it is still seen.
write('cloudtrail/eventbridge/stoplogging-22-44-12.json', `${JSON.stringify(eventBridge(stopLogging), null, 2)}\n`);
write(
  `cloudtrail/AWSLogs/${ACCOUNT}/CloudTrail-Digest/us-east-1/2026/11/20/${ACCOUNT}_CloudTrail-Digest_us-east-1_org-audit-trail_us-east-1_20261120T230000Z.json.gz`,
  gz({
    awsAccountId: ACCOUNT,
    digestStartTime: '2026-11-20T22:00:00Z',
    digestEndTime: '2026-11-20T23:00:00Z',
    digestS3Bucket: 'example-org-audit-logs',
    digestS3Object: `AWSLogs/${ACCOUNT}/CloudTrail-Digest/us-east-1/2026/11/20/${ACCOUNT}_CloudTrail-Digest_us-east-1_org-audit-trail_us-east-1_20261120T230000Z.json.gz`,
    digestPublicKeyFingerprint: '6e8a1e3a8f0d3b2b7ce2d1a5f0c6a7b1',
    digestSignatureAlgorithm: 'SHA256withRSA',
    newestEventTime: '2026-11-20T22:46:02Z',
    oldestEventTime: '2026-11-20T22:35:00Z',
    previousDigestS3Bucket: 'example-org-audit-logs',
    previousDigestSignature: '3c1f…',
    logFiles: [],
  }),
);

const inc = oktaIncident();
const oktaApi = [...oktaBackground(80), ...inc.api].sort(byTime('published'));
const broken = okta(at('14:02:00'), 'user.session.start', oktaUser('dave@example.com', 'Dave Okafor'));
delete broken.published;
oktaApi.splice(40, 0, broken);
write('okta/system-log-2026-11-20.json', `${JSON.stringify(oktaApi, null, 2)}\n`);
write(
  'okta/event-hook-delivery-22-47.json',
  `${JSON.stringify(
    {
      eventType: 'com.okta.event_hook',
      eventTypeVersion: '1.0',
      cloudEventsVersion: '0.1',
      source: 'https://example.okta.com/api/v1/eventHooks/whoEXAMPLE0001',
      eventId: uuid('hook'),
      data: { events: inc.hook },
      eventTime: '2026-11-20T22:47:50.000Z',
      contentType: 'application/json',
    },
    null,
    2,
  )}\n`,
);

const k8sLines = [...k8sBackground(120), ...k8sIncident()].sort(byTime('requestReceivedTimestamp')).map((e) => JSON.stringify(e));
// Log rotation cut one line short: a real tailer sees this.
k8sLines.splice(57, 0, k8sLines[57]!.slice(0, 180));
write('k8s/prod-eu1/kube-apiserver-audit.log', `${k8sLines.join('\n')}\n`);
write(
  'k8s/prod-eu1/webhook-batch-23-00.json',
  `${JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: k8sBackground(12, 23 * 60, 23 * 60 + 5) })}\n`,
);
// An AWS service acting with the root identity (`userIdentity.invokedBy`): Auto Scaling creating its
// service-linked role at 03:30. No person used the root credential, so the aws-root identity of
// demo/glasswatch.yml excludes it (`userIdentity.invokedBy: null`). Generated last so that the
// deterministic ids of every other record stay what they were.
write(
  `${prefix}/${ACCOUNT}_CloudTrail_us-east-1_20261120T0335Z_Vb5nRw1QeT8uLc2m.json.gz`,
  gz({
    Records: [
      ct(
        at('03:30:41'),
        'iam.amazonaws.com',
        'CreateServiceLinkedRole',
        { ...root(), invokedBy: 'autoscaling.amazonaws.com' },
        {
          sourceIPAddress: 'autoscaling.amazonaws.com',
          userAgent: 'autoscaling.amazonaws.com',
          readOnly: false,
          requestParameters: { aWSServiceName: 'autoscaling.amazonaws.com' },
        },
      ),
    ],
  }),
);
// The Okta admin's AWS session: Okta's AWS SAML app signs the attacker into the OktaAdmins role
// (AssumeRoleWithSAML, NameID and role session name = the Okta login) before the Okta session is
// cleared; the role session's credentials outlive it. Generated after everything else, so the
// deterministic ids of the records above stay what they were.
function oktaAdminInAws(): Rec[] {
  const login = String(emergency.alternateId);
  const idp = 'Xq1x9EZtExAmPlEOkTaIdP0=';
  const roleArn = `arn:aws:iam::${ACCOUNT}:role/OktaAdmins`;
  const sessionArn = `arn:aws:sts::${ACCOUNT}:assumed-role/OktaAdmins/${login}`;
  const key = 'ASIAEXAMPLEOKTAADM01';
  const created = '2026-11-20T22:47:47Z';
  const role: Rec = {
    type: 'AssumedRole',
    principalId: `AROAEXAMPLEOKTAADMINS:${login}`,
    arn: sessionArn,
    accountId: ACCOUNT,
    accessKeyId: key,
    sessionContext: {
      sessionIssuer: { type: 'Role', principalId: 'AROAEXAMPLEOKTAADMINS', arn: roleArn, accountId: ACCOUNT, userName: 'OktaAdmins' },
      attributes: { creationDate: created, mfaAuthenticated: 'false' },
    },
  };
  const from = { sourceIPAddress: ATTACKER_IP, userAgent: 'aws-cli/2.17.0 Python/3.11.9 Linux/6.1 exe/x86_64' };
  return [
    ct(
      at('22:47:47'),
      'sts.amazonaws.com',
      'AssumeRoleWithSAML',
      { type: 'SAMLUser', principalId: `${idp}:${login}`, userName: login, identityProvider: idp },
      {
        ...from,
        userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0',
        readOnly: true,
        requestParameters: {
          sAMLAssertionID: '_9f1c2e7d4b3a5f60718293a4b5c6d7e8',
          roleSessionName: login,
          roleArn,
          principalArn: `arn:aws:iam::${ACCOUNT}:saml-provider/Okta`,
          durationSeconds: 3600,
        },
        responseElements: {
          credentials: { accessKeyId: key, sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLEOKTA', expiration: 'Nov 20, 2026, 11:47:47 PM' },
          assumedRoleUser: { assumedRoleId: `AROAEXAMPLEOKTAADMINS:${login}`, arn: sessionArn },
          subject: login,
          subjectType: 'persistent',
          issuer: 'http://www.okta.com/exkEXAMPLEawsapp01',
          audience: 'https://signin.aws.amazon.com/saml',
          nameQualifier: idp,
        },
        resources: [{ accountId: ACCOUNT, type: 'AWS::IAM::Role', ARN: roleArn }],
      },
    ),
    ct(at('22:48:31'), 'iam.amazonaws.com', 'ListRoles', role, { ...from, readOnly: true }),
    ct(at('22:50:12'), 's3.amazonaws.com', 'ListBuckets', role, { ...from, readOnly: true }),
    ct(at('22:52:05'), 's3.amazonaws.com', 'GetObject', role, {
      ...from,
      readOnly: true,
      requestParameters: { bucketName: 'example-finance-exports', key: '2026/11/payroll.csv' },
    }),
  ];
}
write(`${prefix}/${ACCOUNT}_CloudTrail_us-east-1_20261120T2255Z_Ok4aDm1nSaMLpQ7z.json.gz`, gz({ Records: oktaAdminInAws() }));
process.stderr.write(`demo data written under ${ROOT}\n`);
