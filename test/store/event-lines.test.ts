import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../core/bus/memory.js';
import { DEAD_LETTER_HEADERS } from '../../core/bus/types.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import { startStoreSink } from '../../core/pipeline/live.js';
import { insertEventLines, isEventLine } from '../../core/store/event-lines.js';
import { migrate, openStore, type Store, StoreWriter } from '../../core/store/index.js';

/**
 * The live sink hands each bus value (an AuditEvent as one JSON line) to the engine unparsed,
 * through `events_intake` (migration 11). The rows must be exactly the rows `StoreWriter` writes
 * from the parsed event (replay's path), for any event a source can produce: checked on real chDB.
 */
const COLUMNS =
  'source, id, time, actor_id, actor_name, actor_type, session_key, action, targets, outcome, outcome_reason, source_ip, user_agent, account, org, cluster, raw, raw_hash, ct_event_name, k8s_verb';

function event(id: string, raw: Record<string, unknown>, i: number): AuditEvent {
  const maybe = <T>(v: T): T | null => (i % 3 === 0 ? null : v);
  return {
    source: (['k8s', 'cloudtrail', 'okta'] as const)[i % 3]!,
    id,
    time: `2026-11-20T22:43:${String(i % 60).padStart(2, '0')}.${String(i % 1000).padStart(3, '0')}Z`,
    actor: { id: maybe(`u-${i}`), name: maybe('n"\\é'), type: maybe('IAMUser'), sessionKey: maybe(`k@${i}`) },
    action: i % 2 ? 'list' : 'ConsoleLogin',
    targets: i % 4 === 0 ? [] : [{ id: null, type: 'pods', name: `a"b\\c${i}` }],
    outcome: i % 5 === 0 ? 'failure' : 'success',
    outcomeReason: maybe('denied\u2028'),
    sourceIp: maybe('10.0.0.1'),
    userAgent: maybe('kubectl/1.31'),
    account: maybe('123456789012'),
    org: maybe('o-1'),
    cluster: maybe('prod'),
    raw,
  };
}

async function rows(store: Store, prefix: string): Promise<Record<string, unknown>[]> {
  const r = await store.client.query({
    query: `SELECT ${COLUMNS} FROM events WHERE startsWith(id, {p:String}) ORDER BY id`,
    query_params: { p: prefix },
    format: 'JSONEachRow',
  });
  return ((await r.json()) as Record<string, unknown>[]).map((x) => ({ ...x, id: String(x.id).slice(prefix.length) }));
}

describe('event lines: the sink stores bus values without parsing them', () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-event-lines-'));
    store = openStore({ kind: 'chdb', path: join(dir, 'store') });
    await migrate(store);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores exactly the rows StoreWriter stores from the parsed events (every column, raw byte for byte)', async () => {
    const raws = fc.sample(fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 8 }), {
      numRuns: 300,
      seed: 11,
    }) as Record<string, unknown>[];
    raws.push(
      {},
      { eventName: 'ConsoleLogin', eventSource: 'signin.amazonaws.com' },
      { verb: 'create', objectRef: { resource: 'pods' } },
      { s: '\u2028\u2029\ud800"\\/\n\t\u0000' },
      { n: -0, big: 1e300, small: 5e-324 },
    );
    const events = raws.map((raw, i) => event(String(i).padStart(4, '0'), raw, i));
    const writer = new StoreWriter(store, { batchSize: 1000 });
    for (const e of events) await writer.addEvent({ ...e, id: `w-${e.id}` });
    await writer.flush();
    const lines = events.map((e) => Buffer.from(JSON.stringify({ ...e, id: `l-${e.id}` })));
    for (const l of lines) expect(isEventLine(l)).toBe(true);
    await insertEventLines(store, lines);
    const viaWriter = await rows(store, 'w-');
    const viaLines = await rows(store, 'l-');
    expect(viaLines).toHaveLength(events.length);
    expect(viaLines).toEqual(viaWriter);
  });

  it('a value that is not one line of a JSON object is not sent to the engine as a line', () => {
    expect(isEventLine(Buffer.from('{"a":1}'))).toBe(true);
    expect(isEventLine(Buffer.from('{"a":1}\n{"b":2}'))).toBe(false);
    expect(isEventLine(Buffer.from('[1]'))).toBe(false);
    expect(isEventLine(Buffer.from('{"a":\r1}'))).toBe(false);
    expect(isEventLine(Buffer.from(''))).toBe(false);
  });

  it('hostile values on the events topic: each refused one is dead-lettered with the reason, every other event stored', async () => {
    const bus = new MemoryBus();
    const topics = { events: 'ev', deadLetters: 'dlq', alerts: 'al', tickets: 'tk', revocations: 'rv', people: 'pp' };
    const good = Array.from({ length: 50 }, (_, i) => event(`h-${String(i).padStart(3, '0')}`, { i }, i));
    const hostile = [
      '{"source":"k8s","id":"h-bad-time","time":"not a time","actor":{},"raw":{}}',
      '{"source":"k8s","id":"h-bad-actor","time":"2026-11-20T00:00:00Z","actor":"x","raw":{}}',
      '{"source":"k8s","id":"h-truncated","time":"2026-11-20T00:00:00Z","raw":{"a":',
      'not json at all',
      '{"source":"k8s","id":"h-two-lines"}\n{"source":"k8s","id":"h-smuggled"}',
    ];
    const values = [...good.slice(0, 20).map((e) => JSON.stringify(e)), ...hostile, ...good.slice(20).map((e) => JSON.stringify(e))];
    const dead: { reason: string; value: string }[] = [];
    const dlq = await bus.subscribe({
      topics: ['dlq'],
      groupId: 'watch',
      handler: async (m) => {
        dead.push({ reason: m.headers[DEAD_LETTER_HEADERS.reason] ?? '', value: m.value.toString() });
      },
    });
    const sink = await startStoreSink({ bus, store, topics, log: silentLogger, groupId: 'sink' });
    await bus.publish(
      'ev',
      values.map((value, i) => ({ key: `k${i % 3}`, value })),
    );
    const deadline = Date.now() + 20_000;
    while ((sink.stored.events < good.length || dead.length < 4) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await sink.stop();
    await dlq.stop();
    const stored = await rows(store, 'h-');
    expect(stored.map((r) => r.id).sort()).toEqual(good.map((e) => e.id.slice(2)).sort());
    expect(sink.stored.events).toBe(good.length);
    // Not JSON, a refused time, a refused actor, a truncated object; the two-line value is parsed as JSON by
    // the slow path and refused there (it is not one document), so nothing is smuggled in as a second row.
    expect(dead.map((d) => d.value).sort()).toEqual([...hostile].sort());
    for (const d of dead) expect(d.reason).not.toBe('');
    await bus.close();
  });
});
