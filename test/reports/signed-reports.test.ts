import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportCommand } from '../../cli/report.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { keyIdOf, storedPublicKeys } from '../../evidence/keys.js';
import { reportDigest } from '../../reports/digest.js';
import { type SignedReport, signedPayload } from '../../reports/signing.js';
import { verifyReport } from '../../reports/verify.js';
import { type Fixture, PERIOD, replayFixture, writeFixture } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-signed-'));
let fixture: Fixture;
let publicKeyFile: string;
const json = () => join(dir, 'activity.json');

async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = openStore({ kind: 'chdb', path: fixture.store });
  try {
    await migrate(store);
    return await fn(store);
  } finally {
    await store.close();
  }
}

const run = (name: string, format: string, out: string) =>
  reportCommand(['run', name, '--from', PERIOD.from, '--to', PERIOD.to, '--format', format, '--out', out, '--config', fixture.config]);

/** A copy of the genuine report with one verdict turned, written beside it. */
function tampered(file: string, edit: (doc: SignedReport & { sessions: Array<{ verdict: string }> }) => void): string {
  const doc = JSON.parse(readFileSync(json(), 'utf8'));
  edit(doc);
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

beforeAll(async () => {
  fixture = writeFixture(dir, 'reports:\n  organisation: Example Corp <Audit>\n');
  await replayFixture(fixture);
  expect(await run('breakglass-activity', 'json', json())).toBe(0);
  publicKeyFile = join(dir, 'evidence-key.pub.pem');
  await withStore(async (store) => {
    const keys = await storedPublicKeys(store);
    expect(keys).toHaveLength(1);
    writeFileSync(publicKeyFile, keys[0]!.publicKeyPem);
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('signed reports', () => {
  it('carry metadata beside the content: organisation, version, hashes, store and chain heads', () => {
    const doc = JSON.parse(readFileSync(json(), 'utf8')) as SignedReport;
    expect(doc.metadata).toMatchObject({
      format: 'glasswatch.signed-report/1',
      organisation: 'Example Corp <Audit>',
      glasswatchVersion: expect.stringMatching(/^\d+\.\d+\.\d+/),
      configSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      rulePackSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      store: expect.stringContaining(fixture.store),
    });
    // The replay chained its sessions and alerts: the report names the head it was built from.
    expect(doc.metadata.chainHeads.length).toBeGreaterThan(0);
    expect(doc.signature).toMatchObject({ algorithm: 'Ed25519', keyId: keyIdOf(readFileSync(publicKeyFile, 'utf8')) });
    // The digest is over the content only: the envelope does not enter it.
    expect(reportDigest(doc)).toBe(doc.digest);
  });

  it('metadata fingerprints are the ones the report run chained in its start record', async () => {
    const doc = JSON.parse(readFileSync(json(), 'utf8')) as SignedReport;
    const starts = await withStore(async (store) =>
      (
        await store.client.query({
          query: "SELECT content FROM audit_log WHERE kind = 'start' AND startsWith(writer, 'report@')",
          format: 'JSONEachRow',
        })
      ).json<{ content: string }>(),
    );
    expect(starts.length).toBeGreaterThan(0);
    const start = JSON.parse(starts[0]!.content) as { config_sha256: string; rule_pack_sha256: string; key_id: string };
    expect(start).toMatchObject({
      config_sha256: doc.metadata.configSha256,
      rule_pack_sha256: doc.metadata.rulePackSha256,
      key_id: doc.signature.keyId,
    });
  });

  it('report verify passes a genuine report with the public key, and with the store (chain heads, rebuilt digest)', async () => {
    expect(await reportCommand(['verify', json(), '--public-key', publicKeyFile])).toBe(0);
    expect(await reportCommand(['verify', json(), '--store', fixture.store])).toBe(0);
    const result = await withStore((store) => verifyReport({ file: json(), trusted: [], store }));
    // No trusted key at all is a failure, never a pass on the key inside the file.
    expect(result.ok).toBe(false);
    expect(result.checks.find((c) => c.check === 'signature')?.ok).toBe(false);
    // Nor are the chain's checkpoints trusted then; the rest holds.
    expect(result.checks.find((c) => c.check === 'evidence')?.ok).toBe(false);
    expect(result.checks.filter((c) => c.check !== 'signature' && c.check !== 'evidence').every((c) => c.ok)).toBe(true);
  });

  it('fails a report with one changed verdict, with or without the digest recomputed', async () => {
    const plain = tampered(join(dir, 'edited.json'), (d) => {
      d.sessions[0]!.verdict = d.sessions[0]!.verdict === 'authorized' ? 'unauthorized' : 'authorized';
    });
    expect(await reportCommand(['verify', plain, '--public-key', publicKeyFile])).toBe(1);
    const recomputed = tampered(join(dir, 'edited-redigested.json'), (d) => {
      d.sessions[0]!.verdict = d.sessions[0]!.verdict === 'authorized' ? 'unauthorized' : 'authorized';
      d.digest = reportDigest(d);
    });
    const r = await verifyReport({
      file: recomputed,
      trusted: [{ keyId: keyIdOf(readFileSync(publicKeyFile, 'utf8')), publicKeyPem: readFileSync(publicKeyFile, 'utf8') }],
    });
    expect(r.checks.find((c) => c.check === 'digest')?.ok).toBe(true);
    expect(r.checks.find((c) => c.check === 'signature')?.ok).toBe(false);
    expect(await reportCommand(['verify', recomputed, '--public-key', publicKeyFile])).toBe(1);
    expect(await reportCommand(['verify', recomputed, '--store', fixture.store])).toBe(1);
  });

  it('fails a report re-signed by an untrusted key, even though its own key checks out', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const forged = tampered(join(dir, 'forged.json'), (d) => {
      d.sessions[0]!.verdict = 'authorized';
      d.digest = reportDigest(d);
      d.signature = {
        algorithm: 'Ed25519',
        keyId: keyIdOf(pem),
        publicKeyPem: pem,
        value: sign(null, Buffer.from(signedPayload(d.digest, d.metadata)), privateKey).toString('base64'),
      };
    });
    expect(await reportCommand(['verify', forged, '--public-key', publicKeyFile])).toBe(1);
    expect(await reportCommand(['verify', forged, '--store', fixture.store])).toBe(1);
  });

  it('a CSV and an HTML are verified against their .sig.json; one changed byte fails', async () => {
    const csv = join(dir, 'coverage.csv');
    expect(await run('ticket-coverage', 'csv', csv)).toBe(0);
    expect(await reportCommand(['verify', csv, '--public-key', publicKeyFile])).toBe(0);
    expect(await reportCommand(['verify', join(dir, 'coverage.sig.json'), '--store', fixture.store])).toBe(0);
    writeFileSync(csv, readFileSync(csv, 'utf8').replace('self_approval', 'unused_ticket'));
    expect(await reportCommand(['verify', csv, '--public-key', publicKeyFile])).toBe(1);

    const html = join(dir, 'incidents.html');
    expect(await run('unauthorized-use', 'html', html)).toBe(0);
    expect(await reportCommand(['verify', html, '--public-key', publicKeyFile])).toBe(0);
    const page = readFileSync(html, 'utf8');
    const sig = JSON.parse(readFileSync(join(dir, 'incidents.sig.json'), 'utf8')) as SignedReport;
    expect(page).toContain(sig.digest);
    expect(page).toContain(sig.signature.value);
    expect(page).toContain('glasswatch report verify unauthorized-use_2026-03-10_2026-03-12.sig.json --public-key evidence-key.pub.pem');
    expect(page).toContain('Example Corp &lt;Audit&gt;');
  });

  it('with the store: fails when a verdict is changed in the store, or the chain head is gone', async () => {
    const copy = join(dir, 'activity-2.json');
    expect(await run('breakglass-activity', 'json', copy)).toBe(0);
    expect(await reportCommand(['verify', copy, '--store', fixture.store])).toBe(0);
    const doc = JSON.parse(readFileSync(copy, 'utf8')) as SignedReport & { sessions: Array<{ sessionId: string }> };
    await withStore(async (store) => {
      await store.client.command({
        query: "ALTER TABLE sessions UPDATE verdict = 'authorized' WHERE session_id = {id:String}",
        query_params: { id: doc.sessions[3]!.sessionId },
        clickhouse_settings: { mutations_sync: '2' },
      });
      const r = await verifyReport({ file: copy, trusted: await storedPublicKeys(store), store });
      expect(r.checks.find((c) => c.check === 'rebuild')).toMatchObject({ ok: false });
      // The audit chain names the edited row: table and key.
      expect(r.checks.find((c) => c.check === 'evidence')).toMatchObject({
        ok: false,
        detail: expect.stringContaining(`sessions ["${doc.sessions[3]!.sessionId}"]`),
      });
      expect(r.checks.find((c) => c.check === 'signature')).toMatchObject({ ok: true });
      const head = doc.metadata.chainHeads[0]!;
      await store.client.command({
        query: 'ALTER TABLE audit_log DELETE WHERE writer = {w:String} AND seq = {s:UInt64}',
        query_params: { w: head.writer, s: head.seq },
        clickhouse_settings: { mutations_sync: '2' },
      });
      const after = await verifyReport({ file: copy, trusted: await storedPublicKeys(store), store });
      expect(after.checks.find((c) => c.check === 'chain')).toMatchObject({ ok: false });
    });
    expect(await reportCommand(['verify', copy, '--store', fixture.store])).toBe(1);
  });
});
