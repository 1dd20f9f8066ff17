import { createHmac, timingSafeEqual } from 'node:crypto';

/** What a confirmation link is bound to: one question, one session, one identity, until `expMs`. */
export interface ConfirmClaims {
  /** Confirmation id (the question). */
  c: string;
  /** Session id. */
  s: string;
  /** Identity id. */
  i: string;
  /** Expiry, epoch ms (the question's timeout). */
  e: number;
  /** Random nonce, kept with the question; recorded as used by the answer. */
  n: string;
}

export type TokenCheck =
  | { ok: true; claims: ConfirmClaims }
  | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired' | 'other_question' };

const VERSION = 'gwc1';

function mac(secret: string, domain: string, payload: string): Buffer {
  // Domain-separated: a link token can never stand in for a form token, nor the reverse.
  return createHmac('sha256', secret).update(`${domain}\n${payload}`).digest();
}

/** `gwc1.<claims>.<HMAC-SHA256>`, base64url: the link's only credential. */
export function signConfirmToken(secret: string, claims: ConfirmClaims): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${VERSION}.${payload}.${mac(secret, 'glasswatch-confirm-link', payload).toString('base64url')}`;
}

/**
 * Checks the signature (constant time) before reading anything, then the expiry and that the token
 * names the question it is presented for. The nonce's single use is the store's to check.
 */
export function checkConfirmToken(secret: string, token: unknown, confirmationId: string, nowMs = Date.now()): TokenCheck {
  if (typeof token !== 'string' || token.length > 1024) return { ok: false, reason: 'malformed' };
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== VERSION || !parts[1] || !parts[2]) return { ok: false, reason: 'malformed' };
  const expected = mac(secret, 'glasswatch-confirm-link', parts[1]);
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };
  let claims: ConfirmClaims;
  try {
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as ConfirmClaims;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (typeof claims?.c !== 'string' || typeof claims.s !== 'string' || typeof claims.e !== 'number' || typeof claims.n !== 'string')
    return { ok: false, reason: 'malformed' };
  if (claims.c !== confirmationId) return { ok: false, reason: 'other_question' };
  if (nowMs >= claims.e) return { ok: false, reason: 'expired' };
  return { ok: true, claims };
}

/** The answer form's CSRF token: derived from the link's nonce, so only a page rendered for this link has it. */
export function confirmFormToken(secret: string, claims: ConfirmClaims): string {
  return mac(secret, 'glasswatch-confirm-form', `${claims.c}\n${claims.n}`).toString('base64url');
}

/** Constant-time equality of two strings of any length. */
export function sameText(a: unknown, b: string): boolean {
  if (typeof a !== 'string' || a.length === 0) return false;
  const x = createHmac('sha256', 'compare').update(a).digest();
  const y = createHmac('sha256', 'compare').update(b).digest();
  return timingSafeEqual(x, y);
}
