/**
 * CloudTrail delivery on a moto server: SDK clients with static test credentials, generated log
 * records, real key layouts (account and organization trails), gzip uploads.
 */
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { type AwsConnection, createS3Client, createSqsClient } from '../../ingest/cloudtrail/aws.js';

export const TEST_REGION = 'us-east-1';

/** moto accepts any credentials; static ones keep the SDK from probing the machine's chain. */
export function motoConnection(endpoint: string): AwsConnection {
  return {
    region: TEST_REGION,
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 2,
  };
}

export function motoClients(endpoint: string): { s3: S3Client; sqs: SQSClient } {
  const conn = motoConnection(endpoint);
  return { s3: createS3Client(conn), sqs: createSqsClient(conn) };
}

export interface LogFileSpec {
  account: string;
  region: string;
  /** Delivery time in the file name and folder, e.g. `2025-11-20T10:05:00Z`. */
  time: string;
  /** Organization id for an org-trail key (`AWSLogs/<o-…>/<account>/…`). */
  org?: string;
  /** Trail key prefix before `AWSLogs/` (with trailing slash). */
  prefix?: string;
  /** The 16-char unique suffix. @default derived from a counter */
  unique?: string;
}

let uniqueCounter = 0;

/** `<prefix>AWSLogs/[<org>/]<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz` */
export function logFileKey(spec: LogFileSpec): string {
  const t = new Date(spec.time);
  const iso = t.toISOString();
  const day = `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}`;
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}Z`;
  const unique = spec.unique ?? `U${String(++uniqueCounter).padStart(15, '0')}`;
  const org = spec.org ? `${spec.org}/` : '';
  return `${spec.prefix ?? ''}AWSLogs/${org}${spec.account}/CloudTrail/${spec.region}/${day}/${spec.account}_CloudTrail_${spec.region}_${stamp}_${unique}.json.gz`;
}

/** The digest file CloudTrail writes beside the logs (hourly), in its own folder. */
export function digestKey(spec: LogFileSpec): string {
  return logFileKey(spec).replace('/CloudTrail/', '/CloudTrail-Digest/').replace('_CloudTrail_', '_CloudTrail-Digest_');
}

export const IDENTITIES = ['alice', 'bob', 'carol', 'dave', 'erin'] as const;

/**
 * One CloudTrail record: `eventID` = `<tag>-<n>` so tests can find it, actor one of IDENTITIES
 * (an assumed break-glass role session per identity, so the bus key differs per identity).
 */
export function ctRecord(tag: string, n: number, account: string, region: string, time: string): Record<string, unknown> {
  const who = IDENTITIES[n % IDENTITIES.length] ?? 'alice';
  return {
    eventVersion: '1.09',
    eventID: `${tag}-${n}`,
    eventTime: time,
    eventSource: 'iam.amazonaws.com',
    eventName: n % 7 === 0 ? 'CreateAccessKey' : 'ListUsers',
    eventType: 'AwsApiCall',
    awsRegion: region,
    sourceIPAddress: '198.51.100.9',
    userAgent: 'aws-cli/2.17',
    recipientAccountId: account,
    readOnly: n % 7 !== 0,
    managementEvent: true,
    requestParameters: n % 7 === 0 ? { userName: who } : null,
    responseElements: null,
    userIdentity: {
      type: 'AssumedRole',
      principalId: `AROABREAKGLASS:${who}`,
      arn: `arn:aws:sts::${account}:assumed-role/BreakGlassAdmin/${who}`,
      accountId: account,
      accessKeyId: `ASIA${who.toUpperCase()}`,
      sessionContext: {
        sessionIssuer: { type: 'Role', userName: 'BreakGlassAdmin', arn: `arn:aws:iam::${account}:role/BreakGlassAdmin` },
        attributes: { creationDate: '2025-11-20T09:00:00Z', mfaAuthenticated: 'true' },
      },
    },
  };
}

/** Gzipped `{"Records":[…]}` bytes of `count` records tagged `tag`. */
export function logFileBytes(tag: string, count: number, spec: LogFileSpec): { bytes: Buffer; ids: string[] } {
  const records = Array.from({ length: count }, (_, i) => ctRecord(tag, i, spec.account, spec.region, spec.time));
  return { bytes: gzipSync(JSON.stringify({ Records: records })), ids: records.map((r) => r.eventID as string) };
}

export async function createBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
}

export async function putObject(s3: S3Client, bucket: string, key: string, bytes: Buffer): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
}

/** Uploads one log file of `count` records; returns its key and the eventIDs in file order. */
export async function putLogFile(
  s3: S3Client,
  bucket: string,
  tag: string,
  count: number,
  spec: LogFileSpec,
): Promise<{ key: string; ids: string[] }> {
  const key = logFileKey(spec);
  const { bytes, ids } = logFileBytes(tag, count, spec);
  await putObject(s3, bucket, key, bytes);
  return { key, ids };
}

export async function createQueue(sqs: SQSClient, name: string, visibilityTimeoutSeconds = 30): Promise<string> {
  const out = await sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: String(visibilityTimeoutSeconds) } }),
  );
  if (!out.QueueUrl) throw new Error(`moto returned no QueueUrl for ${name}`);
  return out.QueueUrl;
}

/** Messages in the queue: visible plus in flight (received, not yet deleted). */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(out.Attributes?.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}
