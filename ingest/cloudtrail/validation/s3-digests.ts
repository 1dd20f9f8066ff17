/**
 * The S3 poller's digest pass: after the log objects of a poll, every `…/CloudTrail-Digest/<region>/`
 * folder beside a `…/CloudTrail/<region>/` one is read from its own checkpoint (`StartAfter`, in
 * the same checkpoint file as the log prefixes), each digest checked by the validator, then objects
 * overdue for a digest are swept. A digest is checkpointed once checked; a rejected one is a dead
 * letter first. A failure to reach the key API or the bus leaves the checkpoint for the next poll.
 */
import { ListObjectsV2Command, type ListObjectsV2CommandOutput, type S3Client } from '@aws-sdk/client-s3';
import type { CheckpointStore } from '../../collector/checkpoint.js';
import type { EventPublisher } from '../../collector/publisher.js';
import { dayStart } from '../layout.js';
import type { S3Checkpoint } from '../s3.js';
import { isAccessDenied } from './s3-reads.js';
import type { LogFileValidator, ObjectScope } from './validator.js';

export { isAccessDenied };

/** `…/CloudTrail/<region>/` → `…/CloudTrail-Digest/<region>/` */
export function digestPrefixOf(regionPrefix: string): string {
  return regionPrefix.replace(/\/CloudTrail\/([^/]+\/)$/, '/CloudTrail-Digest/$1');
}

/** The log prefix (`…/CloudTrail/<region>/`) a log key belongs to, or null. */
export function regionPrefixOf(key: string): string | null {
  return /^(.*?\/CloudTrail\/[^/]+\/)/.exec(key)?.[1] ?? null;
}

/** Scope of a listed object for the S3 poller: published when at or before its prefix checkpoint, out of scope before the start day. */
export function checkpointScope(bucket: string, checkpoint: S3Checkpoint): (b: string, key: string) => ObjectScope {
  return (b, key) => {
    const region = regionPrefixOf(key);
    if (b !== bucket || region === null || key <= dayStart(region, checkpoint.startDay)) return 'out-of-scope';
    const after = checkpoint.after[region];
    return after !== undefined && key <= after ? 'published' : 'future';
  };
}

export interface DigestPassOptions {
  s3: S3Client;
  bucket: string;
  validator: LogFileValidator;
  publisher: EventPublisher;
  checkpoints: CheckpointStore<S3Checkpoint>;
  checkpoint: S3Checkpoint;
  /** Digests written after this (epoch ms) are left for the next poll. */
  settledBefore: number;
  signal?: AbortSignal;
}

/** Checks the new digests of one digest folder; returns how many were read. */
export async function pollDigestPrefix(prefix: string, o: DigestPassOptions): Promise<number> {
  let read = 0;
  for (;;) {
    const startAfter = o.checkpoint.after[prefix] ?? dayStart(prefix, o.checkpoint.startDay);
    const page: ListObjectsV2CommandOutput = await o.s3.send(
      new ListObjectsV2Command({ Bucket: o.bucket, Prefix: prefix, StartAfter: startAfter }),
      o.signal ? { abortSignal: o.signal } : {},
    );
    let unsettled = false;
    let listed = 0;
    for (const item of page.Contents ?? []) {
      if (!item.Key) continue;
      if ((item.LastModified?.getTime() ?? 0) > o.settledBefore) {
        unsettled = true;
        break;
      }
      listed++;
      const outcome = await o.validator.digestAt(o.bucket, item.Key);
      if (outcome) {
        const file = `s3://${o.bucket}/${item.Key}`;
        await o.publisher.publishUnit([
          { kind: 'dead', source: 'cloudtrail', reason: outcome.dead, origin: { file, line: null, index: null }, text: '' },
        ]);
      }
      o.checkpoint.after[prefix] = item.Key;
      await o.checkpoints.save(o.checkpoint);
      read++;
      if (o.signal?.aborted) return read;
    }
    if (unsettled || !page.IsTruncated || listed === 0) return read;
  }
}
