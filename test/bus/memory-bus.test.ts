import { describe, expect, it } from 'vitest';
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
