/**
 * CloudTrail digest files, as `aws cloudtrail validate-logs` reads them (integration-facts §1):
 * a gzip JSON per trail, region and hour listing the SHA-256 of every log file delivered in that
 * hour, chained to the previous digest and signed (RSA PKCS#1 v1.5 + SHA-256) by a regional
 * CloudTrail key. The signature is in the object's S3 metadata (`x-amz-meta-signature`), not in
 * the file. Everything here is pure: fetching and state are in validator.ts.
 */
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { errorMessage } from '../../../core/errors.js';
import { gunzipBounded, isGzip } from '../../decode.js';

/** A digest lists at most a few thousand files (an hour of one region); 32 MiB inflated is far beyond any genuine one. */
export const DEFAULT_MAX_DIGEST_BYTES = 32 * 1024 * 1024;
const HEX64 = /^[0-9a-f]{64}$/;
const HEX = /^(?:[0-9a-f]{2})+$/;

export interface DigestLogFile {
  s3Bucket: string;
  s3Object: string;
  /** Hex SHA-256 of the *uncompressed* log file. */
  hashValue: string;
}

export interface Digest {
  /** Where it was read (must equal digestS3Bucket / digestS3Object). */
  bucket: string;
  key: string;
  digestStartTime: string;
  /** Exactly as in the JSON: it is part of the string to sign. */
  digestEndTime: string;
  fingerprint: string;
  previousBucket: string | null;
  previousKey: string | null;
  previousHashValue: string | null;
  previousSignature: string | null;
  logFiles: DigestLogFile[];
  /** Hex SHA-256 of the gunzipped bytes (the next digest's previousDigestHashValue). */
  sha256: string;
  /** Hex signature from the object metadata. */
  signature: string;
}

/** Why a digest file cannot be used; `reason` names the field. */
export class DigestError extends Error {}

type Json = Record<string, unknown>;

function str(doc: Json, field: string): string {
  const v = doc[field];
  if (typeof v !== 'string' || v === '') throw new DigestError(`field ${field} is missing or not a string`);
  return v;
}

function nullableStr(doc: Json, field: string): string | null {
  const v = doc[field];
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string') throw new DigestError(`field ${field} is not a string or null`);
  return v;
}

/**
 * Inflates (within `maxBytes`) and parses a digest object read from `bucket`/`key`, with the S3 user
 * metadata it came with. Throws `DigestError` for anything that makes it unusable; the checks of
 * trust (signature, location, chain) are separate so each gets its own verdict.
 */
export async function parseDigest(
  bucket: string,
  key: string,
  bytes: Buffer,
  metadata: Record<string, string> | undefined,
  maxBytes = DEFAULT_MAX_DIGEST_BYTES,
): Promise<Digest> {
  let raw: Buffer;
  try {
    raw = isGzip(bytes) ? await gunzipBounded(bytes, { maxBytes, what: `digest s3://${bucket}/${key}` }) : bytes;
  } catch (err) {
    throw new DigestError(`invalid format: ${errorMessage(err)}`);
  }
  if (raw.length > maxBytes) throw new DigestError(`invalid format: ${raw.length} bytes, over the ${maxBytes}-byte digest limit`);
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new DigestError(`invalid format: not JSON (${errorMessage(err)})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new DigestError('invalid format: not a JSON object');
  const d = doc as Json;
  // The field table of the AWS docs says publicKeyFingerprint; the files and the CLI use digestPublicKeyFingerprint.
  const fingerprint = str(d, 'digestPublicKeyFingerprint').toLowerCase();
  const signature = (metadata?.signature ?? '').toLowerCase();
  if (!HEX.test(signature)) throw new DigestError('signature verification failed: no hex x-amz-meta-signature in the object metadata');
  const algorithm = metadata?.['signature-algorithm'];
  if (algorithm !== undefined && algorithm !== 'SHA256withRSA') throw new DigestError(`unsupported signature algorithm ${algorithm}`);
  if (!Array.isArray(d.logFiles)) throw new DigestError('field logFiles is missing or not an array');
  const logFiles: DigestLogFile[] = d.logFiles.map((f: unknown, i: number) => {
    if (typeof f !== 'object' || f === null) throw new DigestError(`logFiles[${i}] is not an object`);
    const file = f as Json;
    const hashValue = str(file, 'hashValue').toLowerCase();
    if (!HEX64.test(hashValue)) throw new DigestError(`logFiles[${i}].hashValue is not a hex SHA-256`);
    if (file.hashAlgorithm !== undefined && file.hashAlgorithm !== 'SHA-256')
      throw new DigestError(`logFiles[${i}].hashAlgorithm is not SHA-256`);
    return { s3Bucket: str(file, 's3Bucket'), s3Object: str(file, 's3Object'), hashValue };
  });
  if (!('previousDigestSignature' in d)) throw new DigestError('field previousDigestSignature is missing');
  const digest: Digest = {
    bucket,
    key,
    digestStartTime: str(d, 'digestStartTime'),
    digestEndTime: str(d, 'digestEndTime'),
    fingerprint,
    previousBucket: nullableStr(d, 'previousDigestS3Bucket'),
    previousKey: nullableStr(d, 'previousDigestS3Object'),
    previousHashValue: nullableStr(d, 'previousDigestHashValue')?.toLowerCase() ?? null,
    previousSignature: nullableStr(d, 'previousDigestSignature')?.toLowerCase() ?? null,
    logFiles,
    sha256: createHash('sha256').update(raw).digest('hex'),
    signature,
  };
  if (Number.isNaN(Date.parse(digest.digestEndTime)) || Number.isNaN(Date.parse(digest.digestStartTime)))
    throw new DigestError('digestStartTime / digestEndTime are not times');
  if (str(d, 'digestS3Bucket') !== bucket || str(d, 'digestS3Object') !== key)
    throw new DigestError(`has been moved from its original location s3://${str(d, 'digestS3Bucket')}/${str(d, 'digestS3Object')}`);
  return digest;
}

/** The four lines CloudTrail signs (validation.py `_create_string_to_sign`): `null` for a starting digest. */
export function stringToSign(d: Pick<Digest, 'digestEndTime' | 'bucket' | 'key' | 'sha256' | 'previousSignature'>): string {
  return `${d.digestEndTime}\n${d.bucket}/${d.key}\n${d.sha256}\n${d.previousSignature ?? 'null'}`;
}

/** A `ListPublicKeys` value (base64 DER): documented as PKCS#1, seen as SPKI in the doc's own sample. */
export function loadPublicKey(der: Buffer): KeyObject {
  try {
    return createPublicKey({ key: der, format: 'der', type: 'pkcs1' });
  } catch {
    return createPublicKey({ key: der, format: 'der', type: 'spki' });
  }
}

export function verifyDigestSignature(d: Digest, key: KeyObject): boolean {
  try {
    return verify('sha256', Buffer.from(stringToSign(d), 'utf8'), key, Buffer.from(d.signature, 'hex'));
  } catch {
    return false;
  }
}

/**
 * The chain a digest belongs to: its folder and its file name without the end time
 * (`<account>_CloudTrail-Digest_<region>_<trail>_<home-region>`), so two trails writing to one
 * bucket are two chains. The home region (where the signing keys are) is the last name part.
 */
export function digestChain(key: string): { chain: string; homeRegion: string | null } {
  const slash = key.lastIndexOf('/');
  const folder = key.slice(0, slash + 1).replace(/\d{4}\/\d{2}\/\d{2}\/$/, '');
  const name = key.slice(slash + 1).replace(/_\d{8}T\d{6}Z(?:_backfill)?\.json\.gz$/, '');
  const parts = name.split('_');
  const home = parts.length >= 5 ? (parts[parts.length - 1] ?? null) : null;
  return { chain: `${folder}${name}`, homeRegion: home && /^[a-z]{2}(?:-[a-z]+)+-\d$/.test(home) ? home : null };
}
