import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * HMAC-SHA256 request signing, used both ways: outbound alert/revocation webhooks are
 * signed, inbound ticket hooks are verified. The signed string is `<timestamp>.<body>`
 * so a captured request cannot be replayed outside the window with a new timestamp.
 *
 *   X-Glasswatch-Timestamp: 1763678400            (Unix seconds)
 *   X-Glasswatch-Signature: v1=<hex HMAC-SHA256(secret, "1763678400.<raw body>")>
 */
export const SIGNATURE_HEADER = 'x-glasswatch-signature';
export const TIMESTAMP_HEADER = 'x-glasswatch-timestamp';

export function sign(secret: string, timestamp: number, body: string | Buffer): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

export function signedHeaders(secret: string, body: string | Buffer, now = Date.now()): Record<string, string> {
  const ts = Math.floor(now / 1000);
  return { [TIMESTAMP_HEADER]: String(ts), [SIGNATURE_HEADER]: sign(secret, ts, body) };
}

export type VerifyResult = { ok: true } | { ok: false; reason: 'missing_headers' | 'bad_timestamp' | 'stale' | 'bad_signature' };

/** Verifies in constant time; `windowSeconds` bounds clock skew and replays. */
export function verify(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer | string,
  windowSeconds = 300,
  now = Date.now(),
): VerifyResult {
  const tsHeader = headers[TIMESTAMP_HEADER];
  const sigHeader = headers[SIGNATURE_HEADER];
  if (typeof tsHeader !== 'string' || typeof sigHeader !== 'string') return { ok: false, reason: 'missing_headers' };
  if (!/^\d{1,12}$/.test(tsHeader)) return { ok: false, reason: 'bad_timestamp' };
  const ts = Number(tsHeader);
  if (Math.abs(now / 1000 - ts) > windowSeconds) return { ok: false, reason: 'stale' };
  const expected = Buffer.from(sign(secret, ts, body));
  const given = Buffer.from(sigHeader);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'bad_signature' };
  return { ok: true };
}

/** Constant-time comparison of a shared secret (Okta Event Hook authorization header, bearer tokens). */
export function secretEquals(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  if (a.length !== b.length) {
    // Spend the same time as a real comparison, so the length is all a timing probe learns.
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}
