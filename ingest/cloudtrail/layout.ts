/**
 * The CloudTrail S3 key layout (source-api-facts §4.4):
 *
 *   <prefix>AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz
 *   <prefix>AWSLogs/<o-xxxx>/<account>/CloudTrail/<region>/YYYY/MM/DD/…            (organization trails)
 *
 * Inside one `…/CloudTrail/<region>/` prefix the key order is the day, then the delivery minute
 * in the file name, so a `StartAfter` checkpoint per region prefix walks the files in time order
 * and crosses midnight by itself.
 */
import { ListObjectsV2Command, type ListObjectsV2CommandOutput, type S3Client } from '@aws-sdk/client-s3';

const ACCOUNT = /^\d{12}$/;
const ORG = /^o-[a-z0-9]{10,32}$/;
const FILE_TIME = /_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z_[^/]*$/;

/** Normalizes a configured key prefix: no leading slash, a trailing one unless empty. */
export function normalizePrefix(prefix: string): string {
  const p = prefix.replace(/^\/+/, '');
  return p === '' || p.endsWith('/') ? p : `${p}/`;
}

/** The delivery time in a log file name (epoch ms), or null for keys that do not follow the layout. */
export function keyTime(key: string): number | null {
  const m = FILE_TIME.exec(key);
  if (!m) return null;
  const [, y, mo, d, h, mi] = m;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi));
}

/** `StartAfter` that begins a region prefix at a UTC day: every key of that day sorts after it. */
export function dayStart(regionPrefix: string, day: string): string {
  return `${regionPrefix}${day.replaceAll('-', '/')}`;
}

/** `YYYY-MM-DD` of an epoch-ms instant (UTC). */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Lists the immediate "sub-folders" of `prefix`, following continuation tokens. */
async function listFolders(s3: S3Client, bucket: string, prefix: string, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page: ListObjectsV2CommandOutput = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
      signal ? { abortSignal: signal } : {},
    );
    for (const p of page.CommonPrefixes ?? []) if (p.Prefix) out.push(p.Prefix);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

function lastSegment(folder: string): string {
  const trimmed = folder.slice(0, -1);
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/**
 * Every `…/CloudTrail/<region>/` prefix under `<prefix>AWSLogs/`, for plain and organization
 * trails alike (an org folder is walked one level deeper), sorted. Digest and Insight folders are
 * siblings of `CloudTrail/` and are never entered.
 */
export async function discoverRegionPrefixes(s3: S3Client, bucket: string, prefix: string, signal?: AbortSignal): Promise<string[]> {
  const accounts: string[] = [];
  for (const folder of await listFolders(s3, bucket, `${prefix}AWSLogs/`, signal)) {
    const name = lastSegment(folder);
    if (ACCOUNT.test(name)) accounts.push(folder);
    else if (ORG.test(name)) {
      for (const inner of await listFolders(s3, bucket, folder, signal)) if (ACCOUNT.test(lastSegment(inner))) accounts.push(inner);
    }
  }
  const regions: string[] = [];
  for (const account of accounts) regions.push(...(await listFolders(s3, bucket, `${account}CloudTrail/`, signal)));
  return regions.sort();
}
