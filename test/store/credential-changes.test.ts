/**
 * `credential_changes` (migration 16): the rotation report's evidence kept apart from `events` as
 * they are stored. It must hold exactly the successful credential changes `events` holds, whichever
 * way they arrived (the sink's events_intake, a direct insert, or before the migration existed),
 * and list exactly the actions the rotation report can count.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../core/event.js';
import { insertEventLines } from '../../core/store/event-lines.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { CREDENTIAL_CHANGE_ACTIONS, RAW_TTL } from '../../core/store/migrations.js';
import { normalizeDocument } from '../../ingest/index.js';
import { reconcileRetention } from '../../reports/retention.js';
import { EVIDENCE_ACTIONS } from '../../reports/rotation.js';
import { migrateBefore } from './helpers/stores.js';

let dir: string;
let store: Store;

const rows = <T>(query: string) => store.client.query({ query, format: 'JSONEachRow' }).then((r) => r.json<T>());

function cloudtrail(id: string, eventName: string, opts: { error?: string; user?: string } = {}): AuditEvent {
  const raw = {
    eventVersion: '1.09',
    eventID: id,
    eventTime: '2026-03-01T10:00:00Z',
    eventSource: eventName === 'PasswordUpdated' ? 'signin.amazonaws.com' : 'iam.amazonaws.com',
    eventName,
    awsRegion: 'us-east-1',
    sourceIPAddress: '198.51.100.7',
    recipientAccountId: '111122223333',
    ...(opts.error ? { errorCode: opts.error } : {}),
    userIdentity: { type: 'IAMUser', userName: opts.user ?? 'alice', arn: `arn:aws:iam::111122223333:user/${opts.user ?? 'alice'}` },
  };
  const r = normalizeDocument(raw, { file: 'test', line: null, index: null })[0];
  if (r?.kind !== 'event') throw new Error(`${id} did not normalize`);
  return r.event;
}

const ids = async () => (await rows<{ id: string }>('SELECT DISTINCT id FROM credential_changes ORDER BY id')).map((r) => r.id);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-credchanges-'));
  store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrateBefore(store, 16);
}, 60_000);

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('credential_changes', () => {
  it('lists exactly the actions the rotation report can count', () => {
    expect([...CREDENTIAL_CHANGE_ACTIONS].sort()).toEqual([...EVIDENCE_ACTIONS].sort());
  });

  it('migration 16 copies the credential changes stored before it, and only the successful ones', async () => {
    const before = [
      cloudtrail('old-create', 'CreateAccessKey'),
      cloudtrail('old-denied', 'CreateAccessKey', { error: 'AccessDenied' }),
      cloudtrail('old-list', 'ListUsers'),
      cloudtrail('old-password', 'ChangePassword', { user: 'bob' }),
    ];
    await insertEventLines(
      store,
      before.map((e) => Buffer.from(JSON.stringify(e))),
    );
    const result = await migrate(store, { retentionDays: 20_000 });
    expect(result.applied[0]).toBe(16);
    expect(await ids()).toEqual(['old-create', 'old-password']);
  });

  it('keeps every later change, from the sink (events_intake) and from a direct insert, once per event', async () => {
    const later = [cloudtrail('new-delete', 'DeleteAccessKey'), cloudtrail('new-mfa', 'EnableMFADevice'), cloudtrail('new-get', 'GetUser')];
    await insertEventLines(
      store,
      later.map((e) => Buffer.from(JSON.stringify(e))),
    );
    // A re-ingest of the same event: two rows until a merge, one for a reader that takes one per (source, id).
    await insertEventLines(store, [Buffer.from(JSON.stringify(later[0]))]);
    await store.client.insert({
      table: 'events',
      values: [
        {
          source: 'okta',
          id: 'okta-reset',
          time: '2026-03-01T11:00:00.000Z',
          action: 'user.account.reset_password',
          outcome: 'success',
          raw: '{}',
        },
      ],
      format: 'JSONEachRow',
      clickhouse_settings: { date_time_input_format: 'best_effort' },
    });
    expect(await ids()).toEqual(['new-delete', 'new-mfa', 'okta-reset', 'old-create', 'old-password']);
    const [copy] = await rows<{ action: string; actor_name: string; account: string }>(
      "SELECT action, actor_name, account FROM credential_changes WHERE id = 'new-mfa'",
    );
    expect(copy).toEqual({ action: 'iam.amazonaws.com:EnableMFADevice', actor_name: 'alice', account: '111122223333' });
  });

  it('ages with the raw events: a changed retention reaches it', async () => {
    expect(RAW_TTL.map((t) => t.table)).toContain('credential_changes');
    const changed = await reconcileRetention(store, { retentionDays: 30, evidenceRetentionDays: 3000 });
    expect(changed).toContain('credential_changes');
    const [ddl] = await rows<{ ddl: string }>("SELECT create_table_query AS ddl FROM system.tables WHERE name = 'credential_changes'");
    expect(ddl?.ddl).toMatch(/TTL toDateTime\(time\) \+ toIntervalDay\(30\)/);
  });
});
