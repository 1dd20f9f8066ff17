/**
 * Sigma strings as lists of parts (literal text, `*`/`?` wildcards, `%placeholders%`),
 * the model pySigma uses. Modifiers work on parts, never on the raw text, so that an
 * added wildcard can never be re-read as escaped (`foobar\\` + contains must become
 * `*`, `foobar\`, `*`).
 */
import type { StringPart } from './ir.js';

const STAR: StringPart = { wildcard: '*' };

/**
 * Parses a rule value exactly as the spec's escaping table says: `\*`, `\?` and `\\`
 * are escapes, a backslash before anything else (or at the end) is literal. With
 * `placeholders` set (the chain has `expand`), `%name%` is a placeholder and `\%` a
 * literal percent.
 */
export function parseSigmaString(text: string, placeholders = false): StringPart[] {
  const parts: StringPart[] = [];
  let literal = '';
  const flush = (): void => {
    if (literal) parts.push(literal);
    literal = '';
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === '\\') {
      const next = text[i + 1];
      if (next === '*' || next === '?' || next === '\\' || (placeholders && next === '%')) {
        literal += next;
        i++;
      } else {
        literal += '\\';
      }
    } else if (ch === '*' || ch === '?') {
      flush();
      parts.push({ wildcard: ch });
    } else if (ch === '%' && placeholders) {
      const end = text.indexOf('%', i + 1);
      const name = end > i + 1 ? text.slice(i + 1, end) : '';
      if (name && /^[A-Za-z0-9_.-]+$/.test(name)) {
        flush();
        parts.push({ placeholder: name });
        i = end;
      } else {
        literal += ch;
      }
    } else {
      literal += ch;
    }
  }
  flush();
  return parts;
}

export const isWildcard = (p: StringPart, w?: '*' | '?'): p is { wildcard: '*' | '?' } =>
  typeof p === 'object' && 'wildcard' in p && (w === undefined || p.wildcard === w);
export const isPlaceholder = (p: StringPart): p is { placeholder: string } => typeof p === 'object' && 'placeholder' in p;

export function hasWildcards(parts: StringPart[]): boolean {
  return parts.some((p) => isWildcard(p));
}

export function plainText(parts: StringPart[]): string | null {
  let text = '';
  for (const p of parts) {
    if (typeof p !== 'string') return null;
    text += p;
  }
  return text;
}

/** contains/startswith/endswith: add a `*` at either end unless one is already there. */
export function addWildcards(parts: StringPart[], start: boolean, end: boolean): StringPart[] {
  const out = [...parts];
  const first = out[0];
  const last = out[out.length - 1];
  if (start && !(first && isWildcard(first, '*'))) out.unshift(STAR);
  if (end && !(last && isWildcard(last, '*'))) out.push(STAR);
  return out;
}

/** Maps every literal piece, keeping wildcards and placeholders where they are. */
export function mapLiterals(parts: StringPart[], fn: (text: string) => string): StringPart[] {
  return parts.map((p) => (typeof p === 'string' ? fn(p) : p));
}

/** Two parts lists concatenated with adjacent literals merged (keeps matchers simple). */
export function normaliseParts(parts: StringPart[]): StringPart[] {
  const out: StringPart[] = [];
  for (const p of parts) {
    const prev = out[out.length - 1];
    if (typeof p === 'string') {
      if (!p) continue;
      if (typeof prev === 'string') out[out.length - 1] = prev + p;
      else out.push(p);
    } else if (isWildcard(p, '*') && prev && isWildcard(prev, '*')) {
    } else out.push(p);
  }
  return out;
}

/** The text form of parts with Sigma escaping, for messages and round-trips. */
export function formatSigmaString(parts: StringPart[]): string {
  return parts
    .map((p) => {
      if (typeof p === 'string') return p.replace(/[\\*?]/g, (c) => `\\${c}`);
      if (isWildcard(p)) return p.wildcard;
      return `%${p.placeholder}%`;
    })
    .join('');
}

export function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

export type Utf16Variant = 'utf16le' | 'utf16be' | 'utf16';

/**
 * `wide`/`utf16*`: each character becomes its two UTF-16 bytes, represented as a
 * "byte string" (one JS char per byte) that `base64` then encodes as latin1. Wildcards
 * stay wildcards. Only ASCII is accepted, as in pySigma.
 */
export function toUtf16(parts: StringPart[], variant: Utf16Variant): StringPart[] | string {
  for (const p of parts) if (typeof p === 'string' && !isAscii(p)) return 'only ASCII text can be UTF-16 encoded';
  const enc = (s: string): string => [...s].map((c) => (variant === 'utf16be' ? `\0${c}` : `${c}\0`)).join('');
  const out = mapLiterals(parts, enc);
  if (variant === 'utf16') out.unshift('\xff\xfe');
  return normaliseParts(out);
}

export function base64(text: string, bytes: boolean): string {
  return Buffer.from(text, bytes ? 'latin1' : 'utf8').toString('base64');
}

/**
 * The three Base64 renderings of `text` embedded at an unknown offset in a longer
 * payload: for shift i the value is prefixed with i bytes, encoded, and the characters
 * influenced by the unknown neighbours are cut off (pySigma's offsets).
 */
export function base64Offsets(text: string, bytes: boolean): string[] {
  const data = Buffer.from(text, bytes ? 'latin1' : 'utf8');
  const startCut = [0, 2, 3];
  const endCut = [0, 3, 2];
  const out: string[] = [];
  for (let i = 0; i < 3; i++) {
    const shifted = Buffer.concat([Buffer.alloc(i, 0x20), data]);
    const encoded = shifted.toString('base64');
    const cut = endCut[(data.length + i) % 3] as number;
    out.push(encoded.slice(startCut[i] as number, encoded.length - cut));
  }
  return out;
}

export const WINDASH_CHARS = ['-', '/', '\u2013', '\u2014', '\u2015'];

/**
 * windash: every `-` or `/` at the start of a word (pySigma's `\B[-/]\b`) takes each of
 * the five dash characters; the inner dash of `param-1` is kept. Returns all variants.
 */
export function windashVariants(parts: StringPart[], limit = 3125): StringPart[][] | string {
  const positions: [number, number][] = [];
  parts.forEach((p, pi) => {
    if (typeof p !== 'string') return;
    const re = /\B[-/]\b/g;
    for (let m = re.exec(p); m; m = re.exec(p)) positions.push([pi, m.index]);
  });
  const total = WINDASH_CHARS.length ** positions.length;
  if (total > limit) return `windash would create ${total} variants (limit ${limit})`;
  const variants: StringPart[][] = [];
  for (let n = 0; n < total; n++) {
    const copy = [...parts];
    let k = n;
    // Walk the positions backwards so that indexes inside one part stay valid.
    for (let j = positions.length - 1; j >= 0; j--) {
      const [pi, ci] = positions[j] as [number, number];
      const dash = WINDASH_CHARS[k % WINDASH_CHARS.length] as string;
      k = Math.floor(k / WINDASH_CHARS.length);
      const text = copy[pi] as string;
      copy[pi] = text.slice(0, ci) + dash + text.slice(ci + 1);
    }
    variants.push(copy);
  }
  return variants;
}
