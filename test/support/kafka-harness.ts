import { expect } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { BusMessage } from '../../core/bus/types.js';
import { deleteTopics, kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';

/**
 * What the collector suites share on the real broker: buses and topics made per test and
 * cleaned up after the suite, a reader that collects a topic, and an exact-count check.
 */
export function kafkaHarness(prefix: string) {
  const topicsToDelete: string[] = [];
  const buses: KafkaBus[] = [];
  const stops: (() => Promise<unknown>)[] = [];
  return {
    /** Run at the end of the suite, in reverse order of registration. */
    stops,
    open(): KafkaBus {
      const bus = new KafkaBus(kafkaTestOptions({ numPartitions: 3 }));
      buses.push(bus);
      return bus;
    },
    newTopics(): { events: string; deadLetters: string } {
      const t = { events: uniqueName(`${prefix}-events`), deadLetters: uniqueName(`${prefix}-dlq`) };
      topicsToDelete.push(t.events, t.deadLetters);
      return t;
    },
    /** Everything on `topic`, in arrival (partition) order. */
    async consume(bus: KafkaBus, topic: string): Promise<BusMessage[]> {
      const got: BusMessage[] = [];
      const sub = await bus.subscribe({
        topics: [topic],
        groupId: uniqueName(`${prefix}-reader`),
        fromBeginning: true,
        handler: async (m) => void got.push(m),
      });
      stops.push(() => sub.stop());
      return got;
    },
    /** Exactly `n` messages, and still `n` a moment later (a duplicate would arrive within it). */
    async exactly(got: unknown[], n: number, what: string): Promise<void> {
      await waitFor(() => got.length >= n, `${n} ${what}`, 60_000);
      await new Promise((r) => setTimeout(r, 1500));
      expect(got.length).toBe(n);
    },
    async cleanup(): Promise<void> {
      for (const stop of stops.reverse()) await stop().catch(() => {});
      await Promise.allSettled(buses.map((b) => b.close()));
      await deleteTopics(topicsToDelete);
    },
  };
}
