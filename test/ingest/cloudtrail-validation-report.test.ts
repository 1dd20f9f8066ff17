/**
 * `logValidationForEvents` over the real `log_validation` table (chDB): the status of an object is
 * its latest check, events link to the object through the pending row, unknown events are absent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { StoreValidationRecorder } from '../../ingest/cloudtrail/validation/record.js';
import { logValidationForEvents } from '../../reports/log-validation.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-logval-'));
let store: Store;

beforeAll(async () => {
  store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrate(store);
});

describe('logValidationForEvents on a store that validates nothing', () => {
  it('answers absent for every event (never valid)', async () => {
    expect((await logValidationForEvents(store, ['e1', 'e2'])).size).toBe(0);
  });
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('logValidationForEvents', () => {
  it('maps each event to its object and the latest status of that object', async () => {
    const recorder = new StoreValidationRecorder(store);
    const row = (objectKey: string, status: 'pending' | 'valid' | 'missing_digest' | 'mismatch', at: string, eventIds: string[] = []) => ({
      bucket: 'trail',
      objectKey,
      status,
      digestKey: status === 'pending' ? '' : 'd/1.json.gz',
      reason: '',
      eventIds,
      checkedAt: at,
    });
    await recorder.record([
      row('a.json.gz', 'pending', '2026-01-01T10:00:00.000Z', ['e1', 'e2']),
      row('b.json.gz', 'pending', '2026-01-01T10:00:00.000Z', ['e3']),
      row('c.json.gz', 'pending', '2026-01-01T10:00:00.000Z', ['e4']),
      row('d.json.gz', 'pending', '2026-01-01T10:00:00.000Z', ['e5']),
    ]);
    await recorder.record([
      row('a.json.gz', 'valid', '2026-01-01T11:05:00.000Z'),
      row('b.json.gz', 'mismatch', '2026-01-01T11:05:00.000Z'),
      row('c.json.gz', 'missing_digest', '2026-01-01T12:05:00.000Z'),
      // A digest delivered late turns missing_digest into valid.
      row('d.json.gz', 'missing_digest', '2026-01-01T12:05:00.000Z'),
      row('d.json.gz', 'valid', '2026-01-01T12:30:00.000Z'),
    ]);
    expect(recorder.failed).toBe(0);
    const map = await logValidationForEvents(store, ['e1', 'e2', 'e3', 'e4', 'e5', 'unknown']);
    expect(Object.fromEntries(map)).toEqual({
      e1: { objectKey: 'a.json.gz', status: 'valid' },
      e2: { objectKey: 'a.json.gz', status: 'valid' },
      e3: { objectKey: 'b.json.gz', status: 'mismatch' },
      e4: { objectKey: 'c.json.gz', status: 'missing_digest' },
      e5: { objectKey: 'd.json.gz', status: 'valid' },
    });
    expect((await logValidationForEvents(store, [])).size).toBe(0);
  });

  it('reports pending while no digest was read', async () => {
    const recorder = new StoreValidationRecorder(store);
    await recorder.record([
      {
        bucket: 'trail',
        objectKey: 'p.json.gz',
        status: 'pending',
        digestKey: '',
        reason: '',
        eventIds: ['p1'],
        checkedAt: '2026-01-02T00:00:00.000Z',
      },
    ]);
    expect((await logValidationForEvents(store, ['p1'])).get('p1')).toEqual({ objectKey: 'p.json.gz', status: 'pending' });
  });

  it('finds events in every chunk of a long id list (one query per 50,000 ids on chDB)', async () => {
    const ids = Array.from({ length: 120_000 }, (_, i) => `bulk-${i}`);
    await new StoreValidationRecorder(store).record([
      {
        bucket: 'trail',
        objectKey: 'bulk.json.gz',
        status: 'valid',
        digestKey: 'd/2.json.gz',
        reason: '',
        eventIds: [ids[0]!, ids[50_000]!, ids[119_999]!],
        checkedAt: '2026-01-03T00:00:00.000Z',
      },
    ]);
    const map = await logValidationForEvents(store, ['e3', ...ids]);
    expect([...map.keys()].sort()).toEqual(['bulk-0', 'bulk-119999', 'bulk-50000', 'e3']);
    expect(map.get('bulk-119999')).toEqual({ objectKey: 'bulk.json.gz', status: 'valid' });
  });
});
