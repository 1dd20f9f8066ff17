/**
 * Sigma `re` values → patterns for ClickHouse `match()` (RE2, UTF-8, unanchored).
 *
 * The evaluator parses the RE2-syntax subset of rules/engine/regex/parse.ts. RE2 accepts
 * almost all of it as written; this pass rewrites the few spellings it does not
 * (`\uXXXX`, `\0`, `[\b]`, identity escapes of non-punctuation, `(?<n>`/`(?'n'`, a `{`
 * that is not a repetition) and wraps the pattern in a flag group, because ClickHouse
 * compiles with dot-matches-newline ON: without an explicit `-s`, `.` would cross lines
 * where the evaluator's does not.
 *
 * Documented residual differences (see rules/sql/index.ts): `(?i)` uses RE2's Unicode case
 * folding (e.g. `k` also matches U+212A KELVIN SIGN) where the evaluator folds one UTF-16
 * unit with toLowerCase/toUpperCase; `.` and negated classes consume one code point in RE2
 * but one UTF-16 unit in the evaluator (characters outside the BMP only).
 */
import type { RegexFlags } from '../engine/ir.js';

const PUNCT = /^[!-/:-@[-`{-~]$/;
const hex = (code: number): string => `\\x{${code.toString(16)}}`;

/** Rewrites one escape starting at `pattern[i] === '\\'`; returns [text, length consumed]. */
function rewriteEscape(pattern: string, i: number, inClass: boolean): [string, number] {
  const c = pattern[i + 1];
  if (c === undefined) return ['\\\\', 1]; // the evaluator rejects this; keep RE2 from reading past the end
  if (c === 'u') {
    const m = /^[0-9A-Fa-f]{4}/.exec(pattern.slice(i + 2));
    if (m) return [hex(parseInt(m[0], 16)), 6];
  }
  if (c === 'x') {
    const m = /^(?:\{[0-9A-Fa-f]{1,4}\}|[0-9A-Fa-f]{2})/.exec(pattern.slice(i + 2));
    if (m) return [`\\x${m[0]}`, 2 + m[0].length];
  }
  if (c === '0') return [hex(0), 2];
  if (c === 'b' && inClass) return [hex(8), 2];
  if (/[A-Za-z]/.test(c)) return [`\\${c}`, 2]; // \d \w \s \b \A \z \n \t …: same meaning in RE2
  if (PUNCT.test(c)) return [`\\${c}`, 2];
  const code = pattern.codePointAt(i + 1) as number;
  return [hex(code), code > 0xffff ? 3 : 2];
}

/** The pattern body in RE2 spelling (flags not applied). */
export function toRe2(pattern: string): string {
  let out = '';
  let i = 0;
  let inClass = false;
  let classStart = -1;
  while (i < pattern.length) {
    const ch = pattern[i] as string;
    if (ch === '\\') {
      const [text, len] = rewriteEscape(pattern, i, inClass);
      out += text;
      i += len;
      continue;
    }
    if (inClass) {
      const posix = /^\[:\^?[a-z]+:\]/.exec(pattern.slice(i));
      if (posix) {
        out += posix[0];
        i += posix[0].length;
        continue;
      }
      // `]` right after `[` or `[^` is a literal member, as in the evaluator.
      if (ch === ']' && i > classStart) inClass = false;
      out += ch;
      i++;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      out += ch;
      i++;
      if (pattern[i] === '^') {
        out += '^';
        i++;
      }
      classStart = i; // position of the first member
      if (pattern[i] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (ch === '{') {
      const m = /^\{\d+(,\d*)?\}/.exec(pattern.slice(i));
      if (m) {
        out += m[0];
        i += m[0].length;
      } else {
        out += '\\{';
        i++;
      }
      continue;
    }
    if (ch === '}') {
      out += '\\}';
      i++;
      continue;
    }
    if (ch === '(' && pattern[i + 1] === '?') {
      const named = /^\(\?(?:P?<([A-Za-z_][A-Za-z0-9_]*)>|'([A-Za-z_][A-Za-z0-9_]*)')/.exec(pattern.slice(i));
      if (named) {
        out += `(?P<${named[1] ?? named[2]}>`;
        i += named[0].length;
        continue;
      }
    }
    out += ch;
    i++;
  }
  return out;
}

/** Full pattern for `match()`: flags always stated, so ClickHouse's defaults never leak in. */
export function re2Pattern(pattern: string, flags: RegexFlags): string {
  const on = `${flags.i ? 'i' : ''}${flags.m ? 'm' : ''}${flags.s ? 's' : ''}`;
  const off = `${flags.i ? '' : 'i'}${flags.m ? '' : 'm'}${flags.s ? '' : 's'}`;
  return `(?${on}${off ? `-${off}` : ''}:${toRe2(pattern)})`;
}
