import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Fields, type GlasswatchConfig } from '../core/config.js';

/** A console login: who it is (recorded with every triage action) and the SHA-256 of its token. */
export interface ConsoleToken {
  name: string;
  hash: Buffer;
}

export interface ConsoleOptions {
  /** @default "127.0.0.1": the console shows who holds break-glass access; it is not for the open network. */
  host: string;
  /** @default 8480 (0 = any free port) */
  port: number;
  tokens: ConsoleToken[];
  tls: { cert: Buffer; key: Buffer } | null;
  /** Seconds a browser login lasts. @default 43200 (12 h) */
  sessionSeconds: number;
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Tokens shorter than this are refused: a console token guards who may silence an alert. */
const MIN_TOKEN_LENGTH = 16;

/**
 * The `console:` section. Tokens come from the environment (`token: ${CONSOLE_TOKEN_ALICE}`; config
 * loading expands `${NAME}` and refuses an unset variable) and are kept only as hashes.
 *
 *   console:
 *     host: 127.0.0.1
 *     port: 8480
 *     tokens:
 *       - { name: soc-alice, token: ${CONSOLE_TOKEN_ALICE} }
 *     tls: { certFile: console.crt, keyFile: console.key }
 */
export function parseConsoleSection(config: GlasswatchConfig, { requireTokens = true }: { requireTokens?: boolean } = {}): ConsoleOptions {
  const c = Fields.of(config.file, 'console', config.sections.console).only(['host', 'port', 'tokens', 'tls', 'sessionSeconds']);
  const tokens: ConsoleToken[] = [];
  const list: unknown = c.value.tokens ?? [];
  if (!Array.isArray(list)) c.fail('tokens', 'must be a list of { name, token }');
  const names = new Set<string>();
  (list as unknown[]).forEach((entry, i) => {
    const t = Fields.of(config.file, `console.tokens[${i}]`, entry).only(['name', 'token']);
    const name = t.string('name');
    const token = t.string('token');
    if (!/^[A-Za-z0-9@._-]{1,64}$/.test(name)) t.fail('name', 'must be 1-64 letters, digits or @._-');
    if (names.has(name)) t.fail('name', `"${name}" is given twice`);
    if (token.length < MIN_TOKEN_LENGTH) t.fail('token', `must be at least ${MIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 24)`);
    names.add(name);
    tokens.push({ name, hash: hashToken(token) });
  });
  if (tokens.length === 0 && requireTokens)
    c.fail(
      'tokens',
      'is required: every page and API call needs a token (a list of { name, token }, each token read from the environment)',
    );
  let tls: ConsoleOptions['tls'] = null;
  if (c.value.tls !== undefined) {
    const t = c.section('tls').only(['certFile', 'keyFile']);
    const read = (key: string) => {
      const path = t.string(key);
      try {
        return readFileSync(path);
      } catch (err) {
        return t.fail(key, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    tls = { cert: read('certFile'), key: read('keyFile') };
  }
  return {
    host: c.string('host', '127.0.0.1'),
    port: c.number('port', 8480, { min: 0, max: 65_535, integer: true }),
    tokens,
    tls,
    sessionSeconds: c.number('sessionSeconds', 43_200, { min: 60, max: 7 * 86_400, integer: true }),
  };
}

/** True when the config asks for the console (a `console:` section). */
export function consoleConfigured(config: GlasswatchConfig): boolean {
  return config.sections.console !== undefined;
}
