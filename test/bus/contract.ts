/**
 * The `Bus` contract as a test suite, run against every implementation (bus-contract.test.ts):
 * what a pipeline stage may rely on whatever the transport.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Bus, type BusMessage, DEAD_LETTER_HEADERS, type Subscription } from '../../core/bus/types.js';
import { GlasswatchError } from '../../core/errors.js';
import { uniqueName, waitFor } from './helpers.js';

export interface ContractTarget {
  name: string;
  /** Runs once before the suite; throws (clearly) when the transport is not available. */
  ready?: () => Promise<void>;
  create: () => Bus;
  /** Best-effort removal of the suite's topics. */
  cleanup?: (topics: string[]) => Promise<void>;
}

const flaky = () => new GlasswatchError('BG_TEST_FLAKY', 'flaky downstream', { retriable: true });
const poison = () => new GlasswatchError('BG_TEST_POISON', 'cannot parse event', { retriable: false });

export function busContract(target: ContractTarget): void {
  describe(`Bus contract: ${target.name}`, () => {
    const buses: Bus[] = [];
    const topics: string[] = [];
    const open = () => {
      const bus = target.create();
      buses.push(bus);
      return bus;
    };
    const topic = (prefix: string) => {
      const name = uniqueName(prefix);
      topics.push(name);
      return name;
    };
    /** Collects a topic's messages through a fresh group until `count` arrived. */
    const drain = async (bus: Bus, from: string, count: number) => {
      const seen: BusMessage[] = [];
      const sub = await bus.subscribe({ topics: [from], groupId: uniqueName('drain'), handler: async (m) => void seen.push(m) });
      await waitFor(() => seen.length >= count, `${count} message(s) on ${from}`);
      await sub.stop();
      return seen;
    };

    beforeAll(async () => {
      await target.ready?.();
    });
    afterEach(async () => {
      await Promise.allSettled(buses.splice(0).map((b) => b.close()));
    });
    afterAll(async () => {
      await target.cleanup?.(topics);
    });

    it('delivers key, value and headers, in order per key', async () => {
      const bus = open();
      const t = topic('order');
      const sent = Array.from({ length: 60 }, (_, i) => ({
        key: `k${i % 3}`,
        value: `${i % 3}:${Math.floor(i / 3)}`,
        headers: { source: 'contract', n: String(i) },
      }));
      await bus.publish(t, sent);
      const got = await drain(bus, t, 60);
      expect(got).toHaveLength(60);
      for (const m of got) {
        expect(m.topic).toBe(t);
        expect(Buffer.isBuffer(m.value)).toBe(true);
        expect(typeof m.offset).toBe('string');
        expect(Number.isFinite(m.timestamp)).toBe(true);
        expect(m.headers.source).toBe('contract');
        expect(m.value.toString().startsWith(`${m.key?.slice(1)}:`)).toBe(true);
      }
      for (const key of ['k0', 'k1', 'k2']) {
        const seqs = got.filter((m) => m.key === key).map((m) => Number(m.value.toString().split(':')[1]));
        expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i));
      }
    });

    it('retries a retriable failure and commits only after the handler succeeded', async () => {
      const bus = open();
      const t = topic('retry');
      const dlq = topic('retry-dlq');
      const groupId = uniqueName('retry');
      await bus.publish(
        t,
        Array.from({ length: 10 }, (_, i) => ({ key: 'same', value: String(i) })),
      );
      const attempts = new Map<string, number>();
      const handled: string[] = [];
      const sub = await bus.subscribe({
        topics: [t],
        groupId,
        deadLetterTopic: dlq,
        maxAttempts: 3,
        handler: async (m) => {
          const v = m.value.toString();
          const n = (attempts.get(v) ?? 0) + 1;
          attempts.set(v, n);
          if (v === '4' && n === 1) throw flaky();
          handled.push(v);
        },
      });
      await waitFor(() => handled.length >= 10, '10 handled messages');
      await sub.stop();
      expect(handled).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
      expect(attempts.get('4')).toBe(2);

      // Same group again: everything handled was committed, only the new message comes.
      await bus.publish(t, [{ key: 'same', value: 'after' }]);
      const again: string[] = [];
      const sub2 = await bus.subscribe({ topics: [t], groupId, handler: async (m) => void again.push(m.value.toString()) });
      await waitFor(() => again.length >= 1, 'the message published after the restart');
      await new Promise((resolve) => setTimeout(resolve, 300));
      await sub2.stop();
      expect(again).toEqual(['after']);
      const dead: BusMessage[] = [];
      const probe = await bus.subscribe({ topics: [dlq], groupId: uniqueName('probe'), handler: async (m) => void dead.push(m) });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await probe.stop();
      expect(dead).toHaveLength(0);
    });

    it('dead-letters a poison message with the reason and keeps consuming', async () => {
      const bus = open();
      const t = topic('poison');
      const dlq = topic('poison-dlq');
      await bus.publish(t, [
        { key: 'a', value: 'ok-1' },
        { key: 'a', value: 'poison', headers: { trace: 'abc' } },
        { key: 'a', value: 'ok-2' },
      ]);
      const handled: string[] = [];
      let poisonAttempts = 0;
      const sub = await bus.subscribe({
        topics: [t],
        groupId: uniqueName('poison'),
        deadLetterTopic: dlq,
        handler: async (m) => {
          if (m.value.toString() === 'poison') {
            poisonAttempts++;
            throw poison();
          }
          handled.push(m.value.toString());
        },
      });
      await waitFor(() => handled.length >= 2, 'the messages around the poison one');
      await sub.stop();
      expect(handled).toEqual(['ok-1', 'ok-2']);
      expect(poisonAttempts).toBe(1); // not retriable: no retries
      const [dead] = await drain(bus, dlq, 1);
      expect(dead?.value.toString()).toBe('poison');
      expect(dead?.key).toBe('a');
      expect(dead?.headers[DEAD_LETTER_HEADERS.reason]).toContain('cannot parse event');
      expect(dead?.headers[DEAD_LETTER_HEADERS.topic]).toBe(t);
      expect(dead?.headers[DEAD_LETTER_HEADERS.offset]).toBe('1');
      expect(dead?.headers[DEAD_LETTER_HEADERS.partition]).toMatch(/^\d+$/);
      expect(dead?.headers.trace).toBe('abc');
    });

    it('dead-letters after maxAttempts retriable failures', async () => {
      const bus = open();
      const t = topic('exhaust');
      const dlq = topic('exhaust-dlq');
      await bus.publish(t, [
        { key: 'x', value: 'always-flaky' },
        { key: 'x', value: 'fine' },
      ]);
      let attempts = 0;
      const handled: string[] = [];
      const sub = await bus.subscribe({
        topics: [t],
        groupId: uniqueName('exhaust'),
        deadLetterTopic: dlq,
        maxAttempts: 3,
        handler: async (m) => {
          if (m.value.toString() === 'always-flaky') {
            attempts++;
            throw flaky();
          }
          handled.push(m.value.toString());
        },
      });
      await waitFor(() => handled.length >= 1, 'the message after the failing one');
      await sub.stop();
      expect(attempts).toBe(3);
      const [dead] = await drain(bus, dlq, 1);
      expect(dead?.headers[DEAD_LETTER_HEADERS.reason]).toContain('flaky downstream');
    });

    it('stop() keeps committed offsets: the next member of the group resumes without loss', async () => {
      const bus = open();
      const t = topic('resume');
      const groupId = uniqueName('resume');
      await bus.publish(
        t,
        Array.from({ length: 200 }, (_, i) => ({ key: `k${i % 4}`, value: String(i) })),
      );
      const first: number[] = [];
      let reached: () => void = () => {};
      const halfway = new Promise<void>((resolve) => {
        reached = resolve;
      });
      const sub: Subscription = await bus.subscribe({
        topics: [t],
        groupId,
        handler: async (m) => {
          first.push(Number(m.value.toString()));
          if (first.length === 50) reached();
          // Slow enough that the stop lands mid-stream on any transport.
          if (first.length >= 50) await new Promise((resolve) => setTimeout(resolve, 5));
        },
      });
      await halfway;
      await sub.stop();
      const stoppedAt = first.length;
      expect(stoppedAt).toBeLessThan(200);
      const second: number[] = [];
      const sub2 = await bus.subscribe({ topics: [t], groupId, handler: async (m) => void second.push(Number(m.value.toString())) });
      await waitFor(() => new Set([...first, ...second]).size >= 200, 'all 200 messages across both members');
      await sub2.stop();
      expect(first.length).toBe(stoppedAt); // nothing handled after stop() resolved
      expect(new Set([...first, ...second]).size).toBe(200);
      // A clean stop commits what was handled: nothing is delivered twice.
      expect(first.length + second.length).toBe(200);
    });

    it('afterBatch: a buffering sink commits only what it made durable; a failed flush is delivered again', async () => {
      const bus = open();
      const t = topic('afterbatch');
      const groupId = uniqueName('afterbatch');
      await bus.publish(
        t,
        Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 3}`, value: String(i) })),
      );
      // First member: buffers, and its flush fails, so nothing it handled may be committed.
      let buffered: number[] = [];
      const sub = await bus.subscribe({
        topics: [t],
        groupId,
        handler: async (m) => void buffered.push(Number(m.value.toString())),
        afterBatch: async () => {
          throw new Error('store unavailable');
        },
        afterBatchEvery: 10,
      });
      await waitFor(() => buffered.length >= 10, 'the first member to handle a batch');
      await sub.stop();
      // Second member of the same group: its flushes succeed.
      const durable: number[] = [];
      buffered = [];
      const sub2 = await bus.subscribe({
        topics: [t],
        groupId,
        handler: async (m) => void buffered.push(Number(m.value.toString())),
        afterBatch: async () => {
          durable.push(...buffered);
          buffered = [];
        },
        afterBatchEvery: 10,
      });
      await waitFor(() => new Set(durable).size >= 30, 'all 30 messages made durable by the second member');
      await sub2.stop();
      expect([...new Set(durable)].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    });

    it('onAssignment: the whole assignment, before any message of it; a failed one is called again first', async () => {
      const bus = open();
      const t = topic('assign');
      await bus.publish(
        t,
        Array.from({ length: 12 }, (_, i) => ({ key: `k${i}`, value: String(i) })),
      );
      const assignments: Array<Array<{ topic: string; partition: number }>> = [];
      let restored = false;
      let failedOnce = false;
      const early: string[] = [];
      const seen: BusMessage[] = [];
      const sub = await bus.subscribe({
        topics: [t],
        groupId: uniqueName('assign'),
        onAssignment: async (partitions) => {
          assignments.push(partitions);
          if (!failedOnce) {
            failedOnce = true;
            throw new Error('state store not reachable yet');
          }
          await new Promise((r) => setTimeout(r, 300)); // a restore that takes a while
          restored = true;
        },
        handler: async (m) => {
          if (!restored) early.push(m.offset);
          seen.push(m);
        },
      });
      await waitFor(() => seen.length >= 12, 'the 12 messages');
      await sub.stop();
      expect(early).toEqual([]);
      expect(assignments.length).toBeGreaterThanOrEqual(2);
      const last = assignments[assignments.length - 1]!;
      for (const m of seen) expect(last).toContainEqual({ topic: t, partition: m.partition });
    });

    it('explicit partitions, tombstones and end offsets (changelogs)', async () => {
      const bus = open();
      const t = topic('changelog');
      await bus.ensureTopic?.(t, { compacted: true });
      await bus.publish(t, [
        { key: 'a', value: 'v1', partition: 0 },
        { key: 'b', value: 'v1', partition: 0 },
        { key: 'a', value: '', tombstone: true, partition: 0 },
      ]);
      const got = await drain(bus, t, 3);
      expect(got.map((m) => [m.partition, m.key, m.value.toString()])).toEqual([
        [0, 'a', 'v1'],
        [0, 'b', 'v1'],
        [0, 'a', ''],
      ]);
      expect((await bus.endOffsets?.(t))?.get(0)).toBe('3');
    });
  });
}
