/**
 * A small structured logger: JSON lines to stderr, levels, and secret redaction.
 * Per-event logging is forbidden on hot paths; components log per batch.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** Keys whose values never reach a log line, whatever their nesting. */
const SECRET_KEY = /pass(word)?|secret|token|authorization|api[-_]?key|signature|cookie|credential/i;

/**
 * Secret values known to this process (config fields marked secret, URL passwords): registered
 * by the config reader, replaced wherever they appear in a log line or an error message.
 * Shorter values are left to the key- and pattern-based rules: replacing a 3-character string
 * everywhere would shred every line.
 */
const MIN_KNOWN_SECRET = 4;
const knownSecrets = new Set<string>();
let knownPattern: RegExp | null = null;

export function registerSecret(value: unknown): void {
  const text = typeof value === 'number' || typeof value === 'bigint' ? String(value) : value;
  if (typeof text !== 'string' || text.length < MIN_KNOWN_SECRET) return;
  for (const form of [text, encodeURIComponent(text), JSON.stringify(text).slice(1, -1)]) knownSecrets.add(form);
  knownPattern = null;
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * `scheme://user:password@host`: the whole userinfo goes (a username can be half the credential).
 * No spaces, so a URL followed by a mail address in prose is left alone; a malformed config URL
 * with spaces in its password is caught by the registered secrets instead.
 */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]{0,30}:\/\/)[^/?#@\s"'<>,;]{1,256}@/gi;
/** Credentials in an Authorization header value. */
const AUTH_SCHEME = /\b(Bearer|SSWS)\s+[A-Za-z0-9._~+/-]{8,}=*|\b(Basic)\s+(?=[A-Za-z]*[0-9+/=])[A-Za-z0-9+/]{8,}={0,2}/gi;
/** `password=…`, `token: …`, `"secret":"…"` in free text; not `store.password:` (a config path in an error message). */
const KEY_VALUE =
  /(?<![\w.-])(pass(?:word|wd|phrase)?|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|client[-_]?secret|authorization)(\s{0,4}["']?\s{0,4}[:=]\s{0,4}["']?)(?!\[redacted\])[^\s"',;&}]+/gi;

/** Free text with every secret replaced by `[redacted]`: known secret values, URL userinfo, auth headers, key=value pairs. */
export function redactText(text: string): string {
  let out = text;
  if (knownSecrets.size > 0) {
    knownPattern ??= new RegExp(
      [...knownSecrets]
        .sort((a, b) => b.length - a.length)
        .map(escapeRegex)
        .join('|'),
      'g',
    );
    out = out.replace(knownPattern, '[redacted]');
  }
  return out
    .replace(URL_USERINFO, '$1[redacted]@')
    .replace(AUTH_SCHEME, (_m, a?: string, b?: string) => `${a ?? b} [redacted]`)
    .replace(KEY_VALUE, '$1$2[redacted]');
}

export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  // Deeper than anything a component means to log: not walked, so not written unredacted either.
  if (depth > 6) return '[nested too deep]';
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  // An Error's message is not an own enumerable property: keep it (redacted) instead of logging `{}`.
  const entries = value instanceof Error ? [['message', value.message] as const, ...Object.entries(value)] : Object.entries(value);
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null ? '[redacted]' : redact(v, depth + 1);
  }
  return out;
}

/**
 * What a terminal acts on instead of printing: C0 controls but LF and tab (ESC starts CSI/OSC
 * sequences: colours, screen clearing, OSC 8 links, window titles; a lone CR and BS overwrite),
 * DEL, the 8-bit C1 controls (U+009B is CSI on its own), and the bidi marks, embeddings,
 * overrides and isolates that reorder what the operator reads ("Trojan Source").
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const TERMINAL_CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|\r(?!\n)/gu;

/**
 * Text from events made inert for a terminal: each control becomes the visible text `\uNNNN`.
 * That is also a JSON escape, and JSON.stringify already escapes every C0 control, so on a
 * JSON line this changes the characters, never the value: data output stays exact JSON.
 */
export function terminalSafe(text: string): string {
  return text.replace(TERMINAL_CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(bindings: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: Level;
  bindings?: Record<string, unknown>;
  write?: (line: string) => void;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? ((process.env.GLASSWATCH_LOG_LEVEL as Level | undefined) || 'info');
  const threshold = ORDER[level] ?? ORDER.info;
  const bindings = options.bindings ?? {};
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < threshold) return;
    const record = redact({ time: new Date().toISOString(), level: lvl, msg, ...bindings, ...fields });
    write(terminalSafe(JSON.stringify(record)));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (b) => createLogger({ level, bindings: { ...bindings, ...b }, write }),
  };
}

export const silentLogger: Logger = createLogger({ level: 'silent' });
