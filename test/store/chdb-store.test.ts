import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../core/event.js';
import { migrate, migrations, openStore, type Store, StoreWriter } from '../../core/store/index.js';

function event(id: string, time: string, actor: string): AuditEvent {
  return {
    source: 'cloudtrail',
    id,
    time,
    actor: { id: `AIDA${actor}`, name: actor, type: 'IAMUser', sessionKey: `AKIA${actor}` },
    action: 'iam.amazonaws.com:CreateAccessKey',
    targets: [{ id: null, type: 'AWS::IAM::User', name: actor }],
    outcome: 'success',
    outcomeReason: null,
    sourceIp: '198.51.100.7',
    userAgent: 'aws-cli/2',
    account: '111122223333',
    org: null,
    cluster: null,
    raw: { eventID: id, eventName: 'CreateAccessKey', userIdentity: { userName: actor }, note: 'it\'s "quoted"; DROP TABLE events; --' },
  };
}

describe('embedded chDB store', () => {
  let dir: string;
  let store: Store;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gw-store-'));
    store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies migrations once and is idempotent on re-run', async () => {
    const versions = migrations().map((m) => m.version);
    expect(versions.length).toBeGreaterThanOrEqual(10);
    expect(new Set(versions).size, 'each version once').toBe(versions.length);
    const first = await migrate(store);
    expect(first.applied).toEqual(versions);
    const second = await migrate(store);
    expect(second.applied).toEqual([]);
    expect(second.current).toBe(Math.max(...versions));
    const tables = await (
      await store.client.query({
        query: 'SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name',
        format: 'JSONEachRow',
      })
    ).json<{ name: string }>();
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining([
        'alert_deliveries',
        'alerts',
        'dead_letters',
        'events',
        'report_deliveries',
        'revocations',
        'schema_migrations',
        'sessions',
        'tickets',
      ]),
    );
  });

  it('rejects a retention that is not a whole number of days', async () => {
    await expect(migrate(store, { retentionDays: 1.5 })).rejects.toThrow(/retentionDays/);
  });

  it('stores events, keeps raw JSON intact, and answers parameterized queries', async () => {
    const writer = new StoreWriter(store, { batchSize: 2 });
    await writer.addEvent(event('e-1', '2026-11-20T22:43:05.000Z', 'mallory'));
    await writer.addEvent(event('e-2', '2026-11-20T22:44:05.000Z', 'alice'));
    await writer.addEvent(event('e-3', '2026-11-20T22:45:05.000Z', 'mallory'));
    await writer.flush();
    const hostile = "mallory' OR '1'='1";
    const none = await (
      await store.client.query({
        query: 'SELECT id FROM events WHERE actor_name = {name:String}',
        query_params: { name: hostile },
        format: 'JSONEachRow',
      })
    ).json();
    expect(none).toEqual([]);
    const rows = await (
      await store.client.query({
        query: `SELECT id, toString(time) AS t, JSONExtractString(raw, 'note') AS note FROM events
                WHERE actor_name = {name:String} AND time >= {from:DateTime64(3)} ORDER BY time`,
        query_params: { name: 'mallory', from: '2026-11-20 22:00:00.000' },
        format: 'JSONEachRow',
      })
    ).json<{ id: string; t: string; note: string }>();
    expect(rows.map((r) => r.id)).toEqual(['e-1', 'e-3']);
    expect(rows[0]!.t).toBe('2026-11-20 22:43:05.000');
    expect(rows[0]!.note).toBe('it\'s "quoted"; DROP TABLE events; --');
  });

  it('re-inserting the same event leaves one row for readers', async () => {
    const writer = new StoreWriter(store);
    await writer.addEvent(event('e-1', '2026-11-20T22:43:05.000Z', 'mallory'));
    await writer.flush();
    const [{ n }] = (await (
      await store.client.query({
        query: "SELECT count() AS n FROM (SELECT id FROM events WHERE id = 'e-1' LIMIT 1 BY source, id)",
        format: 'JSONEachRow',
      })
    ).json<{ n: string }>()) as [{ n: string }];
    expect(Number(n)).toBe(1);
  });

  it('persists across processes', async () => {
    await store.close();
    const helper = new URL('./helpers/count-events.mjs', import.meta.url).pathname;
    const out = execFileSync(process.execPath, [helper, join(dir, 'store')]).toString();
    expect(Number(JSON.parse(out)[0].n)).toBe(3);
    store = openStore({ kind: 'chdb', path: join(dir, 'store') });
    expect((await migrate(store)).applied).toEqual([]);
  });
});
