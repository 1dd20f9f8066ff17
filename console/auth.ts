import { randomBytes, timingSafeEqual } from 'node:crypto';
import { type ConsoleToken, hashToken } from './config.js';

export interface Principal {
  /** The token's name: recorded as the actor of every triage action. */
  name: string;
  /** CSRF token of a browser login; null for Bearer calls (a browser never sends Authorization cross-site on its own). */
  csrf: string | null;
}

interface BrowserSession {
  name: string;
  csrf: string;
  expiresMs: number;
}

/** Browser logins kept at most; the oldest goes first (a login flood cannot grow memory). */
const MAX_SESSIONS = 10_000;

export const SESSION_COOKIE = 'gw_session';
export const LOGIN_COOKIE = 'gw_login';

/**
 * Who may see the console. Tokens are held only as SHA-256 hashes and compared in constant time
 * against every configured hash (no early exit, so timing tells nothing about which or how many
 * matched). A browser logs in once with a token and gets a random session id in an HttpOnly,
 * SameSite=Strict cookie; every state change from a browser carries that login's CSRF token.
 */
export class ConsoleAuth {
  readonly #tokens: ConsoleToken[];
  /** One-time tokens (`glasswatch demo --serve`): forgotten after their first login. */
  readonly #oneTime: ConsoleToken[] = [];
  readonly #sessions = new Map<string, BrowserSession>();
  readonly #sessionMs: number;

  constructor(tokens: ConsoleToken[], sessionSeconds: number) {
    this.#tokens = tokens;
    this.#sessionMs = sessionSeconds * 1000;
  }

  /** Adds a token valid for one browser login and returns it. */
  issueOneTimeToken(name = 'demo'): string {
    const token = randomBytes(24).toString('base64url');
    this.#oneTime.push({ name, hash: hashToken(token) });
    return token;
  }

  /** The name of the token, or null. */
  checkToken(token: string): string | null {
    const presented = hashToken(token);
    let found: string | null = null;
    for (const t of this.#tokens) if (timingSafeEqual(presented, t.hash) && found === null) found = t.name;
    return found;
  }

  #consumeOneTime(token: string): string | null {
    const presented = hashToken(token);
    const i = this.#oneTime.findIndex((t) => timingSafeEqual(presented, t.hash));
    if (i < 0) return null;
    const [t] = this.#oneTime.splice(i, 1);
    return t?.name ?? null;
  }

  /** Bearer token of an API call. */
  fromAuthorization(header: string | undefined): Principal | null {
    if (!header) return null;
    const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header);
    if (!m?.[1]) return null;
    const name = this.checkToken(m[1]);
    return name ? { name, csrf: null } : null;
  }

  /** Opens a browser session for a valid token; returns its cookie value, or null. */
  login(token: string): { sessionId: string; name: string } | null {
    const name = this.checkToken(token) ?? this.#consumeOneTime(token);
    if (!name) return null;
    const sessionId = randomBytes(32).toString('base64url');
    if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value as string);
    this.#sessions.set(sessionId, { name, csrf: randomBytes(24).toString('base64url'), expiresMs: Date.now() + this.#sessionMs });
    return { sessionId, name };
  }

  fromSession(sessionId: string | undefined): Principal | null {
    if (!sessionId) return null;
    const s = this.#sessions.get(sessionId);
    if (!s) return null;
    if (s.expiresMs < Date.now()) {
      this.#sessions.delete(sessionId);
      return null;
    }
    return { name: s.name, csrf: s.csrf };
  }

  logout(sessionId: string | undefined): void {
    if (sessionId) this.#sessions.delete(sessionId);
  }

  get sessionMs(): number {
    return this.#sessionMs;
  }
}

/** Constant-time equality of two strings (lengths may differ). */
export function sameSecret(a: string | undefined, b: string | undefined): boolean {
  if (typeof a !== 'string' || typeof b !== 'string' || a.length === 0) return false;
  const x = hashToken(a);
  const y = hashToken(b);
  return timingSafeEqual(x, y);
}
