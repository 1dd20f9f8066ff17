/**
 * The SQS consumer: long-polls a queue of "new log file" notifications (CloudTrail → SNS → SQS, or
 * S3 event notifications), fetches each object and publishes its records.
 *
 * The SQS message is the checkpoint: it is deleted only after the bus acknowledged every record of
 * every object it names. A failure leaves it in the queue, so it comes back after the visibility
 * timeout. An object that is poison (a gzip bomb, a record that cannot be published) is a dead
 * letter and its message is deleted; one S3 keeps refusing becomes one after `maxObjectRefusals`
 * receives (a redrive policy to an SQS dead-letter queue remains a good backstop). Bodies that are
 * not notifications at all go to the glasswatch dead-letter topic with the reason and are deleted:
 * no retry can fix them.
 */

import type { S3Client } from '@aws-sdk/client-s3';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { errorMessage } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/log.js';
import type { CollectorMetrics } from '../collector/metrics.js';
import type { EventPublisher } from '../collector/publisher.js';
import { sleep } from '../collector/run.js';
import type { NormalizeResult } from '../types.js';
import { parseNotification } from './notifications.js';
import { isDigestKey, type LoadedObject, loadObject, prefetch } from './objects.js';
import { eventIdsOf, objectRefusal, objectUnit } from './s3.js';
import { isAccessDenied } from './validation/s3-digests.js';
import type { LogFileValidator } from './validation/validator.js';

export interface SqsConsumerOptions {
  sqs: SQSClient;
  s3: S3Client;
  queueUrl: string;
  publisher: EventPublisher;
  /** Long-poll wait per receive, 0–20. @default 20 */
  waitTimeSeconds?: number;
  /** Messages per receive, 1–10. @default 10 */
  maxMessages?: number;
  /** Visibility timeout asked for on receive; null keeps the queue's own. @default 300 */
  visibilityTimeoutSeconds?: number | null;
  /** Objects downloaded ahead of the one being published. @default 4 */
  prefetch?: number;
  /** Output budget of one object's gzip; beyond it the object is a dead letter. @default 256 MiB */
  maxDecompressedBytes?: number;
  /** Receives of a notification whose object S3 keeps refusing (403 archived, KMS denied) before that object is a dead letter. @default 5 */
  maxObjectRefusals?: number;
  /**
   * Log-file validation (validation/): published objects are hashed, notified digests checked (the
   * queue must receive the digest folder's notifications too). null = off.
   */
  validator?: LogFileValidator | null;
  /** validateLogFiles was set: a digest S3 refuses (403) is a dead letter, never a reason to stop validating. */
  validationExplicit?: boolean;
  metrics?: CollectorMetrics;
  logger?: Logger;
}

export interface ReceiveSummary {
  messages: number;
  deleted: number;
  /** Messages left in the queue for redelivery (fetch or publish failed). */
  failed: number;
  poison: number;
  objects: number;
  events: number;
}

export class SqsConsumer {
  readonly #o: SqsConsumerOptions;
  readonly #log: Logger;
  /** Objects read so far: an object S3 refuses is only poison while others are readable. */
  #reads = 0;
  #validator: LogFileValidator | null;
  /** Why validation is off, or null while it runs. */
  validationOff: string | null;

  constructor(options: SqsConsumerOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    this.#validator = options.validator ?? null;
    this.validationOff = this.#validator ? null : 'validateLogFiles: false';
  }

  get collector(): string {
    return this.#o.publisher.collector;
  }

  /** One long-poll receive and the processing of what it returned. */
  async receiveOnce(signal?: AbortSignal): Promise<ReceiveSummary> {
    const o = this.#o;
    const visibility = o.visibilityTimeoutSeconds === undefined ? 300 : o.visibilityTimeoutSeconds;
    const out = await o.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: o.queueUrl,
        MaxNumberOfMessages: o.maxMessages ?? 10,
        WaitTimeSeconds: o.waitTimeSeconds ?? 20,
        // How often a message came back: an object S3 keeps refusing is dead-lettered, not received forever.
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        ...(visibility === null ? {} : { VisibilityTimeout: visibility }),
      }),
      signal ? { abortSignal: signal } : {},
    );
    const messages = out.Messages ?? [];
    const summary: ReceiveSummary = { messages: messages.length, deleted: 0, failed: 0, poison: 0, objects: 0, events: 0 };
    const done: Message[] = [];
    // Messages still in hand keep their visibility extended, so a slow object (a large file, a
    // Kafka hiccup) is not handed to another consumer while this one is still publishing it.
    const inHand = new Set(messages);
    const heartbeat =
      visibility === null || messages.length === 0
        ? null
        : setInterval(() => void this.#extend([...inHand], visibility), (visibility * 1000) / 2);
    try {
      for (const message of messages) {
        // A stop lets the message in hand finish; the rest become visible again after the timeout.
        if (signal?.aborted) break;
        try {
          if (await this.#process(message, summary, signal)) summary.poison++;
          done.push(message);
        } catch (err) {
          inHand.delete(message); // let it come back after the timeout
          summary.failed++;
          o.metrics?.recordError(this.collector, 'receiving');
          this.#log.warn('cloudtrail sqs: message left for redelivery', { messageId: message.MessageId, error: errorMessage(err) });
        }
      }
    } finally {
      if (heartbeat) clearInterval(heartbeat);
    }
    summary.deleted = await this.#delete(done);
    try {
      await this.#validator?.sweep();
      if (this.#validator?.digestsDenied) this.#turnOff(this.#validator.digestsDenied);
    } catch (err) {
      this.#log.warn('cloudtrail log validation: sweep failed; retried next receive', { error: errorMessage(err) });
    }
    if (summary.messages > 0) this.#log.debug('cloudtrail sqs receive', { ...summary });
    return summary;
  }

  /** Publishes everything one message names; resolves true for a dead-lettered (poison) message. */
  async #process(message: Message, summary: ReceiveSummary, signal?: AbortSignal): Promise<boolean> {
    const o = this.#o;
    const body = message.Body ?? '';
    const parsed = parseNotification(body);
    const origin = { file: `sqs:${o.queueUrl}#${message.MessageId ?? '?'}`, line: null, index: null };
    if (parsed.kind === 'poison') {
      await o.publisher.publishUnit([
        { kind: 'dead', source: 'cloudtrail', reason: `unusable SQS notification: ${parsed.reason}`, origin, text: body },
      ]);
      return true;
    }
    if (parsed.skipped.length > 0) {
      await o.publisher.publishUnit(parsed.skipped.map((what): NormalizeResult => ({ kind: 'skipped', source: null, what, origin })));
    }
    const received = Number(message.Attributes?.ApproximateReceiveCount ?? 1);
    const validator = this.#validator;
    const logs = validator ? parsed.objects.filter((r) => !isDigestKey(r.key)) : parsed.objects;
    for await (const [ref, loaded] of prefetch(logs, o.prefetch ?? 4, (r) => this.#load(r.bucket, r.key, received, signal))) {
      const results = await objectUnit(o.publisher, ref.bucket, ref.key, loaded, o.maxDecompressedBytes);
      const unit = await o.publisher.publishUnit(results);
      summary.objects++;
      summary.events += unit.events;
      // After the publish: validation never holds events back.
      if (validator && 'bytes' in loaded) await validator.logObject(ref.bucket, ref.key, loaded.bytes, eventIdsOf(results));
    }
    // Digests after the objects of the message; a failure to reach the key API or the bus leaves the message for redelivery.
    for (const ref of validator ? parsed.objects.filter((r) => isDigestKey(r.key)) : []) {
      let outcome: { dead: string } | null;
      try {
        outcome = await (validator as LogFileValidator).digestAt(ref.bucket, ref.key);
      } catch (err) {
        if (!isAccessDenied(err)) throw err;
        // Denied is not going to heal by redelivery: off (unset) or a dead letter (validateLogFiles: true).
        if (!o.validationExplicit) {
          this.#turnOff(errorMessage(err));
          break;
        }
        o.metrics?.recordError(this.collector, 'receiving');
        outcome = { dead: `CloudTrail digest s3://${ref.bucket}/${ref.key} not readable: ${errorMessage(err)}` };
      }
      if (outcome) {
        const file = `s3://${ref.bucket}/${ref.key}`;
        await o.publisher.publishUnit([
          { kind: 'dead', source: 'cloudtrail', reason: outcome.dead, origin: { file, line: null, index: null }, text: '' },
        ]);
      }
      summary.objects++;
    }
    return false;
  }

  /**
   * `loadObject`, except that an object S3 refused (`objectRefusal`) in `maxObjectRefusals` receives
   * of its message, while other objects were readable, becomes `{ refused }` (a dead letter).
   */
  async #load(bucket: string, key: string, received: number, signal?: AbortSignal): Promise<LoadedObject | { refused: string }> {
    try {
      const loaded = await loadObject(this.#o.s3, bucket, key, signal);
      if ('bytes' in loaded) this.#reads++;
      return loaded;
    } catch (err) {
      const status = objectRefusal(err);
      if (status === null || received < (this.#o.maxObjectRefusals ?? 5) || this.#reads === 0) throw err;
      return {
        refused: `S3 refused the object in ${received} receives of its notification (HTTP ${status}) while other objects were readable: ${errorMessage(err)}`,
      };
    }
  }

  /** validateLogFiles unset and the digests are not readable (403): validation off, and the status says why. */
  #turnOff(why: string): void {
    this.validationOff = `digests not readable (${why}); set validateLogFiles: true to make this an error`;
    this.#validator = null;
    this.#log.warn('cloudtrail log-file validation off', { queueUrl: this.#o.queueUrl, reason: this.validationOff });
  }

  /** Extends the visibility of the messages in hand; a failure only risks a redelivery (at least once). */
  async #extend(messages: Message[], seconds: number): Promise<void> {
    if (messages.length === 0) return;
    try {
      await this.#o.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.#o.queueUrl,
          Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '', VisibilityTimeout: seconds })),
        }),
      );
    } catch (err) {
      this.#log.warn('cloudtrail sqs: visibility extension failed; the message may be redelivered', { error: errorMessage(err) });
    }
  }

  /** Deletes acknowledged messages; a failed delete only means a redelivery (at least once). */
  async #delete(messages: Message[]): Promise<number> {
    if (messages.length === 0) return 0;
    const o = this.#o;
    try {
      const out = await o.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: o.queueUrl,
          Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })),
        }),
      );
      const failed = out.Failed ?? [];
      if (failed.length > 0) {
        o.metrics?.recordError(this.collector, 'receiving', failed.length);
        this.#log.warn('cloudtrail sqs: delete failed, messages will be redelivered', { failed: failed.map((f) => f.Message ?? f.Code) });
      }
      return messages.length - failed.length;
    } catch (err) {
      o.metrics?.recordError(this.collector, 'receiving');
      this.#log.warn('cloudtrail sqs: delete failed, messages will be redelivered', { count: messages.length, error: errorMessage(err) });
      return 0;
    }
  }

  /** Receives until `signal` aborts; a failed receive backs off `retryDelayMs` (doubling up to 60 s). */
  async run(signal: AbortSignal, retryDelayMs = 1000): Promise<void> {
    let delay = retryDelayMs;
    while (!signal.aborted) {
      try {
        await this.receiveOnce(signal);
        delay = retryDelayMs;
      } catch (err) {
        if (signal.aborted) break;
        this.#o.metrics?.recordError(this.collector, 'receiving');
        this.#log.warn('cloudtrail sqs receive failed; retrying', {
          queueUrl: this.#o.queueUrl,
          error: errorMessage(err),
          retryInMs: delay,
        });
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 60_000);
      }
    }
  }
}
