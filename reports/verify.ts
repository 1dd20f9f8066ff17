import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Store } from '../core/store/client.js';
import { settleChain } from '../evidence/journal.js';
import { verifySignature } from '../evidence/keys.js';
import { verifyAudit } from '../evidence/verify.js';
import { verifyDigest } from './digest.js';
import { ReportError } from './errors.js';
import { buildReport } from './registry.js';
import { contentOf, type DetachedSignature, filePayload, parseSignedReport, type SignedReport, sha256, signedPayload } from './signing.js';

export interface TrustedKey {
  keyId: string;
  publicKeyPem: string;
}

export interface VerifyInput {
  /** The report file: a signed JSON report, a `.sig.json`, or a CSV/HTML with its `.sig.json` beside it. */
  file: string;
  /** Keys trusted out of band (`--public-key`) or the store's own (`--store`/`--config`); never the file's. */
  trusted: TrustedKey[];
  /** With a store: the chain heads must still be there, and the report rebuilt from it must give the same digest. */
  store?: Store | null;
}

export interface VerifyCheck {
  check: 'file' | 'digest' | 'signature' | 'chain' | 'evidence' | 'rebuild';
  ok: boolean;
  detail: string;
}

export interface VerifyResult {
  ok: boolean;
  report: string;
  digest: string;
  checks: VerifyCheck[];
}

/** Where the detached signature of a rendered file lives: its extension replaced by `.sig.json`. */
export function signaturePathFor(file: string): string {
  return `${file.replace(/\.(csv|html?)$/i, '')}.sig.json`;
}

/** Finds the signed document for `file`: itself when it is one, else its `.sig.json` beside it. */
function signedDocumentFor(file: string): {
  doc: SignedReport | DetachedSignature;
  bound: { path: string; bytes: Buffer } | null;
  source: string;
} {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (cause) {
    throw new ReportError('BG_REPORT_VERIFY', `cannot read ${file} (${(cause as NodeJS.ErrnoException).code})`, { stage: 'config', cause });
  }
  const text = bytes.toString('utf8');
  if (/\.json$/i.test(file) && text.trimStart().startsWith('{')) {
    const doc = parseSignedReport(text, file);
    const named = 'file' in doc ? join(dirname(file), basename(doc.file.name)) : null;
    // A `.sig.json` checks the file it names when that file is beside it.
    const bound = named && existsSync(named) ? { path: named, bytes: readFileSync(named) } : null;
    return { doc, bound, source: file };
  }
  const sig = signaturePathFor(file);
  if (!existsSync(sig))
    throw new ReportError('BG_REPORT_VERIFY', `${file} has no detached signature: ${basename(sig)} is not beside it`, {
      stage: 'config',
      hint: 'a CSV or HTML report is verified with the .sig.json that `report run --out FILE` or the report mail put beside it',
    });
  return { doc: parseSignedReport(readFileSync(sig, 'utf8'), sig), bound: { path: file, bytes }, source: sig };
}

/**
 * The evidence rows of the report's period still match the audit chain (evidence/verify.ts: every
 * chain recomputed, checkpoints checked against the trusted keys, rows of the period matched).
 */
async function evidenceCheck(store: Store, doc: SignedReport, trusted: TrustedKey[]): Promise<VerifyCheck> {
  const audit = await verifyAudit(store, { from: doc.from, to: doc.to, trustedKeys: trusted });
  if (audit.ok)
    return {
      check: 'evidence',
      ok: true,
      detail: `${audit.rowsChecked} evidence row(s) of the period match the audit chain (${audit.records} records, ${audit.writers.length} writer(s))`,
    };
  const shown = audit.findings
    .slice(0, 3)
    .map((f) => `${f.table ?? 'chain'}${f.key ? ` ${f.key}` : ''}${f.writer ? ` (${f.writer}#${f.seq})` : ''}: ${f.problem}`);
  return {
    check: 'evidence',
    ok: false,
    detail: `the audit chain does not hold the store's evidence: ${shown.join('; ')}${audit.findings.length > 3 ? ` and ${audit.findings.length - 3} more (glasswatch audit verify)` : ''}`,
  };
}

async function chainCheck(store: Store, doc: SignedReport): Promise<VerifyCheck> {
  const heads = Array.isArray(doc.metadata.chainHeads) ? doc.metadata.chainHeads : [];
  if (heads.length === 0) return { check: 'chain', ok: true, detail: 'the report was built from a store with no audit chain yet' };
  await settleChain(store);
  const missing: string[] = [];
  for (const h of heads) {
    const rows = await (
      await store.client.query({
        query: 'SELECT DISTINCT hash FROM audit_log WHERE writer = {writer:String} AND seq = {seq:UInt64}',
        query_params: { writer: String(h.writer), seq: Number(h.seq) },
        format: 'JSONEachRow',
      })
    ).json<{ hash: string }>();
    if (rows.length !== 1 || rows[0]?.hash !== h.hash)
      missing.push(
        `${h.writer}#${h.seq} ${rows.length === 0 ? 'is not in audit_log' : `has hash ${rows.map((r) => r.hash.slice(0, 12)).join('/')}…, not ${String(h.hash).slice(0, 12)}…`}`,
      );
  }
  return missing.length
    ? { check: 'chain', ok: false, detail: `the chain no longer holds the head the report was built from: ${missing.join('; ')}` }
    : { check: 'chain', ok: true, detail: `${heads.length} chain head(s) still in audit_log with the same hashes` };
}

async function rebuildCheck(store: Store, doc: SignedReport): Promise<VerifyCheck> {
  const content = contentOf(doc) as SignedReport;
  const rotation =
    content.report === 'rotation-compliance' ? { afterUseHours: content.afterUseHours, maxAgeDays: content.maxAgeDays } : undefined;
  const rebuilt = await buildReport(content.report, {
    store,
    period: { fromMs: Date.parse(content.from), toMs: Date.parse(content.to) },
    ...(rotation ? { rotation } : {}),
    // Retention horizons as of the day the report was built: a later day's notice is not an edit.
    nowMs: Date.parse(doc.metadata.generatedAt),
  });
  return rebuilt.digest === content.digest
    ? { check: 'rebuild', ok: true, detail: `rebuilt from ${store.describe}: same digest` }
    : {
        check: 'rebuild',
        ok: false,
        detail: `rebuilt from ${store.describe}, the report's digest is ${rebuilt.digest}, not ${content.digest}: the store's rows differ from the ones the report was built from (edited, or removed by retention since)`,
      };
}

/** Every check a report can pass; `ok` only when all of them hold. Never throws for a failed check. */
export async function verifyReport(input: VerifyInput): Promise<VerifyResult> {
  const { doc, bound } = signedDocumentFor(input.file);
  const checks: VerifyCheck[] = [];
  const content = contentOf(doc);

  checks.push(
    verifyDigest(content)
      ? { check: 'digest', ok: true, detail: `content matches digest ${content.digest}` }
      : { check: 'digest', ok: false, detail: 'the content does not match its digest: a row, a total or the period was edited' },
  );

  const key = input.trusted.find((k) => k.keyId === doc.signature.keyId);
  const payload = signedPayload(content.digest, doc.metadata);
  if (input.trusted.length === 0)
    checks.push({
      check: 'signature',
      ok: false,
      detail: 'no trusted key: give --public-key FILE, or --store/--config for the store’s keys',
    });
  else if (!key)
    checks.push({
      check: 'signature',
      ok: false,
      detail: `signed by key ${doc.signature.keyId}, which is not trusted (trusted: ${input.trusted.map((k) => k.keyId).join(', ')})`,
    });
  else if (!verifySignature(key.publicKeyPem, payload, doc.signature.value))
    checks.push({ check: 'signature', ok: false, detail: `the signature of key ${key.keyId} does not match the digest and metadata` });
  else checks.push({ check: 'signature', ok: true, detail: `Ed25519 signature of trusted key ${key.keyId} over the digest and metadata` });

  if ('file' in doc && doc.file) {
    if (!bound)
      checks.push({ check: 'file', ok: true, detail: `${doc.file.name} is not beside the signature: checked the signed content only` });
    else {
      const actual = sha256(bound.bytes);
      const signedOk = key ? verifySignature(key.publicKeyPem, filePayload(content.digest, doc.file.sha256), doc.file.signature) : false;
      checks.push(
        actual !== doc.file.sha256
          ? { check: 'file', ok: false, detail: `${bound.path} was changed: SHA-256 ${actual}, signed ${doc.file.sha256}` }
          : !signedOk
            ? { check: 'file', ok: false, detail: `the file binding of ${basename(bound.path)} is not signed by a trusted key` }
            : { check: 'file', ok: true, detail: `${basename(bound.path)} is the signed rendering (SHA-256 ${actual})` },
      );
    }
  }

  if (input.store) {
    checks.push(await chainCheck(input.store, doc));
    checks.push(await evidenceCheck(input.store, doc, input.trusted));
    checks.push(await rebuildCheck(input.store, doc));
  }
  return { ok: checks.every((c) => c.ok), report: content.report, digest: content.digest, checks };
}
