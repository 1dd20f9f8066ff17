/**
 * A small structured logger: JSON lines to stderr, levels, and secret redaction.
 * Per-event logging is forbidden on hot paths; components log per batch.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** Keys whose values never reach a log line, whatever their nesting. */
const SECRET_KEY = /pass(word)?|secret|token|authorization|api[-_]?key|signature|cookie|credential/i;

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
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
    const record = { time: new Date().toISOString(), level: lvl, msg, ...bindings, ...(fields ? (redact(fields) as object) : {}) };
    write(terminalSafe(JSON.stringify(record, (_k, v) => (v instanceof Error ? { message: v.message, ...(v as object) } : v))));
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
