// Okta collectors on a real Kafka broker against a local stand-in of the System Log API:
// cursor checkpoint across restarts, crash between ack and checkpoint, 429/5xx, Event Hook
// verification, secret refusal without leaking the secret, hook + poller deduplication.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fields } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { request } from '../../core/http.js';
import { createLogger } from '../../core/log.js';
import { type CheckpointStore, FileCheckpointStore } from '../../ingest/collector/checkpoint.js';
import { type OktaCheckpoint, type OktaCollectorConfig, runOktaCollector } from '../../ingest/okta/collector.js';
import { LocalSystemLog, syntheticOktaEvent } from '../../ingest/okta/local-systemlog.js';
import { parseOktaFields } from '../../ingest/okta/options.js';
import { assertKafkaReachable, waitFor } from '../bus/helpers.js';
import { kafkaHarness } from '../support/kafka-harness.js';

const TOKEN = 'okta-api-token-DO-NOT-LOG-1234567890';
const HOOK_SECRET = 'hook-secret-DO-NOT-LOG-abcdef';
const T0 = Date.parse('2025-06-01T00:00:00Z');

function events(from: number, count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) => syntheticOktaEvent(from + i, T0 + (from + i) * 1000));
}

function config(orgUrl: string, dir: string, extra: Record<string, unknown> = {}): OktaCollectorConfig {
  return parseOktaFields(
    Fields.of('test.yaml', 'collectors.okta', {
      orgUrl,
      token: TOKEN,
      since: new Date(T0 - 60_000).toISOString(),
      limit: 500,
      pollIntervalSeconds: 0.2,
      ...extra,
    }),
    { checkpointDir: dir, alertsTopic: 'alerts', silenceSeconds: 3600, metrics: null },
  );
}

describe('Okta collectors on Kafka', () => {
  const { open, newTopics, consume, exactly, stops, cleanup } = kafkaHarness('okta');
  let dir: string;
  const server = async (options: { rateLimit?: number; windowMs?: number } = {}) => {
    const s = await new LocalSystemLog({ authorization: `SSWS ${TOKEN}`, ...options }).start();
    stops.push(() => s.close());
    return s;
  };

  beforeAll(async () => {
    await assertKafkaReachable();
    dir = mkdtempSync(join(tmpdir(), 'gw-okta-'));
  });
  afterAll(async () => {
    await cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('follows next links, persists the cursor, resumes after a stop without loss or duplicates, keeps per-key order', {
    timeout: 120_000,
  }, async () => {
    const api = await server();
    api.add(events(0, 2500));
    const topics = newTopics();
    const bus = open();
    const got = await consume(bus, topics.events);
    const checkpoint = new FileCheckpointStore<OktaCheckpoint>(join(dir, 'resume'), 'okta');
    const cfg = config(api.url, dir);

    // Run 1: stop after the second acknowledged page.
    let stopAfter: (() => void) | null = null;
    const run1 = await runOktaCollector(cfg, {
      bus,
      topics,
      checkpoint,
      watchdog: null,
      logger: createLogger({ level: 'silent' }),
      onPage: (p) => p.pages === 2 && stopAfter?.(),
    });
    stopAfter = () => void run1.stop();
    await run1.done;
    await run1.stop();
    const saved = await checkpoint.load();
    expect(saved?.pages).toBe(2);
    expect(saved?.next).toContain(`after=${Buffer.from('c1000').toString('base64url')}`);
    await exactly(got, 1000, 'events after run 1');

    // Run 2 resumes from the cursor (no `since`), drains the backlog, then polls empty pages that still carry `next`.
    const run2 = await runOktaCollector(cfg, { bus, topics, checkpoint, watchdog: null, logger: createLogger({ level: 'silent' }) });
    stops.push(() => run2.stop());
    await waitFor(() => got.length >= 2500, 'backlog', 60_000);
    await waitFor(() => api.requests.filter((r) => r.status === 200 && r.events === 0).length >= 2, 'two empty pages');
    api.add(events(2500, 120));
    await exactly(got, 2620, 'events after run 2');
    await run2.stop();

    const afterFirst = api.requests.filter((r) => r.url.includes('since=')).length;
    expect(afterFirst).toBe(1); // only run 1's very first request used `since`
    const seqs = new Map<string, number[]>();
    for (const m of got) {
      const e = JSON.parse(m.value.toString()) as AuditEvent;
      expect(m.key).toBe(`okta:${e.actor.name}`);
      const seq = (e.raw.debugContext as { debugData: { seq: number } }).debugData.seq;
      seqs.set(m.key ?? '', [...(seqs.get(m.key ?? '') ?? []), seq]);
    }
    expect(new Set(got.map((m) => (JSON.parse(m.value.toString()) as AuditEvent).id)).size).toBe(2620);
    for (const list of seqs.values()) expect(list).toEqual([...list].sort((a, b) => a - b));
    expect(run2.metrics.snapshot('okta').events).toBe(1620);
    expect(run2.metrics.render()).toContain('glasswatch_collector_events_total{collector="okta"} 1620');
  });

  it('a crash after Kafka acknowledged a page but before its checkpoint re-sends exactly that page', { timeout: 120_000 }, async () => {
    const api = await server();
    api.add(events(0, 2000));
    const topics = newTopics();
    const bus = open();
    const got = await consume(bus, topics.events);
    const file = new FileCheckpointStore<OktaCheckpoint>(join(dir, 'crash'), 'okta');
    let saves = 0;
    let crash: (() => void) | null = null;
    // Saves of pages 1 and 2 succeed; the save of page 3 "crashes" the process.
    const crashing: CheckpointStore<OktaCheckpoint> = {
      load: () => file.load(),
      save: async (v) => {
        if (++saves === 3) {
          crash?.();
          throw new Error('simulated crash before the checkpoint write');
        }
        await file.save(v);
      },
    };
    const cfg = config(api.url, dir);
    const run1 = await runOktaCollector(cfg, {
      bus,
      topics,
      checkpoint: crashing,
      watchdog: null,
      logger: createLogger({ level: 'silent' }),
      initialBackoffMs: 10,
    });
    crash = () => void run1.stop();
    await run1.done;
    await exactly(got, 1500, 'events before the crash');
    expect((await file.load())?.pages).toBe(2);

    const run2 = await runOktaCollector(cfg, { bus, topics, checkpoint: file, watchdog: null, logger: createLogger({ level: 'silent' }) });
    stops.push(() => run2.stop());
    // 2000 events once, plus page 3 (500 events) again: acknowledged, but its checkpoint was never written.
    await exactly(got, 2500, 'events after restart');
    await run2.stop();
    const ids = got.map((m) => (JSON.parse(m.value.toString()) as AuditEvent).id);
    expect(new Set(ids).size).toBe(2000);
    const resent = ids.length - new Set(ids).size;
    expect(resent).toBe(500);
  });

  it('honours 429 until X-Rate-Limit-Reset, retries 5xx, slows down at the reserve', { timeout: 60_000 }, async () => {
    const api = await server();
    api.add(events(0, 1200));
    api.failNext({ status: 500 }, { status: 429, resetInSeconds: 2 });
    const topics = newTopics();
    const bus = open();
    const got = await consume(bus, topics.events);
    const checkpoint = new FileCheckpointStore<OktaCheckpoint>(join(dir, 'rate'), 'okta');
    const run = await runOktaCollector(config(api.url, dir), {
      bus,
      topics,
      checkpoint,
      watchdog: null,
      logger: createLogger({ level: 'silent' }),
      initialBackoffMs: 50,
    });
    stops.push(() => run.stop());
    await exactly(got, 1200, 'events');
    await run.stop();
    const i429 = api.requests.findIndex((r) => r.status === 429);
    const limited = api.requests[i429];
    const after = api.requests[i429 + 1];
    expect(api.requests[0]?.status).toBe(500);
    expect(limited).toBeDefined();
    expect(after?.status).toBe(200);
    // The next request waited for the advertised reset (epoch seconds, at least ~1 s ahead here).
    expect(after!.at).toBeGreaterThanOrEqual(limited!.resetMs - 20);
    expect(after!.at - limited!.at).toBeGreaterThanOrEqual(1000);
    expect(run.metrics.snapshot('okta').errors.receiving).toBe(2);

    // Budget of 3 per 2 s window with reserve 2: after one request the poller waits for the reset instead of hitting 429.
    const tight = await server({ rateLimit: 3, windowMs: 2000 });
    tight.add(events(0, 10));
    const topics2 = newTopics();
    const run2 = await runOktaCollector(config(tight.url, dir, { limit: 5, pollIntervalSeconds: 0, rateLimitReserve: 2 }), {
      bus,
      topics: topics2,
      checkpoint: new FileCheckpointStore<OktaCheckpoint>(join(dir, 'tight'), 'okta'),
      watchdog: null,
      logger: createLogger({ level: 'silent' }),
    });
    stops.push(() => run2.stop());
    await waitFor(() => tight.requests.length >= 2, 'two requests', 70_000);
    await run2.stop();
    expect(tight.requests.every((r) => r.status === 200)).toBe(true);
    expect(tight.requests[1]!.at).toBeGreaterThanOrEqual(tight.requests[0]!.resetMs - 20);
  });

  it('Event Hook: answers the verification challenge, refuses a wrong secret (401, not logged), and dedupes with the poller', {
    timeout: 120_000,
  }, async () => {
    const api = await server();
    const topics = newTopics();
    const bus = open();
    const got = await consume(bus, topics.events);
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', write: (l) => lines.push(l) });
    const cfg = config(api.url, dir, { pollIntervalSeconds: 0.3, hook: { port: 0, secret: HOOK_SECRET, secretHeader: 'X-Okta-Secret' } });
    const run = await runOktaCollector(cfg, {
      bus,
      topics,
      checkpoint: new FileCheckpointStore<OktaCheckpoint>(join(dir, 'hook'), 'okta'),
      watchdog: null,
      logger,
    });
    stops.push(() => run.stop());
    const hookUrl = `${run.hook!.url}/okta/hook`;

    const challenge = await request({ method: 'GET', url: hookUrl, headers: { 'x-okta-verification-challenge': 'chal-123' } });
    expect(challenge.status).toBe(200);
    expect(JSON.parse(challenge.text)).toEqual({ verification: 'chal-123' });

    const batch = events(0, 300);
    const envelope = (evs: Record<string, unknown>[]) =>
      JSON.stringify({
        eventType: 'com.okta.event_hook',
        eventTypeVersion: '1.0',
        cloudEventsVersion: '0.1',
        contentType: 'application/json',
        eventId: 'e1',
        eventTime: new Date().toISOString(),
        source: `${api.url}/api/v1/eventHooks/who1`,
        data: { events: evs },
      });
    const wrongValue = 'not-the-secret-XYZ';
    const wrong = await request({
      method: 'POST',
      url: hookUrl,
      headers: { 'x-okta-secret': wrongValue, 'content-type': 'application/json' },
      body: envelope(batch),
    });
    expect(wrong.status).toBe(401);
    const missing = await request({ method: 'POST', url: hookUrl, headers: { 'content-type': 'application/json' }, body: envelope(batch) });
    expect(missing.status).toBe(401);
    const refusal = lines.filter((l) => l.includes('refused'));
    expect(refusal.length).toBe(2);
    for (const l of lines) {
      expect(l).not.toContain(HOOK_SECRET);
      expect(l).not.toContain(wrongValue);
      expect(l).not.toContain(TOKEN);
    }

    // The hook delivers 300 events (two of them twice: Okta's at-least-once), then the System Log returns the same 300 plus 200 more.
    const started = Date.now();
    const ok = await request({ method: 'POST', url: hookUrl, headers: { 'x-okta-secret': HOOK_SECRET }, body: envelope(batch) });
    expect(ok.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(1000);
    const again = await request({
      method: 'POST',
      url: hookUrl,
      headers: { 'x-okta-secret': HOOK_SECRET },
      body: envelope(batch.slice(0, 2)),
    });
    expect(again.status).toBe(200);
    await waitFor(() => got.length >= 300, 'hook events');
    api.add(batch);
    api.add(events(300, 200));
    await exactly(got, 500, 'events from hook + poller');
    await run.stop();
    expect(new Set(got.map((m) => (JSON.parse(m.value.toString()) as AuditEvent).id)).size).toBe(500);
    expect(run.metrics.snapshot('okta-hook').events).toBe(300);
    expect(run.metrics.snapshot('okta-hook').duplicates).toBe(2);
    expect(run.metrics.snapshot('okta').events).toBe(200);
    expect(run.metrics.snapshot('okta').duplicates).toBe(300);
    for (const l of lines) expect(l).not.toContain(TOKEN);
  });
});
