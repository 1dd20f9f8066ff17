// The shared collector contract without Kafka: checkpoint files, commit-after-ack, dead letters,
// dedupe window, metrics text, silence watchdog, bounded queue.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Bus, DEAD_LETTER_HEADERS, type OutgoingMessage } from '../../core/bus/types.js';
import { GlasswatchError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { alertId } from '../../detectors/alerts/alert.js';
import {
  BoundedQueue,
  COLLECTOR_DLQ_HEADERS,
  CollectorMetrics,
  DedupeWindow,
  EventPublisher,
  FileCheckpointStore,
  SilenceWatchdog,
} from '../../ingest/collector/index.js';
import { syntheticOktaEvent } from '../../ingest/okta/local-systemlog.js';

/** A bus that records what it acknowledged, and fails while `failing` is set. */
function recordingBus() {
  const sent: { topic: string; messages: OutgoingMessage[] }[] = [];
  const bus = {
    failing: false,
    sent,
    kind: 'memory' as const,
    async publish(topic: string, messages: OutgoingMessage[]) {
      if (bus.failing) throw new GlasswatchError('BG_BUS_PUBLISH_FAILED', 'broker down', { retriable: false });
      sent.push({ topic, messages });
    },
    subscribe: async () => ({ stop: async () => {} }),
    close: async () => {},
  };
  return bus satisfies Bus;
}
const topics = { events: 'ev', deadLetters: 'dlq' };

describe('collector contract', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-collector-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('file checkpoints round-trip, replace atomically and leave no temp files', async () => {
    const store = new FileCheckpointStore<{ next: string }>(dir, 'okta');
    expect(await store.load()).toBeNull();
    await store.save({ next: 'a' });
    await store.save({ next: 'b' });
    expect(await store.load()).toEqual({ next: 'b' });
    expect(readdirSync(dir)).toEqual(['okta.json']);
    expect(() => new FileCheckpointStore(dir, '../escape')).toThrow(/checkpoint name/);
  });

  it('publishes keyed events and dead letters, and commits only after the bus acknowledged', async () => {
    const bus = recordingBus();
    const metrics = new CollectorMetrics();
    const publisher = new EventPublisher({ bus, collector: 'okta', topics, metrics, normalize: { source: 'okta' }, retry: { retries: 0 } });
    const doc = [syntheticOktaEvent(1, Date.now()), { uuid: 'broken' }, syntheticOktaEvent(2, Date.now())];
    let commits = 0;
    const summary = await publisher.publishDocument(
      doc,
      { file: 'okta:/api/v1/logs', line: null, index: null },
      async () => void commits++,
    );
    expect(summary).toEqual({ events: 2, deadLetters: 1, skipped: 0, duplicates: 0 });
    expect(commits).toBe(1);
    expect(bus.sent.map((s) => [s.topic, s.messages.length])).toEqual([
      ['ev', 2],
      ['dlq', 1],
    ]);
    expect(bus.sent[0]!.messages[0]!.key).toBe('okta:user1@example.com');
    const letter = bus.sent[1]!.messages[0]!;
    expect(letter.headers?.[DEAD_LETTER_HEADERS.reason]).toMatch(/published/);
    expect(JSON.parse(letter.headers?.[COLLECTOR_DLQ_HEADERS.origin] ?? '{}')).toMatchObject({ file: 'okta:/api/v1/logs', index: 1 });

    bus.failing = true;
    await expect(publisher.publishDocument(doc, { file: 'x', line: null, index: null }, async () => void commits++)).rejects.toThrow(
      /broker down/,
    );
    expect(commits).toBe(1);
    expect(metrics.snapshot('okta').errors.sending).toBe(1);
  });

  it('dedupe: a shared window drops ids already acknowledged, never ids of a failed unit', async () => {
    const bus = recordingBus();
    const dedupe = new DedupeWindow(3);
    const a = new EventPublisher({ bus, collector: 'okta', topics, dedupe, retry: { retries: 0 } });
    const b = new EventPublisher({ bus, collector: 'okta-hook', topics, dedupe, retry: { retries: 0 } });
    const origin = { file: 'x', line: null, index: null };
    bus.failing = true;
    await expect(a.publishDocument([syntheticOktaEvent(1, 0)], origin)).rejects.toThrow();
    bus.failing = false;
    expect((await b.publishDocument([syntheticOktaEvent(1, 0), syntheticOktaEvent(1, 0)], origin)).duplicates).toBe(1);
    expect((await a.publishDocument([syntheticOktaEvent(1, 0), syntheticOktaEvent(2, 0)], origin)).events).toBe(1);
    for (const n of [3, 4, 5]) await a.publishDocument([syntheticOktaEvent(n, 0)], origin);
    expect(dedupe.size).toBe(3);
    expect((await a.publishDocument([syntheticOktaEvent(1, 0)], origin)).events).toBe(1); // fell out of the window
  });

  it('metrics render Prometheus text per collector', () => {
    let now = 1_750_000_000_000;
    const m = new CollectorMetrics(() => now);
    m.recordBatch('k8s', { events: 100, deadLetters: 2, newestEventMs: now - 1500 });
    now += 1000;
    m.recordBatch('k8s', { events: 50, newestEventMs: now - 500 });
    m.recordError('k8s', 'receiving');
    const text = m.render();
    expect(text).toContain('glasswatch_collector_events_total{collector="k8s"} 150');
    expect(text).toContain('glasswatch_collector_events_per_second{collector="k8s"} 75');
    expect(text).toContain('glasswatch_collector_lag_seconds{collector="k8s"} 0.500');
    expect(text).toContain(`glasswatch_collector_last_event_time_seconds{collector="k8s"} ${(now - 500) / 1000}`);
    expect(text).toContain('glasswatch_collector_dead_letters_total{collector="k8s"} 2');
    expect(text).toContain('glasswatch_collector_errors_total{collector="k8s",stage="receiving"} 1');
    expect(text).toMatch(/# TYPE glasswatch_collector_events_total counter/);
  });

  it('silence watchdog publishes one pipeline.silence alert per silence, with a deterministic id', async () => {
    const bus = recordingBus();
    let now = Date.parse('2025-06-01T00:00:00Z');
    const lines: string[] = [];
    const dog = new SilenceWatchdog({
      collector: 'okta',
      bus,
      silenceSeconds: 60,
      now: () => now,
      logger: createLogger({ write: (l) => lines.push(l) }),
    });
    expect(await dog.check()).toBeNull();
    now += 61_000;
    const alert = await dog.check();
    expect(alert?.type).toBe('pipeline.silence');
    expect(alert?.id).toBe(alertId('pipeline.silence', 'okta', '2025-06-01T00:00:00.000Z'));
    expect(await dog.check()).toBeNull(); // same silence: no second alert
    expect(bus.sent).toHaveLength(1);
    expect(bus.sent[0]!.topic).toBe('glasswatch.alerts');
    expect(JSON.parse(String(bus.sent[0]!.messages[0]!.value))).toMatchObject({ type: 'pipeline.silence', severity: 'high' });
    expect(lines.some((l) => l.includes('pipeline.silence'))).toBe(true);
    dog.delivered(5);
    now += 61_000;
    expect((await dog.check())?.id).not.toBe(alert?.id); // a new silence is a new alert
  });

  it('bounded queue refuses beyond its weight and drains in order', async () => {
    const handled: number[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const q = new BoundedQueue<number>({
      maxItems: 10,
      maxWeight: 5,
      weight: (n) => n,
      maxBytes: 1024,
      bytes: () => 1,
      handle: async (n) => {
        await gate;
        handled.push(n);
      },
      onError: () => {},
    });
    expect(q.offer(3)).toBe(true);
    expect(q.offer(2)).toBe(true);
    expect(q.offer(1)).toBe(false);
    release();
    await q.drained();
    expect(handled).toEqual([3, 2]);
    expect(q.offer(9)).toBe(true); // an empty queue takes one oversized item
    await q.drained();
  });
});
