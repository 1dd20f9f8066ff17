import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Canonical JSON: object keys sorted at every depth, arrays in their given order (builders sort
 * rows by a stable key), no whitespace. Two reports with the same content give the same text
 * whatever order the engine returned rows in or the code built objects in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * SHA-256 over the canonical form of the report's content: the name, the period, the totals,
 * every row and a retention notice. Not over the digest itself nor the signing envelope
 * (`metadata`, `signature`, `file`: reports/signing.ts), so the same data gives the same digest
 * whenever and by whomever it is built. Any edit to a row, a total or the period shows.
 */
export function reportDigest(report: object): string {
  const { digest: _d, metadata: _m, signature: _s, file: _f, ...content } = report as Record<string, unknown>;
  return createHash('sha256').update(canonicalJson(content)).digest('hex');
}

/** True when the report's `digest` matches its content. Accepts a parsed JSON copy. */
export function verifyDigest(report: unknown): boolean {
  if (!report || typeof report !== 'object' || Array.isArray(report)) return false;
  const claimed = (report as { digest?: unknown }).digest;
  if (typeof claimed !== 'string' || !/^[0-9a-f]{64}$/.test(claimed)) return false;
  return timingSafeEqual(Buffer.from(claimed, 'hex'), Buffer.from(reportDigest(report), 'hex'));
}

/** Stamps the digest onto a freshly built report, placed right after the period for readability. */
export function withDigest<T extends { report: string; from: string; to: string }>(report: Omit<T, 'digest'>): T {
  const { report: name, from, to, ...rest } = report as Omit<T, 'digest'> & { report: string; from: string; to: string };
  const digest = reportDigest(report);
  return { report: name, from, to, digest, ...rest } as unknown as T;
}
