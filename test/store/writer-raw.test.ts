import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../core/event.js';
import { migrate, openStore, type Store, StoreWriter } from '../../core/store/index.js';

/**
 * The sink serializes an event row once: `raw` and `targets` go to ClickHouse as JSON values and
 * are stored as their text. The retro-hunt SQL and deduplication (raw_hash) rely on that text being
 * exactly `JSON.stringify` of the value, for any value a source can send: checked on the real chDB.
 */
function event(id: string, raw: Record<string, unknown>, targets: AuditEvent['targets']): AuditEvent {
  return {
    source: 'k8s',
    id,
    time: '2026-11-20T22:43:05.000Z',
    actor: { id: 'u', name: 'u', type: 'user', sessionKey: 'u@ip' },
    action: 'list',
    targets,
    outcome: 'success',
    outcomeReason: null,
    sourceIp: null,
    userAgent: null,
    account: null,
    org: null,
    cluster: 'c',
    raw,
  };
}

describe('StoreWriter: raw and targets stored as their exact JSON text', () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-writer-raw-'));
    store = openStore({ kind: 'chdb', path: join(dir, 'store') });
    await migrate(store);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('any JSON object (quotes, backslashes, unicode, lone surrogates, nesting, empty ones) round-trips byte for byte', async () => {
    const raws = fc.sample(fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 8 }), {
      numRuns: 300,
      seed: 14,
    });
    raws.push({}, { a: [] }, { '': { '': '' } }, { s: '\u2028\u2029\ud800"\\/\n\t\u0000' }, { n: -0, big: 1e300, small: 5e-324 });
    const writer = new StoreWriter(store, { batchSize: 97 });
    const targets: AuditEvent['targets'] = [{ id: null, type: 'pods', name: 'a"b\\c' }];
    for (const [i, raw] of raws.entries()) await writer.addEvent(event(`raw-${i}`, raw as Record<string, unknown>, i === 0 ? [] : targets));
    await writer.flush();
    const rows = (await (
      await store.client.query({
        query: "SELECT id, raw, targets, raw_hash = cityHash64(raw) AS hashed FROM events WHERE id LIKE 'raw-%'",
        format: 'JSONEachRow',
      })
    ).json()) as { id: string; raw: string; targets: string; hashed: number }[];
    expect(rows).toHaveLength(raws.length);
    for (const r of rows) {
      const i = Number(r.id.slice(4));
      expect(r.raw, r.id).toBe(JSON.stringify(raws[i]));
      expect(r.targets).toBe(JSON.stringify(i === 0 ? [] : targets));
      expect(Number(r.hashed)).toBe(1);
    }
  });
});
