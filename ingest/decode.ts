/**
 * Bytes → text → JSON values. Content decides, not the file name: gzip by its magic bytes, BOMs
 * stripped, then either one JSON document or JSON lines. Nothing here throws on bad input; problems
 * come back as values for the caller to dead-letter (`gunzipBounded` alone rejects, with a coded error).
 *
 * Untrusted gzip is inflated by streaming (`inflateBounded`), never `gunzipSync`: zlib works off the
 * main thread in 64 KiB steps, so the event loop keeps turning, and it stops as soon as the output
 * passes its budget: a 611 KB bomb costs at most the budget, not the 600 MB it expands to.
 */
import { constants, createGunzip, gunzipSync } from 'node:zlib';
import { GlasswatchError } from '../core/errors.js';

/** Output budget for one S3 object or replayed file: far above CloudTrail's tens of MiB, far below V8's 512 MiB string limit. */
export const DEFAULT_MAX_OBJECT_DECOMPRESSED_BYTES = 256 * 1024 * 1024;
/** Output budget for one HTTP request body: receivers already cap compressed bodies at 10–16 MiB. */
export const DEFAULT_MAX_BODY_DECOMPRESSED_BYTES = 64 * 1024 * 1024;

export interface DecodedText {
  text: string;
  /** Set when the bytes could not be decoded completely (truncated or corrupt gzip, over the budget). */
  problem: string | null;
  /** Bytes before `text` starts (a BOM), so text positions can be reported as byte offsets. */
  prefixBytes: number;
  gzip: boolean;
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

export interface Inflated {
  /** What inflated before the end, the error or the budget stopped it. */
  data: Buffer;
  /** Why `data` is not the whole content; null when it is. */
  problem: string | null;
  /** The output passed `maxBytes` (`data` is then empty). */
  tooLarge: boolean;
}

function tooLargeProblem(what: string, maxBytes: number): string {
  return `${what} inflates beyond ${maxBytes} bytes (maxDecompressedBytes)`;
}

/**
 * Streaming gunzip that never rejects: a truncated upload keeps the lines that inflated (the caller
 * dead-letters the rest with `problem`); past `maxBytes` it stops at once and keeps nothing.
 */
export function inflateBounded(input: Buffer, maxBytes: number, what = 'gzip input'): Promise<Inflated> {
  return new Promise((resolve) => {
    const gunzip = createGunzip({ chunkSize: 64 * 1024 });
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (result: Inflated) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    gunzip.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > maxBytes) {
        chunks.length = 0;
        finish({ data: Buffer.alloc(0), problem: tooLargeProblem(what, maxBytes), tooLarge: true });
        gunzip.destroy();
        return;
      }
      chunks.push(chunk);
    });
    gunzip.on('error', (err) => {
      const data = Buffer.concat(chunks, size);
      const decoded = data.length > 0 ? `${data.length} bytes decoded before the end` : 'nothing decoded';
      finish({ data, problem: `gzip: ${err.message} after ${input.length} compressed bytes (${decoded})`, tooLarge: false });
    });
    gunzip.on('end', () => finish({ data: Buffer.concat(chunks, size), problem: null, tooLarge: false }));
    gunzip.end(input);
  });
}

/**
 * Inflates untrusted gzip within `maxBytes` of output, without blocking the event loop. Rejects with
 * `INPUT_TOO_LARGE` past the budget and `INPUT_CORRUPT` on a corrupt or truncated stream; neither is
 * retriable (the same bytes fail the same way), so callers dead-letter the unit and move on.
 */
export async function gunzipBounded(input: Buffer, options: { maxBytes: number; what: string }): Promise<Buffer> {
  const { maxBytes, what } = options;
  const result = await inflateBounded(input, maxBytes, what);
  if (result.tooLarge) {
    throw new GlasswatchError('INPUT_TOO_LARGE', tooLargeProblem(what, maxBytes), {
      stage: 'receiving',
      retriable: false,
      context: { what, maxBytes },
    });
  }
  if (result.problem !== null) {
    throw new GlasswatchError('INPUT_CORRUPT', `${what}: ${result.problem}`, {
      stage: 'receiving',
      retriable: false,
      context: { what, compressedBytes: input.length },
    });
  }
  return result.data;
}

/**
 * Synchronous fallback for callers that still hand gzip to `normalizeBuffer` directly: bounded in
 * memory by `maxOutputLength`, but it holds the event loop while it inflates. Collectors and replay
 * inflate with `inflateBounded` first (`normalizeBufferBounded`).
 */
export function gunzipSyncBounded(bytes: Buffer, maxBytes: number, what = 'gzip input'): Omit<Inflated, 'tooLarge'> {
  try {
    return { data: gunzipSync(bytes, { maxOutputLength: maxBytes }), problem: null };
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      return { data: Buffer.alloc(0), problem: tooLargeProblem(what, maxBytes) };
    }
    const message = (err as Error).message;
    try {
      // A truncated upload still holds whole JSON lines: keep what inflates, report the rest.
      const data = gunzipSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: maxBytes });
      return { data, problem: `gzip: ${message} after ${bytes.length} compressed bytes (${data.length} bytes decoded before the end)` };
    } catch {
      return { data: Buffer.alloc(0), problem: `gzip: ${message} (${bytes.length} compressed bytes, nothing decoded)` };
    }
  }
}

/** Input that is not gzip is held to the same budget: it is what gets decoded and parsed. */
export function overBudget(data: Buffer, maxBytes: number, what: string): string | null {
  return data.length > maxBytes ? `${what} is ${data.length} bytes, beyond ${maxBytes} (maxDecompressedBytes)` : null;
}

/** Byte-order mark: UTF-16LE text is decoded whole; a UTF-8 BOM is skipped. */
export function bomOf(data: Buffer): 'utf16le' | 'utf8' | null {
  if (data.length >= 2 && data[0] === 0xff && data[1] === 0xfe) return 'utf16le';
  if (data.length >= 3 && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) return 'utf8';
  return null;
}

/** Inflated bytes → text. Never throws: bytes beyond V8's string limit become a problem. */
export function textOf(data: Buffer, problem: string | null, gzip: boolean): DecodedText {
  const bom = bomOf(data);
  const prefixBytes = bom === 'utf16le' ? 2 : bom === 'utf8' ? 3 : 0;
  try {
    return { text: data.toString(bom === 'utf16le' ? 'utf16le' : 'utf8', prefixBytes), problem, prefixBytes, gzip };
  } catch (err) {
    const why = `cannot decode ${data.length} bytes as text (${(err as Error).message})`;
    return { text: '', problem: problem === null ? why : `${problem}; ${why}`, prefixBytes, gzip };
  }
}

export function decodeBytes(bytes: Buffer, maxDecompressedBytes = DEFAULT_MAX_OBJECT_DECOMPRESSED_BYTES, what = 'input'): DecodedText {
  const gzip = isGzip(bytes);
  if (gzip) {
    const { data, problem } = gunzipSyncBounded(bytes, maxDecompressedBytes, what);
    return textOf(data, problem, true);
  }
  const problem = overBudget(bytes, maxDecompressedBytes, what);
  return problem === null ? textOf(bytes, null, false) : { text: '', problem, prefixBytes: 0, gzip };
}

/** Units at least this large are scanned before JSON.parse (below it, the worst parse is ~100 MB for ~0.5 s). */
export const STRUCTURE_SCAN_BYTES = 1024 * 1024;

/**
 * Guards JSON.parse against amplification: V8 parses 20 MB of `[` into 1.4 GB over 8 s, and a
 * budget's worth of `[],` into more objects than the heap holds. One string-aware pass over the
 * bytes rejects nesting deeper than `maxNesting` and more than one object or array per 8 bytes
 * (audit records have about one per 60). Returns the problem, or null when the bytes are safe to parse.
 */
export function structureProblem(data: Buffer, start: number, end: number, maxNesting: number): string | null {
  const maxContainers = Math.floor((end - start) / 8) + 65_536;
  let depth = 0;
  let containers = 0;
  let inString = false;
  for (let i = start; i < end; i++) {
    const c = data[i] as number;
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxNesting) return `nested deeper than ${maxNesting} levels at byte ${i}`;
      if (++containers > maxContainers) return `more than ${maxContainers} objects and arrays in ${end - start} bytes`;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return null;
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
