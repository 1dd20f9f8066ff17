import type { Producer, ProducerRecord, RecordMetadata } from 'kafkajs';
import { GlasswatchError } from '../errors.js';

/**
 * The bus's idempotent kafkajs producer: one send at a time, and a new producer after any failed send.
 *
 * kafkajs 2.2.4 rolls back the sequence numbers of every partition of a failed produce request,
 * including partitions the broker did write. The next batch of such a partition reuses a written
 * sequence: the broker takes it for a retry and drops it without an error (silent loss), or answers
 * OUT_OF_ORDER_SEQUENCE_NUMBER to every later batch (a spool that never drains after a broker
 * restart). A new producer has a new producer id and fresh sequences: a retry may write a record
 * twice (at least once), never zero times. Sends are serialized because a concurrent send could take
 * the rolled-back sequences before the failed one is retired (kafkajs serializes requests per broker
 * for an idempotent producer anyway, so little is lost).
 */
export class ProducerSlot {
  #producer: Promise<Producer> | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(
    private readonly open: () => Promise<Producer>,
    private readonly onRetire: (err: unknown) => void,
  ) {}

  send(record: ProducerRecord): Promise<RecordMetadata[]> {
    const run = this.#tail.then(() => this.#sendNow(record));
    this.#tail = run.catch(() => {});
    return run;
  }

  async #sendNow(record: ProducerRecord): Promise<RecordMetadata[]> {
    // A send queued behind the close must not connect a new producer (it would keep the process alive).
    if (this.#closed) throw new GlasswatchError('BG_BUS_CLOSED', 'KafkaBus is closed', { stage: 'sending' });
    this.#producer ??= this.open().catch((err) => {
      this.#producer = undefined;
      throw err;
    });
    const producer = await this.#producer;
    try {
      return await producer.send(record);
    } catch (err) {
      this.#producer = undefined;
      this.onRetire(err);
      producer.disconnect().catch(() => {});
      throw err;
    }
  }

  /** Disconnects the producer now: a send still waiting on a broker fails rather than holding the close. */
  async close(): Promise<void> {
    this.#closed = true;
    const producer = this.#producer;
    this.#producer = undefined;
    await producer?.then((p) => p.disconnect()).catch(() => {});
  }
}
