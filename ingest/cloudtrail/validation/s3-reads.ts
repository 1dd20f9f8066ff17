/**
 * The S3 reads of log-file validation, each bounded: a digest or log object read whole only under
 * its byte budget (refused unread above it), existence checks, and the digest folders that could
 * list a log object.
 */
import { createHash } from 'node:crypto';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { errorMessage, GlasswatchError } from '../../../core/errors.js';
import { gunzipBounded, isGzip } from '../../decode.js';
import { isNotFound } from '../objects.js';

export interface ReadObject {
  bytes: Buffer;
  metadata: Record<string, string> | undefined;
}

/** Whether a read failed because the object is not there (404 / NoSuchKey), through our wrapping. */
export function isGone(err: unknown): boolean {
  return isNotFound((err as { cause?: unknown } | null)?.cause ?? err);
}

/** Whether S3 refused to list or read digests (the credentials may not read them). */
export function isAccessDenied(err: unknown): boolean {
  const e = ((err as { cause?: unknown })?.cause ?? err) as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  return e?.name === 'AccessDenied' || e?.$metadata?.httpStatusCode === 403;
}

/** GetObject whole, with its user metadata; over `maxBytes` (as S3 announces it) is INPUT_CORRUPT, never read. */
export async function getBounded(s3: S3Client, bucket: string, key: string, maxBytes: number): Promise<ReadObject> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (out.ContentLength !== undefined && out.ContentLength > maxBytes) {
      (out.Body as { destroy?: () => void } | undefined)?.destroy?.();
      throw new GlasswatchError('INPUT_CORRUPT', `s3://${bucket}/${key} is ${out.ContentLength} bytes, over ${maxBytes}`, {
        stage: 'receiving',
      });
    }
    if (!out.Body) throw new Error('empty response body');
    return { bytes: Buffer.from(await out.Body.transformToByteArray()), metadata: out.Metadata };
  } catch (err) {
    if (err instanceof GlasswatchError) throw err;
    throw new GlasswatchError('BG_INGEST_S3_GET', `s3://${bucket}/${key}: ${errorMessage(err)}`, {
      stage: 'receiving',
      retriable: !isNotFound(err),
      cause: err,
    });
  }
}

export async function objectExists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** What the next digest must name: the previous digest's metadata signature and the SHA-256 of its inflated bytes; 'gone' when it is not there (or not a digest). */
export async function readDigestLink(
  s3: S3Client,
  bucket: string,
  key: string,
  maxBytes: number,
): Promise<{ key: string; signature: string; sha256: string } | 'gone'> {
  try {
    const got = await getBounded(s3, bucket, key, maxBytes);
    const raw = isGzip(got.bytes) ? await gunzipBounded(got.bytes, { maxBytes, what: key }) : got.bytes;
    return { key, signature: (got.metadata?.signature ?? '').toLowerCase(), sha256: createHash('sha256').update(raw).digest('hex') };
  } catch (err) {
    if (isGone(err) || (err instanceof GlasswatchError && (err.code === 'INPUT_CORRUPT' || err.code === 'INPUT_TOO_LARGE'))) return 'gone';
    throw err;
  }
}

/**
 * The digest folders (`bucket`, prefix) that could list these log objects: the day of each and the
 * next, since a digest is filed under its end time (files of late evening are in the next day's folder).
 */
export function digestFoldersFor(objects: readonly { bucket: string; key: string }[]): { bucket: string; prefix: string }[] {
  const folders = new Map<string, { bucket: string; prefix: string }>();
  for (const o of objects) {
    const m = /^(.*\/)CloudTrail\/([^/]+)\/(\d{4})\/(\d{2})\/(\d{2})\//.exec(o.key);
    if (!m) continue;
    const day = Date.UTC(Number(m[3]), Number(m[4]) - 1, Number(m[5]));
    for (const t of [day, day + 86_400_000]) {
      const prefix = `${m[1]}CloudTrail-Digest/${m[2]}/${new Date(t).toISOString().slice(0, 10).replaceAll('-', '/')}/`;
      folders.set(`${o.bucket}\u0000${prefix}`, { bucket: o.bucket, prefix });
    }
  }
  return [...folders.values()];
}

/** Every key under `prefix`, at most `maxPages` pages (a day folder of one trail holds 24 digests). */
export async function listKeys(s3: S3Client, bucket: string, prefix: string, maxPages = 10): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page: ListObjectsV2CommandOutput = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const item of page.Contents ?? []) if (item.Key) keys.push(item.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token && ++pages < maxPages);
  return keys;
}
