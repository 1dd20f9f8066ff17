/**
 * The bodies an SQS queue receives about new CloudTrail log files (source-api-facts §4.4):
 *
 * - a CloudTrail SNS notification, wrapped by SNS: `{"Type":"Notification","Message":"{\"s3Bucket\":…,\"s3ObjectKey\":[…]}"}`
 *   (or unwrapped, when the subscription has raw message delivery on);
 * - an S3 event notification, sent straight to SQS or through SNS (the usual setup for org trails):
 *   `{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":…},"object":{"key":…}}}]}`,
 *   whose keys are URL-encoded with `+` for spaces;
 * - the `s3:TestEvent` S3 sends when notifications are configured.
 */
export interface S3ObjectRef {
  bucket: string;
  key: string;
}

export type ParsedNotification =
  /** `skipped` names recognised entries that are not new log files (test events, deletions). */
  | { kind: 'objects'; objects: S3ObjectRef[]; skipped: string[] }
  /** Not a notification we understand: dead-lettered and deleted, retrying cannot help. */
  | { kind: 'poison'; reason: string };

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** S3 event keys are form-encoded (`+` = space, `%2B` = `+`). */
function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, '%20'));
}

export function parseNotification(body: string): ParsedNotification {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    return { kind: 'poison', reason: `message body is not JSON: ${(err as Error).message}` };
  }
  if (isObject(doc) && doc.Type === 'Notification' && typeof doc.Message === 'string') {
    let inner: unknown;
    try {
      inner = JSON.parse(doc.Message);
    } catch (err) {
      return { kind: 'poison', reason: `SNS Message is not JSON: ${(err as Error).message}` };
    }
    return parseInner(inner, 'SNS Message');
  }
  return parseInner(doc, 'message body');
}

function parseInner(doc: unknown, what: string): ParsedNotification {
  if (!isObject(doc)) return { kind: 'poison', reason: `${what} is not a JSON object` };
  if (typeof doc.s3Bucket === 'string' && Array.isArray(doc.s3ObjectKey)) {
    const bucket = doc.s3Bucket;
    if (!doc.s3ObjectKey.every((k) => typeof k === 'string' && k !== ''))
      return { kind: 'poison', reason: `${what}: s3ObjectKey must be a list of keys` };
    return { kind: 'objects', objects: (doc.s3ObjectKey as string[]).map((key) => ({ bucket, key })), skipped: [] };
  }
  if (doc.Event === 's3:TestEvent') return { kind: 'objects', objects: [], skipped: ['s3-test-event'] };
  if (Array.isArray(doc.Records)) return parseS3Records(doc.Records, what);
  return {
    kind: 'poison',
    reason: `${what}: neither a CloudTrail SNS notification (s3Bucket, s3ObjectKey) nor an S3 event notification (Records[].s3)`,
  };
}

function parseS3Records(records: unknown[], what: string): ParsedNotification {
  const objects: S3ObjectRef[] = [];
  const skipped: string[] = [];
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const s3 = isObject(r) ? r.s3 : undefined;
    const bucket = isObject(s3) && isObject(s3.bucket) ? s3.bucket.name : undefined;
    const key = isObject(s3) && isObject(s3.object) ? s3.object.key : undefined;
    if (!isObject(r) || typeof bucket !== 'string' || typeof key !== 'string') {
      return { kind: 'poison', reason: `${what}: Records[${i}] has no s3.bucket.name / s3.object.key` };
    }
    const eventName = typeof r.eventName === 'string' ? r.eventName : '';
    if (!eventName.startsWith('ObjectCreated:')) {
      skipped.push(`s3-event:${eventName || 'unknown'}`);
      continue;
    }
    try {
      objects.push({ bucket, key: decodeS3Key(key) });
    } catch {
      return { kind: 'poison', reason: `${what}: Records[${i}].s3.object.key is not valid URL encoding` };
    }
  }
  return { kind: 'objects', objects, skipped };
}
