/**
 * What the in-process bus holds once its groups consumed everything (`npm run bench -- memory-bus`):
 * N messages of ~1.5 KiB (an event's size on the events topic) published in requests of 1,000 and
 * consumed by two groups (the sink and the detector of `start`), then the heap after a full GC.
 * Kept: every message, as the bus did before. Dropped: the pipeline's bus, whose retention of
 * consumed messages (30 s in `start`) is 1 s here to keep the run short; the mechanism is the same.
 */
import { MemoryBus } from '../../core/bus/memory.js';
import { benchSize, figure } from './figures.js';

const N = Number(process.env.BENCH_MESSAGES ?? benchSize({ full: 200_000, smoke: 20_000 }));
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const value = JSON.stringify({ id: 'e', raw: 'x'.repeat(1400) });
const heapMiB = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1048576 + process.memoryUsage().arrayBuffers / 1048576;
};

async function run(label: string, bus: MemoryBus): Promise<number> {
  const before = heapMiB();
  const counts = { sink: 0, detector: 0 };
  const subs = await Promise.all(
    (['sink', 'detector'] as const).map((g) => bus.subscribe({ topics: ['events'], groupId: g, handler: async () => void counts[g]++ })),
  );
  for (let i = 0; i < N; i += 1000)
    await bus.publish(
      'events',
      Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ key: `k${(i + j) % 997}`, value })),
    );
  while (counts.sink < N || counts.detector < N) await new Promise((r) => setTimeout(r, 10));
  // Past the retention, one more message: its commit drops what is old enough.
  await new Promise((r) => setTimeout(r, 1100));
  await bus.publish('events', [{ key: 'k', value: 'last' }]);
  while (counts.sink <= N || counts.detector <= N) await new Promise((r) => setTimeout(r, 10));
  // Committed just after the handler returned.
  await new Promise((r) => setTimeout(r, 50));
  const held = heapMiB() - before;
  console.log(
    `memory bus, ${label}: ${N} messages consumed by 2 groups; held afterwards ${held.toFixed(1)} MiB (${bus.messages('events').length} messages)`,
  );
  await Promise.all(subs.map((s) => s.stop()));
  await bus.close();
  return held;
}

const kept = await run('every message kept (before)', new MemoryBus());
figure('memory bus held after consumption, every message kept', kept, 'MiB', { messages: N, bytes: value.length });
const dropped = await run('consumed messages dropped (pipeline)', new MemoryBus({ keepConsumed: false, consumedRetentionMs: 1000 }));
figure('memory bus held after consumption, consumed dropped', dropped, 'MiB', { messages: N, bytes: value.length, retentionMs: 1000 });
