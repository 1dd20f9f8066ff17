import { createHash } from 'node:crypto';
import type { GlasswatchConfig } from '../core/config.js';
import { packageVersion } from '../core/paths.js';
import type { Store } from '../core/store/client.js';
import { canonicalJson } from '../evidence/canonical.js';
import { chainHeads } from '../evidence/chain.js';
import { configSha256, rulePackSha256 } from '../evidence/fingerprint.js';
import type { EvidenceKeys } from '../evidence/keys.js';
import { ReportError } from './errors.js';
import type { AnyReport } from './types.js';

/**
 * Signed reports. The report's `digest` covers its content (period, totals, rows, retention
 * notice); `metadata` says who built it from what; `signature` is a detached Ed25519 signature over
 * both (the digest standing for the content). One JSON document holds all three: `report run
 * --format json` writes it, and a CSV or HTML file gets it beside itself as `FILE.sig.json`, with
 * a second signature binding the file's SHA-256 to the same digest.
 */
export const SIGNED_REPORT_FORMAT = 'glasswatch.signed-report/1';

export interface ChainHead {
  writer: string;
  seq: number;
  hash: string;
}

export interface ReportMetadata {
  format: typeof SIGNED_REPORT_FORMAT;
  generatedAt: string;
  glasswatchVersion: string;
  /** `reports.organisation` from the config. */
  organisation: string | null;
  /** SHA-256 of the config file's bytes; null when none was given. */
  configSha256: string | null;
  /** SHA-256 over the rule files the detector loads (evidence/fingerprint.ts). */
  rulePackSha256: string;
  /** The store the report was built from (`store.describe`). */
  store: string;
  /** The audit chain's head per writer when the report was built: the rows it was built from are below these. */
  chainHeads: ChainHead[];
}

export interface ReportSignature {
  algorithm: 'Ed25519';
  keyId: string;
  /** For information only: a verifier trusts a key it got out of band or from the store, never this one alone. */
  publicKeyPem: string;
  /** base64 signature of `signedPayload(digest, metadata)`. */
  value: string;
}

export type SignedReport = AnyReport & { metadata: ReportMetadata; signature: ReportSignature };

/** The part of a `.sig.json` that binds one rendered file (CSV or HTML) to the signed report. */
export interface FileBinding {
  name: string;
  format: 'csv' | 'html' | 'json';
  sha256: string;
  /** base64 signature of `filePayload(digest, sha256)`. */
  signature: string;
}

export type DetachedSignature = SignedReport & { file: FileBinding };

// Domain-separated: a report signature can never pass for a checkpoint's or a file binding's.
export function signedPayload(digest: string, metadata: ReportMetadata): string {
  return `glasswatch report v1\n${canonicalJson({ digest, metadata })}`;
}

export function filePayload(digest: string, sha256: string): string {
  return `glasswatch report file v1\n${canonicalJson({ digest, sha256 })}`;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface MetadataInput {
  store: Store;
  config: Pick<GlasswatchConfig, 'file' | 'sections'>;
  organisation: string | null;
  chainHeads: ChainHead[];
  nowMs?: number;
}

export function reportMetadata(input: MetadataInput): ReportMetadata {
  return {
    format: SIGNED_REPORT_FORMAT,
    generatedAt: new Date(input.nowMs ?? Date.now()).toISOString(),
    glasswatchVersion: packageVersion(),
    organisation: input.organisation,
    // The same fingerprints as the chain's start records (evidence/fingerprint.ts): comparable.
    configSha256: input.config.file ? configSha256(input.config) : null,
    rulePackSha256: rulePackSha256(input.config),
    store: input.store.describe,
    chainHeads: [...input.chainHeads].sort((a, b) => (a.writer < b.writer ? -1 : a.writer > b.writer ? 1 : 0)),
  };
}

/** The report with its metadata and signature beside the content (the digest is unchanged). */
export function signReport(report: AnyReport, metadata: ReportMetadata, keys: EvidenceKeys): SignedReport {
  const content = contentOf(report);
  return {
    ...content,
    metadata,
    signature: {
      algorithm: 'Ed25519',
      keyId: keys.keyId,
      publicKeyPem: keys.publicKeyPem,
      value: keys.sign(signedPayload(content.digest, metadata)),
    },
  } as SignedReport;
}

/** The `.sig.json` of a rendered file: the signed report plus the file's hash, signed. */
export function detachedSignature(
  signed: SignedReport,
  name: string,
  format: FileBinding['format'],
  bytes: Buffer | string,
  keys: EvidenceKeys,
): DetachedSignature {
  const digest = sha256(bytes);
  return { ...signed, file: { name, format, sha256: digest, signature: keys.sign(filePayload(signed.digest, digest)) } };
}

/** The report without the signing envelope: what the digest covers (plus the digest). */
export function contentOf(doc: AnyReport | SignedReport | DetachedSignature): AnyReport {
  const { metadata: _m, signature: _s, file: _f, ...content } = doc as DetachedSignature;
  return content as AnyReport;
}

/** The name a report's files get (mail attachments, `report run --out` suggestions). */
export function reportFileStem(report: Pick<AnyReport, 'report' | 'from' | 'to'>): string {
  return `${report.report}_${report.from.slice(0, 10)}_${report.to.slice(0, 10)}`;
}

/** Parses a signed report or a `.sig.json`; anything else is a usage error naming what is missing. */
export function parseSignedReport(text: string, file: string): SignedReport | DetachedSignature {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ReportError('BG_REPORT_VERIFY', `${file} is not JSON: not a signed report or a .sig.json`, { stage: 'config' });
  }
  const d = doc as Partial<SignedReport>;
  if (!d || typeof d !== 'object' || typeof d.report !== 'string' || typeof d.digest !== 'string')
    throw new ReportError('BG_REPORT_VERIFY', `${file} is not a glasswatch report (no report name or digest)`, { stage: 'config' });
  if (!d.metadata || d.metadata.format !== SIGNED_REPORT_FORMAT || !d.signature || typeof d.signature.value !== 'string')
    throw new ReportError('BG_REPORT_VERIFY', `${file} is an unsigned report (no metadata or signature of ${SIGNED_REPORT_FORMAT})`, {
      stage: 'config',
      hint: 'build a signed copy with: glasswatch report run NAME --from ISO --to ISO --out FILE.json',
    });
  return doc as SignedReport;
}

/** Signs reports for one store and config: metadata (with the chain heads of the moment) and signature. */
export interface ReportSigner {
  keys: EvidenceKeys;
  sign(report: AnyReport, nowMs?: number): Promise<SignedReport>;
}

export function reportSigner(o: Omit<MetadataInput, 'chainHeads' | 'nowMs'> & { keys: EvidenceKeys }): ReportSigner {
  return {
    keys: o.keys,
    async sign(report, nowMs) {
      const metadata = reportMetadata({ ...o, chainHeads: await chainHeads(o.store), ...(nowMs === undefined ? {} : { nowMs }) });
      return signReport(report, metadata, o.keys);
    },
  };
}
