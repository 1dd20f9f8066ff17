import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { insertRows, migrate, openStore, type Store, StoreWriter } from '../../core/store/index.js';
import { canonicalJson, canonicalRowJson } from '../../evidence/canonical.js';
import { AuditChain, chainHeads, recordHash } from '../../evidence/chain.js';
import { generatedKeyFile, keyIdOf, loadEvidenceKeys, readPublicKeys, storedPublicKeys, verifySignature } from '../../evidence/keys.js';
import { verifyAudit } from '../../evidence/verify.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-chain-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function alert(id: string, minute: number): Record<string, unknown> {
  return {
    alert_id: id,
    type: 'breakglass.unauthorized',
    severity: 'critical',
    identity: 'aws-breakglass',
    source: 'cloudtrail',
    event_ids: [`e-${id}`],
    ticket_id: '',
    reason: 'no_ticket',
    category: '',
    rule_id: '',
    rule_title: '',
    rule_author: '',
    session_id: `s-${id}`,
    principal: 'arn:aws:iam::111122223333:user/breakglass',
    source_ip: '198.51.100.7',
    time: `2026-11-20T22:${String(minute).padStart(2, '0')}:00.123Z`,
    detected_at: '2026-11-20T22:59:00Z',
    summary: 'a "quoted" summary; DROP TABLE alerts; --',
  };
}

async function rows<T>(store: Store, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await store.client.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

async function mutate(store: Store, query: string, params: Record<string, unknown>): Promise<void> {
  await store.client.command({ query, query_params: params, clickhouse_settings: { mutations_sync: '2' } });
}

describe('record hash', () => {
  it('is SHA-256 over the canonical JSON of the record, written out by hand (quotes, unicode and control characters included)', () => {
    const records = [
      {
        writer: 'detect@a',
        seq: 1,
        prev_hash: '0'.repeat(64),
        kind: 'row',
        table: 'alerts',
        key: '["a-1"]',
        content: canonicalJson(alert('a-1', 1)),
      },
      {
        writer: 'w"\\\u2028',
        seq: 9_007_199_254_740_991,
        prev_hash: 'f'.repeat(64),
        kind: 'start',
        table: '',
        key: '[]',
        content: '{"x":"\u0000é😀"}',
      },
    ];
    for (const r of records) expect(recordHash(r)).toBe(createHash('sha256').update(canonicalJson(r)).digest('hex'));
    expect(() => recordHash({ ...records[0]!, seq: 1.5 })).toThrow(/seq/);
  });

  it('the row fast path writes exactly the canonical text, for every row shape (or falls back)', () => {
    const value = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.array(fc.oneof(fc.string(), fc.double(), fc.constant(null), fc.constant(undefined), fc.array(fc.integer()))),
      fc.dictionary(fc.string(), fc.integer()),
    );
    fc.assert(
      fc.property(
        fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('10', '9', 'a', 'B', 'é', '__proto__')), value),
        fc.boolean(),
        (row, sort) => {
          const built = sort ? Object.fromEntries(Object.entries(row).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : row;
          let expected: string | Error;
          try {
            expected = canonicalJson(built);
          } catch (e) {
            expected = e as Error;
          }
          if (expected instanceof Error) expect(() => canonicalRowJson(built)).toThrow(expected.message);
          else expect(canonicalRowJson(built)).toBe(expected);
        },
      ),
      { numRuns: 3000 },
    );
    expect(canonicalRowJson({ a: 1, b: ['x', null], c: 'q"' })).toBe('{"a":1,"b":["x",null],"c":"q\\""}');
    expect(canonicalRowJson({ b: 1, a: 2 })).toBe('{"a":2,"b":1}');
    expect(() => canonicalRowJson({ a: Number.NaN })).toThrow(/no form/);
  });

  it('canonical JSON sorts keys whatever order an object was built in', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 'x', c: null }], é: 2, Z: 3 })).toBe('{"Z":3,"a":[{"c":null,"d":"x"}],"b":1,"é":2}');
  });
});

describe('audit chain', () => {
  const path = join(dir, 'store');
  let store: Store;

  it('chains every evidence row in the same flush, continues after a restart, and verifies', async () => {
    store = openStore({ kind: 'chdb', path });
    await migrate(store);
    const keys = await loadEvidenceKeys({ store });
    expect(statSync(generatedKeyFile(store)).mode & 0o777).toBe(0o600);
    store.evidence = await AuditChain.open(store, { writer: 'detect@a', keys, checkpointEvery: 3 });
    const writer = new StoreWriter(store);
    for (let i = 0; i < 4; i++) writer.add('alerts', alert(`a${i}`, i));
    writer.add('events', { source: 'cloudtrail', id: 'not-evidence', time: '2026-11-20T22:00:00Z', raw: {} });
    await writer.flush();
    await insertRows(store, 'tickets', [
      {
        ticket_id: 'CHG-1',
        updated_at: '2026-11-20T21:00:00Z',
        identities: ['aws-breakglass'],
        requester: 'alice',
        approvers: ['bob'],
        status: 'approved',
        not_before: '2026-11-20T21:00:00Z',
        not_after: '2026-11-20T23:00:00Z',
        scope_accounts: [],
        scope_orgs: [],
        scope_clusters: [],
        reason: 'incident',
        origin: 'file',
      },
    ]);
    expect((store.evidence as AuditChain).head.seq).toBe(5);
    await store.close(); // signs the closing checkpoint

    store = openStore({ kind: 'chdb', path });
    const again = await loadEvidenceKeys({ store });
    expect(again.keyId).toBe(keys.keyId); // the generated key is kept, not regenerated
    const chain = await AuditChain.open(store, { writer: 'detect@a', keys: again, checkpointEvery: 3 });
    expect(chain.head.seq).toBe(5);
    store.evidence = chain;
    await insertRows(store, 'alerts', [alert('a9', 9)]);
    expect(chain.head.seq).toBe(6);

    const log = await rows<{ seq: string; tbl: string; prev_hash: string; hash: string }>(
      store,
      "SELECT seq, tbl, prev_hash, hash FROM audit_log WHERE writer = 'detect@a' ORDER BY seq",
    );
    expect(log.map((r) => Number(r.seq))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(log.map((r) => r.tbl)).toEqual(['alerts', 'alerts', 'alerts', 'alerts', 'tickets', 'alerts']);
    for (let i = 1; i < log.length; i++) expect(log[i]!.prev_hash).toBe(log[i - 1]!.hash);
    const checkpoints = await rows<{ seq: string }>(store, "SELECT seq FROM audit_checkpoints WHERE writer = 'detect@a' ORDER BY seq");
    // Due after 3 records (the first insert brought 4), and at the clean stop.
    expect(checkpoints.map((c) => Number(c.seq))).toEqual([4, 5]);
    expect(await chainHeads(store)).toEqual([{ writer: 'detect@a', seq: 6, hash: log[5]!.hash }]);

    const result = await verifyAudit(store);
    expect(result.findings).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.rowsChecked).toBe(6);
    expect(result.warnings.join('\n')).toMatch(/records 6\.\.6 are chained but not yet under a signed checkpoint/);
    await chain.checkpoint();
    expect((await verifyAudit(store)).warnings).toEqual([]);
  });

  it('keeps one chain per writer when two write at once', async () => {
    const keys = await loadEvidenceKeys({ store });
    const detached = { ...store, evidence: null } as Store;
    const one = await AuditChain.open(store, { writer: 'detect@b', keys });
    const two = await AuditChain.open(store, { writer: 'detect@c', keys });
    await Promise.all(
      [0, 1, 2, 3].map(async (i) => {
        const chain = i % 2 ? two : one;
        const row = alert(`w${i}`, 10 + i);
        await chain.beforeInsert('alerts', [row]);
        await insertRows(detached, 'alerts', [row]);
      }),
    );
    await one.close();
    await two.close();
    const heads = await chainHeads(store);
    expect(heads.filter((h) => h.writer !== 'detect@a').map((h) => [h.writer, h.seq])).toEqual([
      ['detect@b', 2],
      ['detect@c', 2],
    ]);
    const result = await verifyAudit(store);
    expect(result.findings).toEqual([]);
    expect(result.writers.map((w) => [w.writer, w.signedThrough])).toEqual([
      ['detect@a', 6],
      ['detect@b', 2],
      ['detect@c', 2],
    ]);
  });

  it('an identical re-insert (a replay) chains again and still verifies; a crash between chain and insert is reported until the replay', async () => {
    const chain = store.evidence as AuditChain;
    await insertRows(store, 'alerts', [alert('a1', 1)]); // same content as before
    const lost = alert('lost', 30);
    await chain.beforeInsert('alerts', [lost]); // the process dies here: chained, not stored
    const broken = await verifyAudit(store);
    expect(broken.ok).toBe(false);
    expect(broken.findings).toEqual([
      expect.objectContaining({ table: 'alerts', key: canonicalJson(['lost']), problem: expect.stringMatching(/missing from the table/) }),
    ]);
    await insertRows({ ...store, evidence: null } as Store, 'alerts', [alert('lost', 30)]); // the replay after the crash
    expect((await verifyAudit(store)).findings).toEqual([]);
  });

  it('checks checkpoint signatures against the trusted key: an untrusted key and a forged signature fail', async () => {
    const keys = await loadEvidenceKeys({ store });
    expect(await storedPublicKeys(store)).toEqual([expect.objectContaining({ keyId: keys.keyId, publicKeyPem: keys.publicKeyPem })]);
    expect(keyIdOf(keys.publicKeyPem)).toBe(keys.keyId);
    expect(verifySignature(keys.publicKeyPem, 'x', keys.sign('x'))).toBe(true);
    expect(verifySignature(keys.publicKeyPem, 'y', keys.sign('x'))).toBe(false);

    const pubFile = join(dir, 'trusted.pem');
    writeFileSync(pubFile, keys.publicKeyPem);
    expect((await verifyAudit(store, { trustedKeys: readPublicKeys(pubFile) })).ok).toBe(true);

    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    writeFileSync(join(dir, 'other.pem'), other);
    const untrusted = await verifyAudit(store, { trustedKeys: readPublicKeys(join(dir, 'other.pem')) });
    expect(untrusted.ok).toBe(false);
    expect(untrusted.keySource).toBe('public-key');
    expect(untrusted.findings).toContainEqual(
      expect.objectContaining({ writer: 'detect@a', seq: 4, problem: expect.stringMatching(/not trusted/) }),
    );

    const forgedSignature = Buffer.alloc(64, 7).toString('base64');
    await mutate(store, "ALTER TABLE audit_checkpoints UPDATE signature = {s:String} WHERE writer = 'detect@b'", { s: forgedSignature });
    const forged = await verifyAudit(store, { trustedKeys: readPublicKeys(pubFile) });
    expect(forged.findings).toEqual([
      expect.objectContaining({ writer: 'detect@b', seq: 2, problem: expect.stringMatching(/signature is not valid/) }),
    ]);
  });

  it('a chain record rewritten together with its row is found by its hash, at its sequence number', async () => {
    await mutate(
      store,
      "ALTER TABLE audit_log UPDATE content = replaceOne(content, 'critical', 'low') WHERE writer = 'detect@a' AND seq = 2",
      {},
    );
    await mutate(store, "ALTER TABLE alerts UPDATE severity = 'low' WHERE alert_id = 'a1'", {});
    const result = await verifyAudit(store);
    expect(result.findings).toContainEqual(
      expect.objectContaining({ writer: 'detect@a', seq: 2, problem: 'record hash does not match its content' }),
    );
    // Row and chain content were changed alike, so they agree: only the record hash gives it away.
    expect(result.findings.filter((f) => f.writer === 'detect@a')).toEqual([
      { writer: 'detect@a', seq: 2, table: 'alerts', key: canonicalJson(['a1']), problem: 'record hash does not match its content' },
    ]);

    // A whole chain deleted with its rows: its signed checkpoints still say it existed.
    await mutate(store, "ALTER TABLE audit_log DELETE WHERE writer = 'detect@c'", {});
    await mutate(store, "ALTER TABLE alerts DELETE WHERE alert_id IN ('w1', 'w3')", {});
    expect((await verifyAudit(store)).findings.filter((f) => f.writer === 'detect@c')).toEqual([
      { writer: 'detect@c', seq: 1, table: null, key: null, problem: 'records 1..2 were signed at a checkpoint but are gone' },
    ]);
    await store.close();
  });
});
