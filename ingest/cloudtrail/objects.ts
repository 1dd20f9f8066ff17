/**
 * Fetching CloudTrail log objects from S3, shared by the S3 poller and the SQS consumer.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import type { NormalizeResult } from '../types.js';

/** Digest files (`AWSLogs/…/CloudTrail-Digest/…`) prove log integrity; they hold no events. */
export function isDigestKey(key: string): boolean {
  return key.includes('/CloudTrail-Digest/') || key.includes('_CloudTrail-Digest_');
}

/** The object vanished (lifecycle rule, manual delete) or never existed: re-trying cannot help. */
export function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } } | null;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.Code === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

/** Downloads one object whole (CloudTrail files are at most tens of MiB); `objectUnit` (s3.ts) inflates it within its budget. */
export async function fetchObject(s3: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<Buffer> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), signal ? { abortSignal: signal } : {});
    if (!out.Body) throw new Error('empty response body');
    return Buffer.from(await out.Body.transformToByteArray());
  } catch (err) {
    throw new GlasswatchError('BG_INGEST_S3_GET', `s3://${bucket}/${key}: ${errorMessage(err)}`, {
      stage: 'receiving',
      retriable: !isNotFound(err),
      cause: err,
      context: { bucket, key, notFound: isNotFound(err) },
    });
  }
}

/**
 * Runs `load` for up to `depth` items ahead of the consumer and yields the results in input order,
 * so downloads (network-bound) overlap publishing (which must stay in order). Errors surface at
 * their item; loads started for items the consumer never reaches are awaited quietly.
 */
export async function* prefetch<T, R>(items: readonly T[], depth: number, load: (item: T) => Promise<R>): AsyncGenerator<[T, R]> {
  const pending: Promise<R>[] = [];
  let next = 0;
  const fill = () => {
    while (next < items.length && pending.length < Math.max(1, depth)) {
      const p = load(items[next++] as T);
      p.catch(() => {}); // observed below, or abandoned with the generator
      pending.push(p);
    }
  };
  try {
    for (let i = 0; i < items.length; i++) {
      fill();
      const result = await (pending.shift() as Promise<R>);
      yield [items[i] as T, result];
    }
  } finally {
    await Promise.allSettled(pending);
  }
}

/** An object as the publisher needs it: its bytes, or why there are none. */
export type LoadedObject = { bytes: Buffer } | { digest: true } | { missing: string };

/**
 * `fetchObject`, except that digest keys are not downloaded and a vanished object is reported
 * rather than thrown (it becomes a dead letter: retrying would stall the prefix forever).
 */
export async function loadObject(s3: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<LoadedObject> {
  if (isDigestKey(key)) return { digest: true };
  try {
    return { bytes: await fetchObject(s3, bucket, key, signal) };
  } catch (err) {
    if (err instanceof GlasswatchError && err.context.notFound === true) return { missing: err.message };
    throw err;
  }
}

/** The unit to publish for one loaded object. */
export function objectResults(
  publisher: { normalizeBuffer(bytes: Buffer, file: string): NormalizeResult[] },
  bucket: string,
  key: string,
  loaded: LoadedObject,
): NormalizeResult[] {
  const file = `s3://${bucket}/${key}`;
  const origin = { file, line: null, index: null };
  if ('bytes' in loaded) return publisher.normalizeBuffer(loaded.bytes, file);
  if ('digest' in loaded) return [{ kind: 'skipped', source: 'cloudtrail', what: 'cloudtrail-digest', origin }];
  return [{ kind: 'dead', source: 'cloudtrail', reason: `object not found: ${loaded.missing}`, origin, text: '' }];
}
