import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
import { openStore, type Store } from '../../core/store/index.js';
import { k8sStandIn, oktaStandIn, type StandIn } from '../../detectors/revoke/standins.js';

/**
 * Issue 11 contract: the demo incident replayed through the real detector (sessions, alerts,
 * tickets, revocations, alert deliveries) verifies intact, and `audit verify` fails, naming table
 * and key, after an UPDATE of a session verdict, a deleted alert and an inserted ticket version.
 */
const demo = new URL('../../demo', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gw-audit-verify-'));
const storePath = join(dir, 'store');
const stands: StandIn[] = [];

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const write = process.stderr.write.bind(process.stderr);
  const writeOut = process.stdout.write.bind(process.stdout);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    return { code: await main(args), out };
  } finally {
    process.stderr.write = write;
    process.stdout.write = writeOut;
  }
}

async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = openStore({ kind: 'chdb', path: storePath });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function one<T>(store: Store, query: string): Promise<T> {
  const rows = await (await store.client.query({ query, format: 'JSONEachRow' })).json<T>();
  if (!rows[0]) throw new Error(`no row for ${query}`);
  return rows[0];
}

beforeAll(async () => {
  const oktaId = `00u${createHash('md5').update('emergency-admin@example.com').digest('hex').slice(0, 17)}`;
  const okta = await oktaStandIn({ token: 'o', users: [oktaId] });
  const k8s = await k8sStandIn({
    token: 'k',
    bindings: [{ kind: 'ClusterRoleBinding', name: 'bg', role: 'cluster-admin', subjects: [{ kind: 'User', name: 'breakglass-admin' }] }],
  });
  stands.push(okta, k8s);
  Object.assign(process.env, {
    GLASSWATCH_OKTA_URL: okta.url,
    GLASSWATCH_OKTA_TOKEN: 'o',
    GLASSWATCH_K8S_API: k8s.url,
    GLASSWATCH_K8S_TOKEN: 'k',
  });
  const replay = await cli([
    'replay',
    join(demo, 'data'),
    '--config',
    join(demo, 'glasswatch.yml'),
    '--tickets',
    join(demo, 'tickets.jsonl'),
    '--store',
    storePath,
    '--alerts-out',
    join(dir, 'alerts.jsonl'),
    '--out',
    'none',
    '--quiet',
  ]);
  expect(replay.code, replay.out).toBe(3); // the demo carries two deliberately broken records
});
afterAll(async () => {
  for (const s of stands) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('glasswatch audit verify over a replayed store', () => {
  it('passes the untouched store: every evidence row of the replay is chained, every checkpoint signed', async () => {
    const counts = await withStore((store) =>
      one<Record<string, string>>(
        store,
        `SELECT (SELECT count() FROM sessions) AS sessions, (SELECT count() FROM alerts) AS alerts, (SELECT count() FROM tickets) AS tickets,
                (SELECT count() FROM revocations) AS revocations, (SELECT count() FROM audit_log WHERE kind = 'start') AS starts`,
      ),
    );
    for (const table of ['sessions', 'alerts', 'tickets', 'revocations']) expect(Number(counts[table]), table).toBeGreaterThan(0);
    expect(Number(counts.starts)).toBe(1);
    // Ticket versions imported from the command line are evidence rows too, chained by that command.
    const imported = await cli(['tickets', 'import', join(demo, 'tickets.jsonl'), '--store', storePath]);
    expect(imported.code, imported.out).toBe(0);
    const run = await cli(['audit', 'verify', '--store', storePath]);
    expect(run.out).toMatch(/result: intact/);
    expect(run.out).toMatch(/signatures checked against the keys recorded in the store/);
    expect(run.code, run.out).toBe(0);

    const key = await cli(['audit', 'key', '--store', storePath]);
    expect(key.code, key.out).toBe(0);
    const pem = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----\n/.exec(key.out)?.[0];
    expect(pem).toBeDefined();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'evidence.pub.pem'), pem!);
    const trusted = await cli(['audit', 'verify', '--store', storePath, '--public-key', join(dir, 'evidence.pub.pem')]);
    expect(trusted.out).toMatch(/signatures checked against --public-key/);
    expect(trusted.code, trusted.out).toBe(0);
  });

  it('fails after ALTER TABLE sessions UPDATE verdict, naming the table, the session and the chain record', async () => {
    const session = await withStore(async (store) => {
      const s = await one<{ session_id: string; verdict: string }>(
        store,
        "SELECT session_id, verdict FROM sessions WHERE verdict != 'authorized' LIMIT 1",
      );
      await store.client.command({
        query: "ALTER TABLE sessions UPDATE verdict = 'authorized' WHERE session_id = {id:String}",
        query_params: { id: s.session_id },
        clickhouse_settings: { mutations_sync: '2' },
      });
      return s.session_id;
    });
    const run = await cli(['audit', 'verify', '--store', storePath]);
    expect(run.code, run.out).toBe(4);
    expect(run.out).toContain(`BROKEN sessions key ${JSON.stringify([session])} writer replay@`);
    expect(run.out).toMatch(/seq \d+: row differs from what the audit chain recorded/);
    expect(run.out).toMatch(/result: BROKEN/);
  });

  it('fails after a deleted alert and after an inserted ticket version, naming table and key', async () => {
    const { alertId, ticketId } = await withStore(async (store) => {
      const a = await one<{ alert_id: string }>(store, 'SELECT alert_id FROM alerts ORDER BY alert_id LIMIT 1');
      await store.client.command({
        query: 'ALTER TABLE alerts DELETE WHERE alert_id = {id:String}',
        query_params: { id: a.alert_id },
        clickhouse_settings: { mutations_sync: '2' },
      });
      const t = await one<{ ticket_id: string }>(store, 'SELECT ticket_id FROM tickets ORDER BY ticket_id LIMIT 1');
      // A forged later version widening the ticket's window, inserted straight into the table.
      await store.client.command({
        query: `INSERT INTO tickets (ticket_id, updated_at, identities, requester, approvers, status, not_before, not_after, scope_accounts, scope_orgs, scope_clusters, reason, origin)
                SELECT ticket_id, updated_at + INTERVAL 1 MINUTE, identities, requester, approvers, 'approved', not_before - INTERVAL 1 DAY, not_after + INTERVAL 1 DAY,
                       scope_accounts, scope_orgs, scope_clusters, reason, origin FROM tickets WHERE ticket_id = {id:String} ORDER BY updated_at DESC LIMIT 1`,
        query_params: { id: t.ticket_id },
      });
      return { alertId: a.alert_id, ticketId: t.ticket_id };
    });
    const run = await cli(['audit', 'verify', '--store', storePath]);
    expect(run.code, run.out).toBe(4);
    expect(run.out).toMatch(
      new RegExp(`BROKEN alerts key \\["${alertId}"\\] writer replay@\\S+ seq \\d+: chained row is missing from the table \\(deleted\\)`),
    );
    expect(run.out).toMatch(new RegExp(`BROKEN tickets key \\["${ticketId}",\\d+\\]: row is not in the audit chain`));

    // --from/--to scope the row checks by the rows' own time: a window after the demo day holds none of them.
    const later = await cli(['audit', 'verify', '--store', storePath, '--from', '2026-12-01T00:00:00Z', '--to', '2026-12-02T00:00:00Z']);
    expect(later.out).toMatch(/0 evidence rows checked \(rows from 2026-12-01T00:00:00.000Z to 2026-12-02T00:00:00.000Z\)/);
    expect(later.code, later.out).toBe(0);
    const demoDay = await cli(['audit', 'verify', '--store', storePath, '--from', '2026-11-19T00:00:00Z', '--to', '2026-11-22T00:00:00Z']);
    expect(demoDay.code, demoDay.out).toBe(4);
  });

  it('fails a forged checkpoint signature, and a store checked against a key it was not signed with', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { writeFileSync } = await import('node:fs');
    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    writeFileSync(join(dir, 'other.pub.pem'), other);
    const untrusted = await cli(['audit', 'verify', '--store', storePath, '--public-key', join(dir, 'other.pub.pem')]);
    expect(untrusted.code).toBe(4);
    expect(untrusted.out).toMatch(/BROKEN writer replay@\S+ seq \d+: checkpoint signed by key [0-9a-f]{16}, which is not trusted/);

    await withStore((store) =>
      store.client.command({
        query: 'ALTER TABLE audit_checkpoints UPDATE signature = {s:String} WHERE 1',
        query_params: { s: Buffer.alloc(64, 1).toString('base64') },
        clickhouse_settings: { mutations_sync: '2' },
      }),
    );
    const forged = await cli(['audit', 'verify', '--store', storePath, '--public-key', join(dir, 'evidence.pub.pem')]);
    expect(forged.code).toBe(4);
    expect(forged.out).toMatch(/BROKEN writer replay@\S+ seq \d+: checkpoint signature is not valid for key/);
  });
});
