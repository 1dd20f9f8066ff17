/**
 * The rotation evidence query takes every principal of every break-glass credential at once. A
 * deployment may hold hundreds (one Okta emergency admin per team): the target test must not have a
 * needle limit (multiSearchAny* stops at 255 needles, which made the whole report fail), and the
 * one-pass search used below that limit must find what the per-principal search finds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { runQuery } from '../../reports/sql.js';

let dir: string;
let store: Store;

const T = Date.parse('2026-02-10T12:00:00Z');
const principals = [...Array.from({ length: 300 }, (_, i) => `admin-${i}@example.com`), 'root'].sort();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-rotation-evidence-'));
  store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrate(store);
  const event = (id: string, actor: string, target: string) => ({
    source: 'okta',
    id,
    time: new Date(T).toISOString(),
    actor_name: actor,
    action: 'user.account.reset_password',
    targets: JSON.stringify([{ type: 'User', name: target }]),
    outcome: 'success',
    org: 'example.okta.com',
    raw: '{}',
  });
  await store.client.insert({
    table: 'events',
    values: [
      event('by-helpdesk', 'helpdesk@example.com', 'Admin-290@Example.com'), // named as a target, another case
      event('someone-else', 'helpdesk@example.com', 'user@example.com'),
    ],
    format: 'JSONEachRow',
    clickhouse_settings: { date_time_input_format: 'best_effort' },
  });
}, 60_000);

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('rotation evidence', () => {
  it('finds a target among a few principals, case-insensitively', async () => {
    const rows = await runQuery<{ id: string }>(store, 'rotation-evidence', {
      since_ms: T - 86_400_000,
      to_ms: T + 86_400_000,
      principals: ['admin-290@example.com', 'root'],
    });
    expect(rows.map((r) => r.id)).toEqual(['by-helpdesk']);
  });

  it('finds a target among 301 principals, case-insensitively', async () => {
    const rows = await runQuery<{ id: string }>(store, 'rotation-evidence', {
      since_ms: T - 86_400_000,
      to_ms: T + 86_400_000,
      principals,
    });
    expect(rows.map((r) => r.id)).toEqual(['by-helpdesk']);
  });
});
