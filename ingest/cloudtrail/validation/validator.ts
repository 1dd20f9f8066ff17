/**
 * CloudTrail log-file validation beside the collectors (what `aws cloudtrail validate-logs` does,
 * continuously): every published log object's SHA-256 is held `pending` until a digest lists it;
 * digests are checked for format, location, RSA signature and chain continuity, then settle the
 * objects they list (`valid` or `mismatch`). An object no digest listed within the delivery window
 * is `missing_digest`. Each finding raises a `pipeline.tamper` alert.
 *
 * Validation follows publishing and never holds it: events are published first, then hashed here.
 * Nothing a digest contains can crash or stall the collector: sizes are bounded, a bad digest is a
 * finding plus a dead letter, and only a failure to reach the key API or the bus is retried.
 */
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Bus } from '../../../core/bus/types.js';
import { errorMessage, GlasswatchError } from '../../../core/errors.js';
import { type Logger, silentLogger } from '../../../core/log.js';
import { type Alert, pipelineAlert } from '../../../detectors/alerts/alert.js';
import { pipelineAlertMessage } from '../../../detectors/stages/alert-stage.js';
import { gunzipBounded, isGzip } from '../../decode.js';
import { type ChainHead, chainFinding } from './chain.js';
import { DEFAULT_MAX_DIGEST_BYTES, type Digest, DigestError, digestChain, parseDigest, verifyDigestSignature } from './digest.js';
import type { PublicKeySource } from './keys.js';
import type { LogValidationRecorder, LogValidationRow } from './record.js';
import { digestFoldersFor, getBounded, isAccessDenied, isGone, listKeys, objectExists, readDigestLink } from './s3-reads.js';

/** Where a log object listed by a digest stands for this collector. */
export type ObjectScope = 'published' | 'future' | 'out-of-scope';

export interface LogFileValidatorOptions {
  s3: S3Client;
  keys: PublicKeySource;
  recorder: LogValidationRecorder;
  bus: Bus;
  alertsTopic: string;
  /** Region of the keys when a digest name carries no home region. */
  region: string;
  /** Minutes after which an object no digest listed is `missing_digest` (digests come hourly). @default 120 */
  windowMinutes?: number;
  /** Inflated digest budget. @default 32 MiB */
  maxDigestBytes?: number;
  /** Inflated log object budget for hashing. @default 256 MiB */
  maxObjectBytes?: number;
  /** Objects held pending or expected at once; beyond, the oldest is settled as missing_digest / dropped. @default 200000 */
  maxTracked?: number;
  /**
   * Whether an object a digest lists was already published by this collector (S3: at or before its
   * prefix checkpoint, fetched again to hash it after a restart), is still to come, or predates it.
   * @default every object is still to come (SQS)
   */
  scope?: (bucket: string, key: string) => ObjectScope;
  /**
   * Before an object is declared missing, list the digest folders of its day and the next in S3 and
   * read the digests not seen yet (SQS: the queue may carry no digest notifications). @default false
   */
  searchDigests?: boolean;
  /** validateLogFiles was set: a search S3 refuses (403) flags the overdue objects instead of leaving the decision to the caller. */
  explicit?: boolean;
  logger?: Logger;
  now?: () => number;
}

interface Pending {
  bucket: string;
  key: string;
  /** null for an object restored from the store after a restart: read again when its digest comes. */
  sha256: string | null;
  seenAt: number;
}

export interface ValidationCounts {
  objects: number;
  valid: number;
  mismatch: number;
  missingDigest: number;
  digests: number;
  badDigests: number;
  chainBreaks: number;
  alerts: number;
}

const id = (bucket: string, key: string) => `${bucket}/${key}`;

export class LogFileValidator {
  readonly #o: LogFileValidatorOptions;
  /** See `LogFileValidatorOptions.scope`; the S3 poller sets it to its checkpoint. */
  scope: (bucket: string, key: string) => ObjectScope;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #pending = new Map<string, Pending>();
  /** Objects a digest listed before they were published here (bucket/key → hash, digest, when listed). */
  readonly #expected = new Map<
    string,
    { bucket: string; key: string; hash: string; digestKey: string; listedAt: number; checked?: boolean }
  >();
  readonly #chains = new Map<string, ChainHead>();
  /** Digests already checked (bounded): a redelivered notification or a search does not read one twice. */
  readonly #digestsRead = new Set<string>();
  #restoring: Promise<void> = Promise.resolve();
  readonly #rows: LogValidationRow[] = [];
  readonly counts: ValidationCounts = {
    objects: 0,
    valid: 0,
    mismatch: 0,
    missingDigest: 0,
    digests: 0,
    badDigests: 0,
    chainBreaks: 0,
    alerts: 0,
  };
  /** Set when a digest search was refused (403) and validation is not explicit: the caller turns validation off. */
  digestsDenied: string | null = null;
  /** The last 1000 `pipeline.tamper` alerts raised (tests, status). */
  readonly alerts: Alert[] = [];

  constructor(options: LogFileValidatorOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.scope = options.scope ?? (() => 'future');
  }

  get pendingObjects(): number {
    return this.#pending.size;
  }

  /**
   * Takes back the objects a previous run left pending (`recorder.pending`), so a restart neither
   * forgets an object whose digest never comes nor trusts one it can no longer hash from memory.
   * `bucket` keeps another collector's buckets (one store, several trails) out; null = all (SQS). Resolves the number
   * restored; a store that cannot answer is the caller's to log.
   */
  restore(bucket: string | null = null): Promise<number> {
    const restoring = this.#restore(bucket);
    // Digests and sweeps wait for it: settling an object before its restored entry lands would flag it later.
    this.#restoring = restoring.then(
      () => {},
      () => {},
    );
    return restoring;
  }

  async #restore(bucket: string | null): Promise<number> {
    const rows = (await this.#o.recorder.pending?.(this.#o.maxTracked ?? 200_000, bucket)) ?? [];
    const restored = rows
      .map((r) => ({ bucket: r.bucket, key: r.objectKey, sha256: null, seenAt: Date.parse(r.checkedAt) || this.#now() }))
      .filter((p) => !this.#pending.has(id(p.bucket, p.key)));
    // The sweep walks the map in insertion order, oldest first: restored objects go before this run's.
    const current = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of [...restored, ...current].sort((a, b) => a.seenAt - b.seenAt)) this.#pending.set(id(p.bucket, p.key), p);
    return restored.length;
  }

  /**
   * A log object was published: hash its uncompressed bytes and hold it until its digest (or settle it
   * now if its digest was read first). Never rejects: a failure is logged and the object stays unvalidated.
   */
  async logObject(bucket: string, key: string, bytes: Buffer, eventIds: string[]): Promise<void> {
    try {
      const sha256 = await this.#hash(bucket, key, bytes);
      this.counts.objects++;
      const expected = this.#expected.get(id(bucket, key));
      if (expected) {
        this.#expected.delete(id(bucket, key));
        await this.#settle(bucket, key, sha256, expected.hash, expected.digestKey, eventIds);
        return;
      }
      this.#pending.set(id(bucket, key), { bucket, key, sha256, seenAt: this.#now() });
      this.#row({ bucket, objectKey: key, status: 'pending', digestKey: '', reason: 'no digest read yet', eventIds });
      while (this.#pending.size > (this.#o.maxTracked ?? 200_000)) {
        const oldest = this.#pending.values().next().value as Pending;
        await this.#missing(oldest, `more than ${this.#o.maxTracked ?? 200_000} objects waiting for a digest (maxTracked)`);
      }
    } catch (err) {
      this.#log.error('cloudtrail log validation: object not validated', { object: `s3://${bucket}/${key}`, error: errorMessage(err) });
    }
  }

  /**
   * One digest object with its S3 metadata. Resolves `{ dead }` for a digest that cannot be trusted
   * (the caller dead-letters it; the finding is already alerted); rejects (retriable) only when the
   * key API or the bus cannot be reached, so the caller retries it.
   */
  async digestObject(
    bucket: string,
    key: string,
    bytes: Buffer,
    metadata: Record<string, string> | undefined,
  ): Promise<{ dead: string } | null> {
    await this.#restoring;
    const where = `s3://${bucket}/${key}`;
    this.counts.digests++;
    this.#digestsRead.add(id(bucket, key));
    if (this.#digestsRead.size > 50_000) this.#digestsRead.delete(this.#digestsRead.values().next().value as string);
    let digest: Digest;
    try {
      digest = await parseDigest(bucket, key, bytes, metadata, this.#o.maxDigestBytes ?? DEFAULT_MAX_DIGEST_BYTES);
    } catch (err) {
      if (!(err instanceof DigestError)) throw err;
      return this.#badDigest(where, err.message);
    }
    const { chain, homeRegion } = digestChain(key);
    const found = await this.#o.keys.lookup(
      homeRegion ?? this.#o.region,
      digest.fingerprint,
      new Date(digest.digestStartTime),
      new Date(digest.digestEndTime),
    );
    if ('missing' in found) return this.#badDigest(where, found.missing);
    if ('unloadable' in found) return this.#badDigest(where, found.unloadable);
    if (!verifyDigestSignature(digest, found.key)) return this.#badDigest(where, 'signature verification failed');

    // Signed by CloudTrail: its list is trustworthy even when the chain before it is broken.
    const maxDigest = this.#o.maxDigestBytes ?? DEFAULT_MAX_DIGEST_BYTES;
    const finding = await chainFinding(this.#chains.get(chain), digest, (b, k) => readDigestLink(this.#o.s3, b, k, maxDigest));
    if (finding) await this.#chainBreak(where, [finding.kind, key], finding.reason);
    this.#chains.set(chain, { key, signature: digest.signature, sha256: digest.sha256, endTime: digest.digestEndTime });
    for (const file of digest.logFiles) {
      const fileId = id(file.s3Bucket, file.s3Object);
      const pending = this.#pending.get(fileId);
      if (pending) {
        this.#pending.delete(fileId);
        if (pending.sha256 === null) await this.#refetch(file.s3Bucket, file.s3Object, file.hashValue, key);
        else await this.#settle(file.s3Bucket, file.s3Object, pending.sha256, file.hashValue, key, []);
        continue;
      }
      const scope = this.scope(file.s3Bucket, file.s3Object);
      if (scope === 'out-of-scope') continue;
      if (scope === 'future') {
        this.#expected.set(fileId, {
          bucket: file.s3Bucket,
          key: file.s3Object,
          hash: file.hashValue,
          digestKey: key,
          listedAt: this.#now(),
        });
        while (this.#expected.size > (this.#o.maxTracked ?? 200_000)) this.#expected.delete(this.#expected.keys().next().value as string);
        continue;
      }
      // Published before a restart: its pending hash was lost with the process, so read it again.
      await this.#refetch(file.s3Bucket, file.s3Object, file.hashValue, key);
    }
    await this.flush();
    return null;
  }

  /** Reads the digest at `bucket`/`key` (size-bounded, with its metadata) and checks it: `digestObject`. */
  async digestAt(bucket: string, key: string): Promise<{ dead: string } | null> {
    let got: { bytes: Buffer; metadata: Record<string, string> | undefined };
    try {
      // A gzip digest is far smaller than its inflated budget; a larger object is refused unread.
      got = await getBounded(this.#o.s3, bucket, key, this.#o.maxDigestBytes ?? DEFAULT_MAX_DIGEST_BYTES);
    } catch (err) {
      if (err instanceof GlasswatchError && err.code === 'INPUT_CORRUPT') return this.#badDigest(`s3://${bucket}/${key}`, err.message);
      if (isGone(err)) return { dead: `CloudTrail digest s3://${bucket}/${key} vanished before it was read` };
      throw err;
    }
    return this.digestObject(bucket, key, got.bytes, got.metadata);
  }

  /** Settles objects that no digest listed within the window as `missing_digest`. */
  async sweep(): Promise<void> {
    await this.#restoring;
    const before = this.#now() - (this.#o.windowMinutes ?? 120) * 60_000;
    if (this.#o.searchDigests) {
      const overdue = [...this.#pending.values()].filter((p) => p.seenAt <= before);
      if (overdue.length > 0) await this.#searchDigests(overdue);
      if (this.digestsDenied) return; // nothing is flagged on a search that could not look
    }
    await this.#sweepExpected(before);
    for (const p of [...this.#pending.values()]) {
      if (p.seenAt > before) break; // insertion order = seen order
      await this.#missing(p, `no digest listed it within ${this.#o.windowMinutes ?? 120} minutes of its delivery`);
    }
    await this.flush();
  }

  /**
   * Objects a digest listed that were never published here within the window: deleted before the
   * collector read them (the attack that leaves no log), or not notified (SQS). Each is read from S3:
   * gone is a `mismatch` with a tamper alert; still there and not yet reached by the S3 poller waits.
   */
  async #sweepExpected(before: number): Promise<void> {
    for (const e of [...this.#expected.values()]) {
      if (e.listedAt > before) break; // insertion order = listing order
      this.#expected.delete(id(e.bucket, e.key));
      if (e.checked) continue; // read from S3 one window ago and kept for a late notification: done
      try {
        if (this.scope(e.bucket, e.key) === 'future' && !this.#o.searchDigests && (await objectExists(this.#o.s3, e.bucket, e.key))) {
          // The poller is behind (a backlog): look again after another window.
          this.#expected.set(id(e.bucket, e.key), { ...e, listedAt: this.#now() });
          continue;
        }
        if (this.#o.searchDigests)
          this.#log.warn('cloudtrail log validation: object listed by a digest was never notified', {
            object: `s3://${e.bucket}/${e.key}`,
          });
        // Still there: kept one more window, so a late notification links its events to the status.
        if (await this.#refetch(e.bucket, e.key, e.hash, e.digestKey))
          this.#expected.set(id(e.bucket, e.key), { ...e, listedAt: this.#now(), checked: true });
      } catch (err) {
        // S3 or the bus unreachable: kept, and looked at again by the next sweep.
        this.#expected.set(id(e.bucket, e.key), e);
        throw err;
      }
    }
  }

  /** Reads the unseen digests of the folders that could list `overdue` objects; a failure leaves them to be flagged. */
  async #searchDigests(overdue: Pending[]): Promise<void> {
    for (const { bucket, prefix } of digestFoldersFor(overdue)) {
      try {
        for (const key of await listKeys(this.#o.s3, bucket, prefix))
          if (!this.#digestsRead.has(id(bucket, key))) await this.digestAt(bucket, key);
      } catch (err) {
        if (isAccessDenied(err) && !this.#o.explicit) {
          this.digestsDenied = errorMessage(err);
          return;
        }
        this.#log.warn('cloudtrail log validation: digest search failed; overdue objects are flagged', {
          folder: `s3://${bucket}/${prefix}`,
          error: errorMessage(err),
        });
      }
    }
  }

  async flush(): Promise<void> {
    if (this.#rows.length === 0) return;
    const rows = this.#rows.splice(0);
    await this.#o.recorder.record(rows);
  }

  async #hash(bucket: string, key: string, bytes: Buffer): Promise<string> {
    // CloudTrail hashes the uncompressed file; a body that is not gzip (or not whole) is hashed as it is, and mismatches.
    let data = bytes;
    if (isGzip(bytes)) {
      try {
        data = await gunzipBounded(bytes, { maxBytes: this.#o.maxObjectBytes ?? 256 * 1024 * 1024, what: `s3://${bucket}/${key}` });
      } catch {
        data = bytes;
      }
    }
    return createHash('sha256').update(data).digest('hex');
  }

  async #settle(bucket: string, key: string, actual: string, expected: string, digestKey: string, eventIds: string[]): Promise<void> {
    const ok = actual === expected;
    this.#row({
      bucket,
      objectKey: key,
      status: ok ? 'valid' : 'mismatch',
      digestKey,
      reason: ok ? '' : `SHA-256 ${actual} of the object differs from ${expected} in its digest`,
      eventIds,
    });
    if (ok) {
      this.counts.valid++;
      return;
    }
    this.counts.mismatch++;
    await this.#alert(
      ['mismatch', bucket, key],
      `s3://${bucket}/${key}`,
      `log object changed after delivery: its SHA-256 differs from the one in digest ${digestKey}`,
    );
  }

  async #missing(p: Pending, reason: string): Promise<void> {
    // Alerted first: if the bus is down the object stays pending and the next sweep raises it again.
    await this.#alert(['missing_digest', p.bucket, p.key], `s3://${p.bucket}/${p.key}`, `log object has no digest: ${reason}`);
    this.#pending.delete(id(p.bucket, p.key));
    this.counts.missingDigest++;
    this.#row({ bucket: p.bucket, objectKey: p.key, status: 'missing_digest', digestKey: '', reason, eventIds: [] });
  }

  /** Reads a listed object again and settles it; resolves false when it was deleted (a mismatch, alerted). */
  async #refetch(bucket: string, key: string, expected: string, digestKey: string): Promise<boolean> {
    let bytes: Buffer;
    try {
      bytes = (await getBounded(this.#o.s3, bucket, key, this.#o.maxObjectBytes ?? 256 * 1024 * 1024)).bytes;
    } catch (err) {
      if (!isGone(err)) throw err;
      this.counts.mismatch++;
      this.#row({
        bucket,
        objectKey: key,
        status: 'mismatch',
        digestKey,
        reason: 'listed by its digest but deleted from the bucket',
        eventIds: [],
      });
      await this.#alert(['deleted', bucket, key], `s3://${bucket}/${key}`, `log object listed by digest ${digestKey} was deleted`);
      return false;
    }
    await this.#settle(bucket, key, await this.#hash(bucket, key, bytes), expected, digestKey, []);
    return true;
  }

  async #chainBreak(where: string, key: string[], reason: string): Promise<void> {
    this.counts.chainBreaks++;
    await this.#alert(['chain', ...key], where, reason);
  }

  async #badDigest(where: string, reason: string): Promise<{ dead: string }> {
    this.counts.badDigests++;
    await this.#alert(['digest', where], where, `digest file rejected: ${reason}`);
    return { dead: `CloudTrail digest ${where} rejected: ${reason}` };
  }

  #row(r: Omit<LogValidationRow, 'checkedAt'>): void {
    this.#rows.push({ ...r, checkedAt: new Date(this.#now()).toISOString() });
  }

  async #alert(key: string[], where: string, reason: string): Promise<void> {
    const now = new Date(this.#now()).toISOString();
    const alert = pipelineAlert({
      type: 'pipeline.tamper',
      severity: 'high',
      key,
      source: 'cloudtrail',
      reason: `${where}: ${reason}`,
      time: now,
      detectedAt: now,
      summary: `CloudTrail log-file validation: ${where}: ${reason}. Someone with write access to the trail bucket may be hiding activity; compare with \`aws cloudtrail validate-logs\`.`,
    });
    this.alerts.push(alert);
    if (this.alerts.length > 1000) this.alerts.shift();
    this.counts.alerts++;
    this.#log.warn('cloudtrail log validation: pipeline.tamper', { where, reason });
    await this.#o.bus.publish(this.#o.alertsTopic, [pipelineAlertMessage(alert)]);
  }
}
