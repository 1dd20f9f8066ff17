import { COLLECTOR_DLQ_HEADERS } from '../../ingest/collector/publisher.js';
import type { Bus, Subscription } from '../bus/types.js';
import { DEAD_LETTER_HEADERS } from '../bus/types.js';
import type { TopicsConfig } from '../config.js';
import { GlasswatchError } from '../errors.js';
import type { AuditEvent } from '../event.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/client.js';
import { StoreWriter } from '../store/writer.js';

/**
 * The store side of the live pipeline: one consumer group persists every normalized
 * event into `events` and every dead letter into `dead_letters`, in batches. Offsets
 * are committed only after the batch is in the store (the bus's `afterBatch`), so a
 * crash re-delivers and ReplacingMergeTree collapses the re-inserted rows.
 */
export async function startStoreSink(o: { bus: Bus; store: Store; topics: TopicsConfig; log: Logger; groupId?: string }): Promise<{
  stop(): Promise<void>;
  readonly stored: { events: number; deadLetters: number };
}> {
  const writer = new StoreWriter(o.store, { batchSize: 5000 });
  const stored = { events: 0, deadLetters: 0 };
  let pending = { events: 0, deadLetters: 0 };
  const afterBatch = async () => {
    await writer.flush();
    stored.events += pending.events;
    stored.deadLetters += pending.deadLetters;
    if (pending.events + pending.deadLetters > 0) o.log.debug('store sink batch', { ...pending });
    pending = { events: 0, deadLetters: 0 };
  };
  const group = o.groupId ?? 'glasswatch-sink';
  const events: Subscription = await o.bus.subscribe({
    topics: [o.topics.events],
    groupId: group,
    deadLetterTopic: o.topics.deadLetters,
    afterBatch,
    afterBatchEvery: 5000,
    handler: async (m) => {
      let e: AuditEvent;
      try {
        e = JSON.parse(m.value.toString('utf8')) as AuditEvent;
      } catch (cause) {
        throw new GlasswatchError('BG_STORE_DECODE', `event at ${m.topic}/${m.partition}@${m.offset} is not JSON`, {
          stage: 'storing',
          cause,
        });
      }
      // Awaited only when the row fills a batch: no per-event await on the hot path.
      const full = writer.addEvent(e);
      if (full) await full;
      pending.events++;
    },
  });
  const dead: Subscription = await o.bus.subscribe({
    topics: [o.topics.deadLetters],
    groupId: `${group}-dead-letters`,
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
