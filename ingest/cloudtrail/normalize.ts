/**
 * One CloudTrail record (as found in an S3 delivery's `Records[]`, an EventBridge `detail`, or on
 * its own) → AuditEvent.
 *
 * Session key — why not simply `accessKeyId`: a console session sprays temporary keys (the
 * invictus-ir sample has one IAM user's single console login spread over 30 `ASIA…` keys, one per
 * console service), while every one of those records carries the same
 * `userIdentity.sessionContext.attributes.creationDate`, equal to the ConsoleLogin's `eventTime`.
 * So the key is `<principalId>@<session creation time>` whenever a session context exists (console
 * sessions, assumed roles, federation), the ConsoleLogin itself gets `<principalId>@<eventTime>` so
 * it joins the session it opens, and only long-term keys without a session fall back to the
 * access key id. This is also the granularity of revocation (`aws:TokenIssueTime` compares with the
 * session creation time).
 */
import type { AuditEvent, Outcome, Target } from '../../core/event.js';
import { badField, isObject, type JsonObject, looseString, optObject, optString, WRONG_TYPE } from '../fields.js';
import { toIsoMillis } from '../time.js';

export interface CloudTrailContext {
  /** AWS Organization id, when the caller knows it (option or org-trail S3 key). */
  org?: string | null;
  /** Account to use when the record lacks `recipientAccountId` (e.g. the EventBridge envelope's `account`). */
  account?: string | null;
}

const NO_CONTEXT: CloudTrailContext = {};

/**
 * `requestParameters` keys that name the thing acted on, used when a record has no `resources[]`
 * (most management events). Ordered by how useful they are for break-glass rules.
 */
const PARAMETER_TARGETS: ReadonlyArray<readonly [key: string, type: string, isArn: boolean]> = [
  ['roleArn', 'AWS::IAM::Role', true],
  ['roleName', 'AWS::IAM::Role', false],
  ['userName', 'AWS::IAM::User', false],
  ['groupName', 'AWS::IAM::Group', false],
  ['policyArn', 'AWS::IAM::ManagedPolicy', true],
  ['accessKeyId', 'AWS::IAM::AccessKey', false],
  ['bucketName', 'AWS::S3::Bucket', false],
  ['secretId', 'AWS::SecretsManager::Secret', false],
  ['keyId', 'AWS::KMS::Key', false],
  ['functionName', 'AWS::Lambda::Function', false],
  ['instanceId', 'AWS::EC2::Instance', false],
  ['dBInstanceIdentifier', 'AWS::RDS::DBInstance', false],
];

/** The last path or colon segment of an ARN: `arn:aws:iam::1:role/BreakGlass` → `BreakGlass`. */
function arnName(arn: string): string {
  const slash = arn.lastIndexOf('/');
  return slash >= 0 ? arn.slice(slash + 1) : arn.slice(arn.lastIndexOf(':') + 1);
}

/**
 * Map one CloudTrail record. Returns the event, or a string saying why the record cannot be one
 * (naming the field); the caller adds the source and location. `record` becomes `raw` untouched.
 */
export function normalizeCloudTrailRecord(record: JsonObject, context: CloudTrailContext = NO_CONTEXT): AuditEvent | string {
  const id = record.eventID;
  if (typeof id !== 'string' || id.length === 0) return badField('eventID', 'a non-empty string', id);
  const time = toIsoMillis(record.eventTime);
  if (time === null) return badField('eventTime', 'a timestamp', record.eventTime);
  const identity = optObject(record.userIdentity);
  if (identity === WRONG_TYPE) return badField('userIdentity', 'an object', record.userIdentity);
  const account = optString(record.recipientAccountId);
  if (account === WRONG_TYPE) return badField('recipientAccountId', 'a string', record.recipientAccountId);
  const sourceIp = optString(record.sourceIPAddress);
  if (sourceIp === WRONG_TYPE) return badField('sourceIPAddress', 'a string', record.sourceIPAddress);
  const userAgent = optString(record.userAgent);
  if (userAgent === WRONG_TYPE) return badField('userAgent', 'a string', record.userAgent);

  let action: string;
  let targets: Target[];
  let outcome: Outcome;
  let outcomeReason: string | null = null;
  if (record.eventType === 'AwsCloudTrailInsight') {
    // Insight events describe an anomaly in API call volume; they have no eventName or caller.
    const details = optObject(record.insightDetails);
    if (details === WRONG_TYPE || details === null) return badField('insightDetails', 'an object', record.insightDetails);
    const insightName = looseString(details.eventName) ?? 'unknown';
    action = `insight:${insightName}`;
    targets = [
      {
        id: looseString(record.sharedEventID),
        type: looseString(details.insightType),
        name: `${looseString(details.eventSource) ?? 'unknown'}:${insightName}`,
      },
    ];
    outcome = 'unknown';
    outcomeReason = looseString(details.errorCode);
  } else {
    const eventSource = record.eventSource;
    if (typeof eventSource !== 'string' || eventSource.length === 0) return badField('eventSource', 'a non-empty string', eventSource);
    const eventName = record.eventName;
    if (typeof eventName !== 'string' || eventName.length === 0) return badField('eventName', 'a non-empty string', eventName);
    action = `${eventSource}:${eventName}`;
    const built = buildTargets(record);
    if (typeof built === 'string') return built;
    targets = built;
    const errorCode = optString(record.errorCode);
    if (errorCode === WRONG_TYPE) return badField('errorCode', 'a string', record.errorCode);
    const response = record.responseElements;
    if (errorCode !== null) {
      outcome = 'failure';
      outcomeReason = errorCode;
    } else if (isObject(response) && response[eventName] === 'Failure') {
      // Sign-in events (ConsoleLogin, CheckMfa, SwitchRole, …) report failure in responseElements, not errorCode.
      outcome = 'failure';
      outcomeReason = looseString(record.errorMessage) ?? `${eventName}: Failure`;
    } else {
      outcome = 'success';
    }
  }

  let actorId: string | null = null;
  let actorName: string | null = null;
  let actorType: string | null = null;
  let sessionKey: string | null = null;
  if (identity !== null) {
    actorType = looseString(identity.type);
    const arn = looseString(identity.arn);
    actorId = looseString(identity.principalId) ?? arn;
    if (actorId === null && isObject(identity.onBehalfOf)) actorId = looseString(identity.onBehalfOf.userId); // IdentityCenterUser
    actorName = looseString(identity.userName) ?? (actorType === 'Root' ? 'Root' : null) ?? arn ?? looseString(identity.invokedBy);
    const session = identity.sessionContext;
    const created = isObject(session) && isObject(session.attributes) ? toIsoMillis(session.attributes.creationDate) : null;
    const principal = actorId ?? (actorType === 'Root' ? 'Root' : null);
    if (created !== null && principal !== null) sessionKey = `${principal}@${created}`;
    else if (action === 'signin.amazonaws.com:ConsoleLogin' && outcome === 'success' && principal !== null)
      sessionKey = `${principal}@${time}`;
    else sessionKey = looseString(identity.accessKeyId);
  }

  return {
    source: 'cloudtrail',
    id,
    time,
    actor: { id: actorId, name: actorName, type: actorType, sessionKey },
    action,
    targets,
    outcome,
    outcomeReason,
    sourceIp,
    userAgent,
    account: account ?? context.account ?? null,
    org: context.org ?? null,
    cluster: null,
    raw: record,
  };
}

/** `resources[]` when CloudTrail lists them, else the well-known request parameters. */
function buildTargets(record: JsonObject): Target[] | string {
  const resources = record.resources;
  const targets: Target[] = [];
  if (Array.isArray(resources) && resources.length > 0) {
    for (let i = 0; i < resources.length; i++) {
      const resource: unknown = resources[i];
      if (!isObject(resource)) return badField(`resources[${i}]`, 'an object', resource);
      const arn = looseString(resource.ARN) ?? looseString(resource.arn);
      targets.push({ id: arn, type: looseString(resource.type), name: arn === null ? null : arnName(arn) });
    }
    return targets;
  }
  if (resources !== undefined && resources !== null && !Array.isArray(resources)) return badField('resources', 'an array', resources);
  const params = record.requestParameters;
  if (!isObject(params)) return targets;
  for (let i = 0; i < PARAMETER_TARGETS.length; i++) {
    const [key, type, isArn] = PARAMETER_TARGETS[i]!;
    const value = params[key];
    if (typeof value !== 'string' || value.length === 0) continue;
    targets.push(isArn ? { id: value, type, name: arnName(value) } : { id: null, type, name: value });
  }
  return targets;
}
