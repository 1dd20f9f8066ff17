import { describe, expect, it } from 'vitest';
import { createBus } from '../../core/bus/index.js';
import { MemoryBus } from '../../core/bus/memory.js';

/**
 * The in-process bus's own behaviour where Kafka's cannot be pinned in time (the contract suite
 * covers the rest on both): a fresh group with `fromBeginning: false` starts at the end of the
 * topic as it was when it subscribed, and handles every message published after.
 */
describe('MemoryBus', () => {
  it('fromBeginning: false skips what was there before, and handles what comes after (also the message that wakes it)', async () => {
    const bus = new MemoryBus();
    await bus.publish('t', [
      { key: 'a', value: 'old-1' },
      { key: 'a', value: 'old-2' },
    ]);
    const seen: string[] = [];
    const sub = await bus.subscribe({
      topics: ['t'],
      groupId: 'g',
      fromBeginning: false,
      handler: async (m) => void seen.push(m.value.toString()),
    });
    await new Promise((r) => setTimeout(r, 20));
    await bus.publish('t', [{ key: 'a', value: 'new-1' }]);
    await bus.publish('t', [{ key: 'a', value: 'new-2' }]);
    const deadline = Date.now() + 2000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await sub.stop();
    await bus.close();
    expect(seen).toEqual(['new-1', 'new-2']);
  });
});

/**
 * The pipeline's in-process bus (`createBus`, as `glasswatch start` makes it) keeps only what a
 * subscribed group has not consumed. Measured before: every message ever published stayed in the
 * process (200,000 events of `bench:live` on this bus: all of them still held after being stored
 * and judged), so a long-running `start` without Kafka grew without bound.
 */
describe('MemoryBus for the pipeline: consumed messages are dropped', () => {
  const until = async (what: string, ok: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const value = 'x'.repeat(1024);

  it('holds only what the slowest subscribed group has not committed, and loses nothing for it', async () => {
    const bus = new MemoryBus({ keepConsumed: false, consumedRetentionMs: 0 });
    const fast: number[] = [];
    const slow: number[] = [];
    let slowGate: (() => void) | null = null;
    const subFast = await bus.subscribe({ topics: ['events'], groupId: 'sink', handler: async (m) => void fast.push(Number(m.offset)) });
    const subSlow = await bus.subscribe({
      topics: ['events'],
      groupId: 'detector',
      handler: async (m) => {
        // Stops after 10,000 messages until released: the slow group holds the rest back.
        if (slow.length === 10_000) await new Promise<void>((r) => (slowGate = r));
        slow.push(Number(m.offset));
      },
    });
    for (let i = 0; i < 50; i++)
      await bus.publish(
        'events',
        Array.from({ length: 1000 }, (_, j) => ({ key: `k${j}`, value })),
      );
    await until('the fast group to consume all', () => fast.length === 50_000);
    await until('the slow group to stop at 10,000', () => slowGate !== null);
    // Held: what the slow group has not committed (dropped in steps of 1,024 once it committed them).
    expect(bus.messages('events').length).toBeLessThanOrEqual(40_000 + 1024);
    expect(bus.messages('events').length).toBeGreaterThanOrEqual(40_000 - 1);
    (slowGate as unknown as () => void)();
    await until('the slow group to consume all', () => slow.length === 50_000);
    await until('everything consumed to be dropped', () => bus.messages('events').length === 0);
    // Every offset reached both groups, in order, once.
    expect(fast).toEqual(Array.from({ length: 50_000 }, (_, i) => i));
    expect(slow).toEqual(Array.from({ length: 50_000 }, (_, i) => i));
    // Offsets go on from where they were: the next message is 50,000, and a group resumes from its commit.
    await subSlow.stop();
    await bus.publish('events', [{ key: 'k', value: 'after' }]);
    const again: string[] = [];
    const resumed = await bus.subscribe({ topics: ['events'], groupId: 'detector', handler: async (m) => void again.push(m.offset) });
    await until('the resumed group to read the new message', () => again.length === 1);
    expect(again).toEqual(['50000']);
    expect((await bus.endOffsets('events')).get(0)).toBe('50001');
    await Promise.all([subFast.stop(), resumed.stop()]);
    await bus.close();
  });

  it('keeps a compacted topic and a topic nobody reads yet whole (a late reader needs them)', async () => {
    const bus = new MemoryBus({ keepConsumed: false, consumedRetentionMs: 0 });
    await bus.ensureTopic('tickets', { compacted: true });
    await bus.publish('tickets', [{ key: 't1', value: 'ticket' }]);
    await bus.publish(
      'early',
      Array.from({ length: 3000 }, (_, i) => ({ key: `k${i}`, value })),
    );
    const first: string[] = [];
    const sub = await bus.subscribe({ topics: ['tickets'], groupId: 'ledger-1', handler: async (m) => void first.push(m.offset) });
    await until('the first follower', () => first.length === 1);
    await sub.stop();
    // A second follower, later, reads the whole ticket history.
    const second: string[] = [];
    const late = await bus.subscribe({ topics: ['tickets'], groupId: 'ledger-2', handler: async (m) => void second.push(m.offset) });
    await until('the late follower', () => second.length === 1);
    await late.stop();
    // Published before any group subscribed (collectors start before the sink): all there for it.
    expect(bus.messages('early')).toHaveLength(3000);
    const read: string[] = [];
    const sink = await bus.subscribe({ topics: ['early'], groupId: 'sink', handler: async (m) => void read.push(m.offset) });
    await until('the sink to read the early messages', () => read.length === 3000);
    await until('them to be dropped', () => bus.messages('early').length === 0);
    await sink.stop();
    await bus.close();
  });

  it("keeps what one group consumed for the retention: a group subscribing moments later still gets it (start's sink and detector)", async () => {
    // Found in bench:live on this bus: the sink consumed the first event before the detector had
    // subscribed, and a bus that dropped it at once left it unjudged.
    const bus = createBus({ kind: 'memory' }) as MemoryBus;
    await bus.publish('events', [{ key: 'k', value: 'first' }]);
    const sinkRead: string[] = [];
    const sink = await bus.subscribe({ topics: ['events'], groupId: 'sink', handler: async (m) => void sinkRead.push(m.offset) });
    await until('the sink to consume it', () => sinkRead.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    const judged: string[] = [];
    const detector = await bus.subscribe({ topics: ['events'], groupId: 'detector', handler: async (m) => void judged.push(m.offset) });
    await until('the detector to get it too', () => judged.length === 1);
    await Promise.all([sink.stop(), detector.stop()]);
    await bus.close();
  });

  it('drops consumed messages once they are older than the retention', async () => {
    const bus = new MemoryBus({ keepConsumed: false, consumedRetentionMs: 300 });
    const read: string[] = [];
    const sub = await bus.subscribe({ topics: ['t'], groupId: 'g', handler: async (m) => void read.push(m.offset) });
    await bus.publish(
      't',
      Array.from({ length: 2000 }, (_, i) => ({ key: `k${i}`, value })),
    );
    await until('all consumed', () => read.length === 2000);
    // Consumed, but younger than the retention: still held.
    expect(bus.messages('t')).toHaveLength(2000);
    await new Promise((r) => setTimeout(r, 400));
    // The next commit drops them.
    await bus.publish('t', [{ key: 'k', value: 'later' }]);
    await until('the later one consumed', () => read.length === 2001);
    await until('the old ones dropped', () => bus.messages('t').length <= 1);
    await sub.stop();
    await bus.close();
  });
});
