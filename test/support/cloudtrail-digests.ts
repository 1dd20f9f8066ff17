/**
 * CloudTrail digest files as AWS writes them (integration-facts §1), for the log-file validation
 * tests: an RSA-2048 signing key, digests chained per trail and region and signed over the four-line
 * string (end time, bucket/key, SHA-256 of the gunzipped digest, previous signature or "null"), the
 * signature put in the object's metadata, and a stand-in for `cloudtrail:ListPublicKeys` that checks
 * the documented request (JSON 1.1 target, epoch-second StartTime/EndTime, a SigV4 authorization).
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

export interface SigningKey {
  privateKey: KeyObject;
  /** Base64 DER as ListPublicKeys returns it (SPKI, like the doc's own sample). */
  value: string;
  fingerprint: string;
  validFrom: Date;
  validTo: Date;
}

export function newSigningKey(validFrom = new Date('2020-01-01T00:00:00Z'), validTo = new Date('2030-01-01T00:00:00Z')): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return { privateKey, value: der.toString('base64'), fingerprint: createHash('md5').update(der).digest('hex'), validFrom, validTo };
}

export interface TrailSpec {
  bucket: string;
  account: string;
  region: string;
  trail: string;
  homeRegion: string;
  prefix?: string;
}

export interface DigestedFile {
  bucket: string;
  key: string;
  /** The gzip object as uploaded; its hash is over the inflated bytes. */
  gz: Buffer;
  raw: Buffer;
}

export interface WrittenDigest {
  key: string;
  body: Buffer;
  json: Record<string, unknown>;
  signature: string;
  sha256: string;
}

const stamp = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** `<prefix>AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/<account>_CloudTrail-Digest_<region>_<trail>_<home>_<YYYYMMDDTHHMMSSZ>.json.gz` */
export function digestObjectKey(t: TrailSpec, end: Date): string {
  const iso = end.toISOString();
  const day = `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}`;
  const compact = iso.replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return `${t.prefix ?? ''}AWSLogs/${t.account}/CloudTrail-Digest/${t.region}/${day}/${t.account}_CloudTrail-Digest_${t.region}_${t.trail}_${t.homeRegion}_${compact}.json.gz`;
}

/** Writes a trail's digests in order, each chained to the one before, as CloudTrail does. */
export class DigestWriter {
  readonly #key: SigningKey;
  readonly #trail: TrailSpec;
  #previous: { bucket: string; key: string; signature: string; sha256: string } | null = null;

  constructor(key: SigningKey, trail: TrailSpec) {
    this.#key = key;
    this.#trail = trail;
  }

  /**
   * The digest covering `files` delivered in [start, end]. `tamper` alters the written JSON before
   * signing (a genuine key signing a wrong chain link) or the metadata signature after.
   */
  write(
    start: Date,
    end: Date,
    files: readonly DigestedFile[],
    tamper: { previousSignature?: string; badSignature?: boolean } = {},
  ): WrittenDigest {
    const key = digestObjectKey(this.#trail, end);
    const prev = this.#previous;
    const json: Record<string, unknown> = {
      awsAccountId: this.#trail.account,
      digestStartTime: stamp(start),
      digestEndTime: stamp(end),
      digestS3Bucket: this.#trail.bucket,
      digestS3Object: key,
      digestPublicKeyFingerprint: this.#key.fingerprint,
      digestSignatureAlgorithm: 'SHA256withRSA',
      newestEventTime: files.length ? stamp(end) : null,
      oldestEventTime: files.length ? stamp(start) : null,
      previousDigestS3Bucket: prev?.bucket ?? null,
      previousDigestS3Object: prev?.key ?? null,
      previousDigestHashValue: prev?.sha256 ?? null,
      previousDigestHashAlgorithm: prev ? 'SHA-256' : null,
      previousDigestSignature: tamper.previousSignature ?? prev?.signature ?? null,
      logFiles: files.map((f) => ({
        s3Bucket: f.bucket,
        s3Object: f.key,
        hashValue: createHash('sha256').update(f.raw).digest('hex'),
        hashAlgorithm: 'SHA-256',
        newestEventTime: stamp(end),
        oldestEventTime: stamp(start),
      })),
    };
    const raw = Buffer.from(JSON.stringify(json), 'utf8');
    const sha256 = createHash('sha256').update(raw).digest('hex');
    const toSign = `${json.digestEndTime}\n${this.#trail.bucket}/${key}\n${sha256}\n${json.previousDigestSignature ?? 'null'}`;
    let signature = sign('sha256', Buffer.from(toSign, 'utf8'), this.#key.privateKey).toString('hex');
    if (tamper.badSignature) signature = `${signature.slice(0, -2)}${signature.endsWith('00') ? '01' : '00'}`;
    this.#previous = { bucket: this.#trail.bucket, key, signature, sha256 };
    return { key, body: gzipSync(raw), json, signature, sha256 };
  }
}

/** Uploads a digest with its signature in the user metadata (`x-amz-meta-signature`), as CloudTrail does. */
export async function putDigest(s3: S3Client, bucket: string, d: WrittenDigest): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: d.key,
      Body: d.body,
      Metadata: { signature: d.signature, 'signature-algorithm': 'SHA256withRSA' },
    }),
  );
}

export const LIST_PUBLIC_KEYS = 'com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.ListPublicKeys';
const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([a-z0-9-]+)\/cloudtrail\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$/;

export interface PublicKeysStandIn {
  url: string;
  /** Accepted requests: region from the credential scope, the time range asked for. */
  requests: { region: string; start: number; end: number }[];
  /** Requests refused as not the documented shape, with why. */
  refused: string[];
  close(): Promise<void>;
}

/** `cloudtrail:ListPublicKeys` answering with `keys` whose validity overlaps the range asked for. */
export async function startPublicKeysStandIn(keys: readonly SigningKey[], accessKeyId = 'testing'): Promise<PublicKeysStandIn> {
  const requests: PublicKeysStandIn['requests'] = [];
  const refused: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const refuse = (why: string) => {
        refused.push(why);
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ __type: 'InvalidParameterException', message: why }));
      };
      const auth = AUTHORIZATION.exec(String(req.headers.authorization ?? ''));
      if (req.method !== 'POST' || req.url !== '/') return refuse(`${req.method} ${req.url}`);
      if (req.headers['x-amz-target'] !== LIST_PUBLIC_KEYS) return refuse(`x-amz-target ${req.headers['x-amz-target']}`);
      if (req.headers['content-type'] !== 'application/x-amz-json-1.1') return refuse(`content-type ${req.headers['content-type']}`);
      if (!auth || auth[1] !== accessKeyId) return refuse(`authorization ${req.headers.authorization}`);
      const signed = (auth[4] ?? '').split(';');
      if (!['host', 'x-amz-date', 'x-amz-target'].every((h) => signed.includes(h))) return refuse(`signed headers ${auth[4]}`);
      if (!/^\d{8}T\d{6}Z$/.test(String(req.headers['x-amz-date'] ?? ''))) return refuse('x-amz-date');
      let body: { StartTime?: unknown; EndTime?: unknown };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return refuse('body is not JSON');
      }
      const { StartTime: start, EndTime: end } = body;
      if (typeof start !== 'number' || typeof end !== 'number' || start > end) return refuse(`StartTime/EndTime ${start}/${end}`);
      requests.push({ region: auth[3] ?? '', start, end });
      const list = keys
        .filter((k) => k.validFrom.getTime() / 1000 <= end && k.validTo.getTime() / 1000 >= start)
        .map((k) => ({
          Value: k.value,
          ValidityStartTime: k.validFrom.getTime() / 1000,
          ValidityEndTime: k.validTo.getTime() / 1000,
          Fingerprint: k.fingerprint,
        }));
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({ PublicKeyList: list }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    refused,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
