import { COLLECTOR_DLQ_HEADERS } from '../../ingest/collector/publisher.js';
import type { Bus, BusMessage, Subscription } from '../bus/types.js';
import { DEAD_LETTER_HEADERS } from '../bus/types.js';
import type { TopicsConfig } from '../config.js';
import { errorMessage, GlasswatchError, isRetriable } from '../errors.js';
import type { AuditEvent } from '../event.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/client.js';
import { insertEventLines, isEventLine } from '../store/event-lines.js';
import { GroupFlush } from '../store/group-flush.js';
import { StoreWriter } from '../store/writer.js';

/**
 * The store side of the live pipeline: one consumer group persists every normalized
 * event into `events` and every dead letter into `dead_letters`, in batches. Offsets
 * are committed only after the batch is in the store (the bus's `afterBatch`), so a
 * crash re-delivers and ReplacingMergeTree collapses the re-inserted rows. Event values
 * go to the engine as the JSON lines they are (`events_intake`): parsing them in Node
 * and serializing rows again cost more CPU than anything else the sink did.
 */
export async function startStoreSink(o: { bus: Bus; store: Store; topics: TopicsConfig; log: Logger; groupId?: string }): Promise<{
  stop(): Promise<void>;
  readonly stored: { events: number; deadLetters: number };
}> {
  const writer = new StoreWriter(o.store, { batchSize: 5000 });
  const stored = { events: 0, deadLetters: 0 };
  let pending = { events: 0, deadLetters: 0 };
  // Event values as they came off the bus (one JSON line each): inserted without parsing them here.
  let lines: BusMessage[] = [];
  /** Inserts the buffered lines; how many the store refused (dead-lettered instead). */
  const flushLines = async (): Promise<number> => {
    const batch = lines;
    lines = [];
    try {
      return await storeLines(o.store, batch, o.bus, o.topics.deadLetters);
    } catch (err) {
      lines = [...batch, ...lines];
      throw err;
    }
  };
  // Partitions are consumed concurrently and each one's batch waits for a flush that covers it:
  // one insert for what several partitions fetched, instead of one each (see GroupFlush).
  const group = new GroupFlush(async () => {
    const counted = pending;
    pending = { events: 0, deadLetters: 0 };
    try {
      counted.events -= await flushLines();
      await writer.flush();
    } catch (err) {
      pending = { events: pending.events + counted.events, deadLetters: pending.deadLetters + counted.deadLetters };
      throw err;
    }
    stored.events += counted.events;
    stored.deadLetters += counted.deadLetters;
    if (counted.events + counted.deadLetters > 0) o.log.debug('store sink batch', { ...counted });
  });
  const afterBatch = () => group.flush();
  const groupId = o.groupId ?? 'glasswatch-sink';
  const events: Subscription = await o.bus.subscribe({
    topics: [o.topics.events],
    groupId,
    deadLetterTopic: o.topics.deadLetters,
    afterBatch,
    afterBatchEvery: 5000,
    // Each insert costs chDB ~40 ms whatever its size, and chDB runs one parameterized query at a
    // time: at 2,000 events/s a fetch per produce meant 16 inserts a second, 85% of the engine's time,
    // and the detector's writes waited behind them. The broker now gathers up to 512 KiB or 250 ms.
    fetchMinBytes: 512 * 1024,
    fetchMaxWaitMs: 250,
    partitionsConcurrently: 8,
    handler: async (m) => {
      pending.events++;
      if (isEventLine(m.value)) {
        lines.push(m);
        return;
      }
      // Not one line of JSON object text (another producer): parsed here, or dead-lettered.
      let e: AuditEvent;
      try {
        e = JSON.parse(m.value.toString('utf8')) as AuditEvent;
      } catch (cause) {
        pending.events--;
        throw new GlasswatchError('BG_STORE_DECODE', `event at ${m.topic}/${m.partition}@${m.offset} is not JSON`, {
          stage: 'storing',
          cause,
        });
      }
      // Awaited only when the row fills a batch: no per-event await on the hot path.
      const full = writer.addEvent(e);
      if (full) await full;
    },
  });
  const dead: Subscription = await o.bus.subscribe({
    topics: [o.topics.deadLetters],
    groupId: `${groupId}-dead-letters`,
    afterBatch,
    handler: async (m) => {
      const h = m.headers;
      let origin: { file?: string; line?: number | null; index?: number | null } = {};
      try {
        origin = JSON.parse(h[COLLECTOR_DLQ_HEADERS.origin] ?? '{}') as typeof origin;
      } catch {
        // A dead letter with a damaged origin header is still kept, located by its bus position.
      }
      const stage = h[COLLECTOR_DLQ_HEADERS.stage];
      await writer.addDeadLetter({
        source: h[COLLECTOR_DLQ_HEADERS.source] || null,
        stage: stage === 'receiving' || stage === 'sending' || stage === 'storing' ? stage : 'processing',
        reason: h[DEAD_LETTER_HEADERS.reason] ?? 'unknown',
        file:
          origin.file ??
          `${h[DEAD_LETTER_HEADERS.topic] ?? m.topic}[${h[DEAD_LETTER_HEADERS.partition] ?? m.partition}]@${h[DEAD_LETTER_HEADERS.offset] ?? m.offset}`,
        line: typeof origin.line === 'number' ? origin.line : null,
        index: typeof origin.index === 'number' ? origin.index : null,
        text: m.value.toString('utf8'),
      });
      pending.deadLetters++;
    },
  });
  return {
    stored,
    stop: async () => {
      await events.stop();
      await dead.stop();
      await writer.flush();
    },
  };
}

/**
 * One INSERT for the batch. When the engine refuses it (a value it cannot read as an event: a bad
 * time, a field of the wrong type), the batch is split in halves until the refused lines are found;
 * each goes to the dead-letter topic with the engine's reason, and the rest is stored. A store that
 * is down (retriable) fails the batch instead, so it is delivered again.
 */
async function storeLines(store: Store, batch: BusMessage[], bus: Bus, deadLetterTopic: string): Promise<number> {
  if (batch.length === 0) return 0;
  try {
    await insertEventLines(
      store,
      batch.map((m) => m.value),
    );
    return 0;
  } catch (err) {
    if (isRetriable(err)) throw err;
    if (batch.length === 1) {
      const m = batch[0]!;
      await bus.publish(deadLetterTopic, [
        {
          key: m.key,
          value: m.value,
          headers: {
            ...m.headers,
            [DEAD_LETTER_HEADERS.reason]: `not storable as an event: ${errorMessage(err).slice(0, 900)}`,
            [DEAD_LETTER_HEADERS.topic]: m.topic,
            [DEAD_LETTER_HEADERS.partition]: String(m.partition),
            [DEAD_LETTER_HEADERS.offset]: m.offset,
          },
        },
      ]);
      return 1;
    }
    const half = Math.ceil(batch.length / 2);
    return (
      (await storeLines(store, batch.slice(0, half), bus, deadLetterTopic)) +
      (await storeLines(store, batch.slice(half), bus, deadLetterTopic))
    );
  }
}
