/**
 * Bytes → text → JSON values. Content decides, not the file name: gzip by its magic bytes, BOMs
 * stripped, then either one JSON document or JSON lines. Nothing here throws on bad input; problems
 * come back as values for the caller to dead-letter.
 */
import { constants, gunzipSync } from 'node:zlib';

export interface DecodedText {
  text: string;
  /** Set when the bytes could not be decoded completely (truncated or corrupt gzip). */
  problem: string | null;
  /** Bytes before `text` starts (a BOM), so text positions can be reported as byte offsets. */
  prefixBytes: number;
  gzip: boolean;
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function gunzip(bytes: Buffer): { data: Buffer; problem: string | null } {
  try {
    return { data: gunzipSync(bytes), problem: null };
  } catch (err) {
    const message = (err as Error).message;
    try {
      // A truncated upload still holds whole JSON lines: keep what inflates, report the rest.
      const data = gunzipSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH });
      return { data, problem: `gzip: ${message} after ${bytes.length} compressed bytes (${data.length} bytes decoded before the end)` };
    } catch {
      return { data: Buffer.alloc(0), problem: `gzip: ${message} (${bytes.length} compressed bytes, nothing decoded)` };
    }
  }
}

export function decodeBytes(bytes: Buffer): DecodedText {
  let data = bytes;
  let problem: string | null = null;
  const gzip = isGzip(bytes);
  if (gzip) ({ data, problem } = gunzip(bytes));
  if (data.length >= 2 && data[0] === 0xff && data[1] === 0xfe) {
    return { text: data.toString('utf16le', 2), problem, prefixBytes: 2, gzip };
  }
  if (data.length >= 3 && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) {
    return { text: data.toString('utf8', 3), problem, prefixBytes: 3, gzip };
  }
  return { text: data.toString('utf8'), problem, prefixBytes: 0, gzip };
}

function isSpace(code: number): boolean {
  return code === 32 || code === 10 || code === 13 || code === 9;
}

export function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (!isSpace(text.charCodeAt(i))) return false;
  return true;
}

/**
 * JSON lines vs one document, decided after the whole text failed to parse as one document: JSON
 * lines when there are at least two non-blank lines and one of the first five parses on its own as
 * an object or array. A pretty-printed document never has such a line (its first is `{` or `[`), so
 * a truncated pretty document stays one dead letter instead of hundreds.
 */
export function looksLikeJsonLines(text: string): boolean {
  let start = 0;
  let nonBlank = 0;
  let standalone = false;
  while (start < text.length && nonBlank < 5) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (isBlank(line)) continue;
    nonBlank++;
    if (!standalone) {
      try {
        const value: unknown = JSON.parse(line);
        standalone = typeof value === 'object' && value !== null;
      } catch {
        // not a standalone value; keep probing
      }
    }
  }
  return standalone && nonBlank >= 2;
}

/**
 * Offset of the first syntax error in `text` (text.length when it ends early), found by a small
 * validating scan: V8's messages only sometimes carry a position. Runs on the error path only.
 */
export function jsonErrorOffset(text: string): number {
  const n = text.length;
  const stack: number[] = []; // 1 = object, 0 = array
  let i = skipSpace(text, 0);
  for (;;) {
    // Expect a value at i.
    if (i >= n) return n;
    const c = text.charCodeAt(i);
    if (c === 123 /* { */ || c === 91 /* [ */) {
      i = skipSpace(text, i + 1);
      if (i < n && text.charCodeAt(i) === (c === 123 ? 125 : 93)) {
        i++;
      } else {
        stack.push(c === 123 ? 1 : 0);
        if (c === 123) {
          i = objectKey(text, i);
          if (i < 0) return -i - 1;
        }
        continue;
      }
    } else {
      i = scalar(text, i);
      if (i < 0) return -i - 1;
    }
    // After a value: close containers or expect a separator.
    for (;;) {
      i = skipSpace(text, i);
      const top = stack[stack.length - 1];
      if (top === undefined) return i < n ? i : -1;
      if (i >= n) return n;
      const d = text.charCodeAt(i);
      if (d === 44 /* , */) {
        i = skipSpace(text, i + 1);
        if (top === 1) {
          i = objectKey(text, i);
          if (i < 0) return -i - 1;
        }
        break;
      }
      if ((top === 1 && d === 125) || (top === 0 && d === 93)) {
        stack.pop();
        i++;
        continue;
      }
      return i;
    }
  }
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** Scans `"key" :` and the space after it; returns the next index, or -(error offset)-1. */
function objectKey(text: string, i: number): number {
  if (text.charCodeAt(i) !== 34) return -i - 1;
  const end = stringEnd(text, i);
  if (end < 0) return end;
  const colon = skipSpace(text, end);
  if (text.charCodeAt(colon) !== 58 /* : */) return -colon - 1;
  return skipSpace(text, colon + 1);
}

function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 34) return j + 1;
    if (c === 92 /* \ */) j++;
    else if (c < 32) return -j - 1;
  }
  return -text.length - 1;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

function scalar(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === 34) return stringEnd(text, i);
  for (const literal of ['true', 'false', 'null']) {
    if (text.startsWith(literal, i)) return i + literal.length;
  }
  NUMBER.lastIndex = i;
  if (NUMBER.test(text)) return NUMBER.lastIndex;
  return -i - 1;
}
