import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config.js';
import { insertRows, migrate, openStore, type Store } from '../../core/store/index.js';
import { canonicalJson } from '../../evidence/canonical.js';
import { AuditChain } from '../../evidence/chain.js';
import { evidenceConfig } from '../../evidence/config.js';
import { generatedKeyFile, keyIdOf, loadEvidenceKeys, readPublicKeys } from '../../evidence/keys.js';
import { verifyAudit } from '../../evidence/verify.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-evidence-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pemPair(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

describe('canonical JSON', () => {
  it('sorts keys at every depth, drops undefined members, keeps array positions, and refuses what JSON cannot say exactly', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, undefined, 'x'], c: null }, e: undefined })).toBe('{"a":{"c":null,"d":[3,null,"x"]},"b":1}');
    expect(canonicalJson({ é: 1, Z: 2, a: 3 })).toBe('{"Z":2,"a":3,"é":1}');
    expect(canonicalJson('line\n"quoted"')).toBe(JSON.stringify('line\n"quoted"'));
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/no form for NaN/);
    expect(() => canonicalJson({ n: 1n })).toThrow(/bigint/);
  });
});

describe('evidence keys', () => {
  it('reads a configured Ed25519 key and refuses another kind of key without quoting the file', async () => {
    const store = openStore({ kind: 'chdb', path: join(dir, 'store') });
    try {
      await migrate(store);
      const { privatePem, publicPem } = pemPair();
      writeFileSync(join(dir, 'signing.pem'), privatePem, { mode: 0o600 });
      const keys = await loadEvidenceKeys({ signingKeyFile: join(dir, 'signing.pem'), store });
      expect(keys.keyId).toBe(keyIdOf(publicPem));
      expect(keys.publicKeyPem).toBe(publicPem);

      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      writeFileSync(join(dir, 'rsa.pem'), rsa);
      await expect(loadEvidenceKeys({ signingKeyFile: join(dir, 'rsa.pem'), store })).rejects.toMatchObject({
        code: 'BG_EVIDENCE_KEY',
        message: expect.stringMatching(/the key is rsa, evidence is signed with Ed25519/),
      });
      writeFileSync(join(dir, 'garbage.pem'), 'not a key at all: s3cret');
      const err = await loadEvidenceKeys({ signingKeyFile: join(dir, 'garbage.pem'), store }).catch((e: Error) => e);
      expect(err).toMatchObject({ code: 'BG_EVIDENCE_KEY', message: 'evidence.signingKey: not a PEM private key' });
      expect(JSON.stringify(err)).not.toContain('s3cret');
      await expect(loadEvidenceKeys({ signingKeyFile: join(dir, 'missing.pem'), store })).rejects.toMatchObject({
        code: 'BG_EVIDENCE_KEY',
      });
    } finally {
      await store.close();
    }
  });

  it('a rotated key: old checkpoints keep verifying with the old public key, and --public-key must name every key in use', async () => {
    const store = openStore({ kind: 'chdb', path: join(dir, 'store') });
    const row = (id: string) => ({
      alert_id: id,
      type: 't',
      severity: 'high',
      event_ids: [],
      time: '2026-11-20T00:00:00Z',
      detected_at: '2026-11-20T00:00:00Z',
      summary: id,
    });
    try {
      const before = pemPair();
      const after = pemPair();
      writeFileSync(join(dir, 'before.pem'), before.privatePem);
      writeFileSync(join(dir, 'after.pem'), after.privatePem);
      for (const [file, id] of [
        ['before.pem', 'r1'],
        ['after.pem', 'r2'],
      ] as const) {
        const keys = await loadEvidenceKeys({ signingKeyFile: join(dir, file), store });
        const chain = await AuditChain.open(store, { writer: 'detect@rot', keys });
        await chain.beforeInsert('alerts', [row(id)]);
        await insertRows({ ...store, evidence: null } as Store, 'alerts', [row(id)]);
        await chain.close();
      }
      expect((await verifyAudit(store)).findings.filter((f) => f.writer === 'detect@rot')).toEqual([]);
      writeFileSync(join(dir, 'only-new.pub.pem'), after.publicPem);
      const onlyNew = await verifyAudit(store, { trustedKeys: readPublicKeys(join(dir, 'only-new.pub.pem')) });
      expect(onlyNew.findings.filter((f) => f.writer === 'detect@rot')).toEqual([
        expect.objectContaining({ seq: 1, problem: `checkpoint signed by key ${keyIdOf(before.publicPem)}, which is not trusted` }),
      ]);
      writeFileSync(join(dir, 'both.pub.pem'), before.publicPem + after.publicPem);
      const both = await verifyAudit(store, { trustedKeys: readPublicKeys(join(dir, 'both.pub.pem')) });
      expect(both.findings.filter((f) => f.writer === 'detect@rot')).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('keeps a generated key beside a chDB store, and under .glasswatch/ in the working folder for a ClickHouse server', () => {
    const chdb = { config: { kind: 'chdb', path: join(dir, 'data', 'store') } } as Store;
    expect(generatedKeyFile(chdb)).toBe(join(dir, 'data', 'store.evidence-key.pem'));
    const server = { config: { kind: 'clickhouse', url: 'https://ch.example.com:8443' } } as Store;
    expect(generatedKeyFile(server)).toBe(join(process.cwd(), '.glasswatch', 'evidence-key.pem'));
    expect(generatedKeyFile(server, join(dir, 'srv'))).toBe(join(dir, 'srv.evidence-key.pem'));
  });

  it('reads the evidence config section, naming file and field in errors', () => {
    expect(evidenceConfig(parseConfig({}, 'gw.yml'))).toEqual({ signingKey: null, checkpointEvery: 1000, writer: null });
    expect(evidenceConfig(parseConfig({ evidence: { signingKey: '/k.pem', checkpointEvery: 50 } }, 'gw.yml'))).toMatchObject({
      signingKey: '/k.pem',
      checkpointEvery: 50,
    });
    expect(() => evidenceConfig(parseConfig({ evidence: { checkpointEvery: 0 } }, 'gw.yml'))).toThrow(
      /gw\.yml: evidence\.checkpointEvery: must be between 1/,
    );
    expect(() => evidenceConfig(parseConfig({ evidence: { signingkey: 'x' } }, 'gw.yml'))).toThrow(
      /gw\.yml: evidence\.signingkey: unknown key/,
    );
  });
});
