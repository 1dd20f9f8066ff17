import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, open, readFile, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { GlasswatchError } from '../core/errors.js';
import { ensurePrivateDir, PRIVATE_FILE_MODE } from '../core/paths.js';
import type { Store } from '../core/store/client.js';
import { insertRows } from '../core/store/writer.js';

/**
 * Ed25519 evidence keys. The private key signs audit-chain checkpoints and reports; the public key
 * is stored in the store (`evidence_keys`, one row per key id, never deleted, so old signatures stay
 * checkable after a rotation) and printed by `glasswatch audit key`. A verifier should trust a key
 * it got out of band (`--public-key`), not only the keys a store holds about itself.
 */
export interface EvidenceKeys {
  keyId: string;
  publicKeyPem: string;
  /** base64 detached Ed25519 signature of `data`. */
  sign(data: Buffer | string): string;
}

export interface LoadKeysInput {
  /** `evidence.signingKey`: a PEM private key file (secret: its content is never logged). */
  signingKeyFile?: string | null;
  /**
   * The store's data folder: a generated key is kept beside it as `<storeDir>.evidence-key.pem`
   * (default: the chDB store path, e.g. `.glasswatch/store.evidence-key.pem`). A ClickHouse server
   * store has no folder here: the key is `.glasswatch/evidence-key.pem` under the working folder,
   * and a server store written by several hosts should configure `evidence.signingKey` instead
   * (one key, or one per host: verify accepts every key it trusts).
   */
  storeDir?: string | null;
  store: Store;
}

/** Where a generated key lives for this store (see LoadKeysInput.storeDir). */
export function generatedKeyFile(store: Store, storeDir?: string | null): string {
  const dir = storeDir ?? (store.config.kind === 'chdb' ? store.config.path : null);
  if (dir === null) return resolve('.glasswatch', 'evidence-key.pem');
  return join(dirname(resolve(dir)), `${basename(resolve(dir))}.evidence-key.pem`);
}

export async function loadEvidenceKeys(input: LoadKeysInput): Promise<EvidenceKeys> {
  const privateKey = input.signingKeyFile
    ? readConfiguredKey(input.signingKeyFile)
    : await generatedKey(generatedKeyFile(input.store, input.storeDir));
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  const keyId = keyIdOf(publicKeyPem);
  await insertRows(input.store, 'evidence_keys', [{ key_id: keyId, public_key: publicKeyPem, created_at: new Date().toISOString() }]);
  return { keyId, publicKeyPem, sign: (data) => sign(null, toBuffer(data), privateKey).toString('base64') };
}

function readConfiguredKey(file: string): KeyObject {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new GlasswatchError(
      'BG_EVIDENCE_KEY',
      `evidence.signingKey: cannot read the key file (${(cause as NodeJS.ErrnoException).code})`,
      {
        stage: 'config',
        cause,
        hint: 'point evidence.signingKey at a PEM Ed25519 private key (openssl genpkey -algorithm ed25519 -out key.pem), readable by glasswatch only',
      },
    );
  }
  return parsePrivateKey(text, 'evidence.signingKey');
}

function parsePrivateKey(text: string, where: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch (cause) {
    // The parser's message may quote the file; only the fact is reported.
    throw new GlasswatchError('BG_EVIDENCE_KEY', `${where}: not a PEM private key`, {
      stage: 'config',
      cause: undefined,
      context: { reason: (cause as Error).name },
      hint: 'generate one with: openssl genpkey -algorithm ed25519 -out key.pem && chmod 600 key.pem',
    });
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new GlasswatchError('BG_EVIDENCE_KEY', `${where}: the key is ${key.asymmetricKeyType}, evidence is signed with Ed25519`, {
      stage: 'config',
      hint: 'generate one with: openssl genpkey -algorithm ed25519 -out key.pem && chmod 600 key.pem',
    });
  return key;
}

/** The key beside the store, created 0600 on first use; two processes starting at once agree on one (exclusive create). */
async function generatedKey(file: string): Promise<KeyObject> {
  try {
    return parsePrivateKey(await readFile(file, 'utf8'), file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await ensurePrivateDir(dirname(file));
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(tmp, 'wx', PRIVATE_FILE_MODE);
  } catch (cause) {
    throw new GlasswatchError(
      'BG_EVIDENCE_KEY',
      `cannot create the evidence signing key beside the store (${(cause as NodeJS.ErrnoException).code})`,
      {
        stage: 'config',
        cause,
        hint: 'make the store folder writable, or configure evidence.signingKey',
      },
    );
  }
  try {
    await handle.chmod(PRIVATE_FILE_MODE);
    await handle.writeFile(pem);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    // link() fails when the name exists: the first process to finish wins, the others read its key.
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(tmp);
  }
  return parsePrivateKey(await readFile(file, 'utf8'), file);
}

export function verifySignature(publicKeyPem: string, data: Buffer | string, signatureB64: string): boolean {
  try {
    const key = createPublicKey(publicKeyPem);
    if (key.asymmetricKeyType !== 'ed25519') return false;
    const signature = Buffer.from(signatureB64, 'base64');
    if (signature.length !== 64) return false;
    return verify(null, toBuffer(data), key, signature);
  } catch {
    return false;
  }
}

/** hex SHA-256 of the DER SubjectPublicKeyInfo, first 16 characters. */
export function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

/** Every public key the store has recorded, oldest first. */
export async function storedPublicKeys(store: Store): Promise<Array<{ keyId: string; publicKeyPem: string; createdAt: string }>> {
  const rows = await (
    await store.client.query({
      query: `SELECT key_id, argMin(public_key, created_at) AS pem, min(created_at) AS first_seen
              FROM evidence_keys GROUP BY key_id ORDER BY first_seen, key_id`,
      format: 'JSONEachRow',
    })
  ).json<{ key_id: string; pem: string; first_seen: string }>();
  return rows.map((r) => ({ keyId: r.key_id, publicKeyPem: r.pem, createdAt: r.first_seen }));
}

/** Public keys from a PEM file (one or several blocks: a verifier may trust the keys of a rotation). */
export function readPublicKeys(file: string): Array<{ keyId: string; publicKeyPem: string }> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new GlasswatchError('BG_EVIDENCE_KEY', `cannot read the public key file ${file} (${(cause as NodeJS.ErrnoException).code})`, {
      stage: 'config',
      cause,
      hint: 'get the public key with: glasswatch audit key > evidence-key.pub.pem',
    });
  }
  const blocks = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  const keys = blocks.map((pem) => {
    try {
      const key = createPublicKey(pem);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(key.asymmetricKeyType);
      const normalized = key.export({ type: 'spki', format: 'pem' }).toString();
      return { keyId: keyIdOf(normalized), publicKeyPem: normalized };
    } catch {
      throw new GlasswatchError('BG_EVIDENCE_KEY', `${file}: a PUBLIC KEY block is not an Ed25519 public key`, {
        stage: 'config',
        hint: 'get the public key with: glasswatch audit key > evidence-key.pub.pem',
      });
    }
  });
  if (keys.length === 0)
    throw new GlasswatchError('BG_EVIDENCE_KEY', `${file}: no "BEGIN PUBLIC KEY" block`, {
      stage: 'config',
      hint: 'get the public key with: glasswatch audit key > evidence-key.pub.pem',
    });
  return keys;
}

function toBuffer(data: Buffer | string): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}
