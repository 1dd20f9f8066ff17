/**
 * CloudTrail's digest-signing public keys: `cloudtrail:ListPublicKeys` (JSON 1.1 over HTTPS, SigV4)
 * in the trail's home region, cached by fingerprint. @aws-sdk/client-cloudtrail is not a dependency;
 * the request is one POST signed with @smithy/signature-v4, the signer the S3 and SQS clients use.
 */
import { createHash, createHmac, type KeyObject } from 'node:crypto';
import type { AwsCredentialIdentity, Provider } from '@aws-sdk/types';
import { SignatureV4 } from '@smithy/signature-v4';
import { errorMessage, GlasswatchError } from '../../../core/errors.js';
import { loadPublicKey } from './digest.js';

export const LIST_PUBLIC_KEYS_TARGET = 'com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.ListPublicKeys';
/** A genuine answer is a few keys of ~400 bytes; anything far bigger is refused unread. */
const MAX_RESPONSE_BYTES = 1024 * 1024;
const MAX_PAGES = 20;

type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytesOf = (d: SourceData): string | Uint8Array =>
  typeof d === 'string' ? d : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d);

/** The hash the signer asks for (an HMAC when given a secret), on node:crypto. */
class Sha256 {
  readonly #h;
  constructor(secret?: SourceData) {
    this.#h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytesOf(secret));
  }
  update(data: SourceData): void {
    this.#h.update(bytesOf(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#h.digest());
  }
}

export interface PublicKeySourceOptions {
  credentials: AwsCredentialIdentity | Provider<AwsCredentialIdentity>;
  /** Endpoint for every region (tests, VPC endpoint). @default https://cloudtrail.<region>.amazonaws.com */
  endpoint?: string | null;
  timeoutMs?: number;
}

/** What a digest's fingerprint resolves to. */
export type KeyLookup = { key: KeyObject } | { missing: string } | { unloadable: string };

export class PublicKeySource {
  readonly #o: PublicKeySourceOptions;
  /** region → fingerprint → key (or why its value would not load). */
  readonly #keys = new Map<string, Map<string, KeyObject | string>>();
  /** region + fingerprint → when the API last did not know it: forged fingerprints cost one request per 10 minutes, not one per digest. */
  readonly #misses = new Map<string, number>();
  requests = 0;

  constructor(options: PublicKeySourceOptions) {
    this.#o = options;
  }

  /** The key with `fingerprint`, asking the region once per digest time range it has not covered yet. Rejects (retriable) when the API cannot be reached. */
  async lookup(region: string, fingerprint: string, start: Date, end: Date): Promise<KeyLookup> {
    let known = this.#keys.get(region)?.get(fingerprint);
    const miss = `${region}\u0000${fingerprint}`;
    if (known === undefined && Date.now() - (this.#misses.get(miss) ?? 0) > 600_000) {
      await this.#fetch(region, start, end);
      known = this.#keys.get(region)?.get(fingerprint);
      if (known === undefined) {
        this.#misses.set(miss, Date.now());
        if (this.#misses.size > 10_000) this.#misses.delete(this.#misses.keys().next().value as string);
      }
    }
    if (known === undefined) return { missing: `public key not found for fingerprint ${fingerprint} in ${region}` };
    if (typeof known === 'string') return { unloadable: `Unable to load PKCS #1 key with fingerprint ${fingerprint}: ${known}` };
    return { key: known };
  }

  async #fetch(region: string, start: Date, end: Date): Promise<void> {
    const base = this.#o.endpoint ?? `https://cloudtrail.${region}.amazonaws.com`;
    const url = new URL(base);
    const signer = new SignatureV4({ service: 'cloudtrail', region, credentials: this.#o.credentials, sha256: Sha256 });
    const keys = this.#keys.get(region) ?? new Map<string, KeyObject | string>();
    this.#keys.set(region, keys);
    let token: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      // JSON 1.1 timestamps are epoch seconds.
      const body = JSON.stringify({
        StartTime: Math.floor(start.getTime() / 1000),
        EndTime: Math.ceil(end.getTime() / 1000),
        ...(token ? { NextToken: token } : {}),
      });
      const signed = await signer.sign({
        method: 'POST',
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: url.pathname || '/',
        query: {},
        headers: { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': LIST_PUBLIC_KEYS_TARGET },
        body,
      });
      let doc: { PublicKeyList?: unknown; NextToken?: unknown };
      try {
        this.requests++;
        const res = await fetch(url, {
          method: 'POST',
          headers: signed.headers as Record<string, string>,
          body,
          signal: AbortSignal.timeout(this.#o.timeoutMs ?? 15_000),
        });
        const text = await res.text();
        if (text.length > MAX_RESPONSE_BYTES) throw new Error(`response of ${text.length} bytes, over ${MAX_RESPONSE_BYTES}`);
        if (!res.ok) throw new Error(`HTTP ${res.status}: ${text.slice(0, 300)}`);
        doc = JSON.parse(text);
      } catch (err) {
        throw new GlasswatchError(
          'BG_CLOUDTRAIL_PUBLIC_KEYS',
          `cloudtrail:ListPublicKeys in ${region} (${base}) failed: ${errorMessage(err)}`,
          {
            stage: 'receiving',
            retriable: true,
            cause: err,
            hint: 'Allow cloudtrail:ListPublicKeys to the collector role and reach the CloudTrail endpoint of the trail home region; digests are checked again at the next poll.',
          },
        );
      }
      for (const k of Array.isArray(doc.PublicKeyList) ? doc.PublicKeyList : []) {
        const entry = k as { Value?: unknown; Fingerprint?: unknown };
        if (typeof entry.Fingerprint !== 'string' || typeof entry.Value !== 'string') continue;
        try {
          keys.set(entry.Fingerprint.toLowerCase(), loadPublicKey(Buffer.from(entry.Value, 'base64')));
        } catch (err) {
          keys.set(entry.Fingerprint.toLowerCase(), errorMessage(err));
        }
      }
      token = typeof doc.NextToken === 'string' && doc.NextToken !== '' ? doc.NextToken : undefined;
      if (!token) return;
    }
  }
}
