/**
 * Normalization entry points. `normalizeBuffer` takes the bytes of a file or object (S3 delivery,
 * replay file, webhook body) and recognises the format by content; `normalizeBufferBounded` does the
 * same after inflating gzip off the event loop (what collectors and replay use for untrusted
 * bytes); `normalizeDocument` takes one already-parsed body (a collector that did its own
 * JSON.parse). None throws on bad input: every record comes back as exactly one `event`, `skipped`
 * or `dead` result.
 */
import {
  bomOf,
  DEFAULT_MAX_OBJECT_DECOMPRESSED_BYTES,
  gunzipSyncBounded,
  inflateBounded,
  isBlank,
  isGzip,
  jsonErrorOffset,
  looksLikeJsonLines,
  overBudget,
  STRUCTURE_SCAN_BYTES,
  structureProblem,
  textOf,
} from './decode.js';
import { createWalk, dead, routeValue, type Walk } from './detect.js';
import { jsonText } from './fields.js';
import type { NormalizeOptions, NormalizeResult, Origin } from './types.js';

export { type CloudTrailContext, normalizeCloudTrailRecord } from './cloudtrail/normalize.js';
export { reasonWithoutLocation, recordSource } from './detect.js';
export { type K8sContext, normalizeK8sEvent } from './k8s/normalize.js';
export { normalizeOktaEvent, type OktaContext } from './okta/normalize.js';
export { toIsoMillis } from './time.js';
export type { NormalizeOptions, NormalizeResult, Origin } from './types.js';

const NO_OPTIONS: NormalizeOptions = {};

/**
 * Normalize the bytes of one file or object. gzip is recognised by its magic bytes whatever the
 * name; the text is one JSON document (object or array, any envelope) or JSON lines. `file` is
 * only used for origins (and an org trail's `o-…` id in an S3 key).
 *
 * gzip is inflated synchronously here (bounded by `maxDecompressedBytes`, but holding the event
 * loop while it runs): code that receives untrusted gzip uses `normalizeBufferBounded`.
 */
export function normalizeBuffer(bytes: Buffer, file: string, options: NormalizeOptions = NO_OPTIONS): Generator<NormalizeResult> {
  const maxBytes = options.maxDecompressedBytes ?? DEFAULT_MAX_OBJECT_DECOMPRESSED_BYTES;
  if (!isGzip(bytes)) return normalizeDecoded(bytes, false, overBudget(bytes, maxBytes, file), file, options);
  const { data, problem } = gunzipSyncBounded(bytes, maxBytes, file);
  return normalizeDecoded(data, true, problem, file, options);
}

/**
 * `normalizeBuffer` for untrusted bytes: gzip is inflated by streaming, off the event loop, and
 * stops at `maxDecompressedBytes` (a dead letter naming `file`), so a bomb costs at most the budget.
 */
export async function normalizeBufferBounded(
  bytes: Buffer,
  file: string,
  options: NormalizeOptions = NO_OPTIONS,
): Promise<Generator<NormalizeResult>> {
  const maxBytes = options.maxDecompressedBytes ?? DEFAULT_MAX_OBJECT_DECOMPRESSED_BYTES;
  if (!isGzip(bytes)) return normalizeDecoded(bytes, false, overBudget(bytes, maxBytes, file), file, options);
  const { data, problem } = await inflateBounded(bytes, maxBytes, file);
  return normalizeDecoded(data, true, problem, file, options);
}

/** Normalizes inflated bytes; `problem` (truncated gzip, over budget) comes first as a dead letter. */
export function* normalizeDecoded(
  data: Buffer,
  gzip: boolean,
  problem: string | null,
  file: string,
  options: NormalizeOptions = NO_OPTIONS,
): Generator<NormalizeResult> {
  const out: NormalizeResult[] = [];
  const walk = createWalk(file, options, out);
  if (problem !== null) {
    // The bytes themselves are the evidence and stay where `file` points; the partial text (if any) follows.
    yield { kind: 'dead', source: walk.restrict, reason: problem, origin: { file, line: null, index: null }, text: '' };
    if (data.length === 0) return;
  }
  const bom = bomOf(data);
  const start = bom === 'utf16le' ? 2 : bom === 'utf8' ? 3 : 0;
  const maxNesting = parseNesting(walk);
  if (bom !== 'utf16le' && startsWithJsonLine(data, start, maxNesting)) {
    yield* normalizeLineBytes(walk, data, start, maxNesting);
    return;
  }
  if (data.length - start >= STRUCTURE_SCAN_BYTES) {
    const unsafe = structureProblem(data, start, data.length, maxNesting);
    if (unsafe !== null) {
      yield {
        kind: 'dead',
        source: walk.restrict,
        reason: unsafeReason(unsafe, gzip),
        origin: { file, line: null, index: null },
        text: '',
      };
      return;
    }
  }
  const decoded = textOf(data, null, gzip);
  if (decoded.problem !== null) {
    yield { kind: 'dead', source: walk.restrict, reason: decoded.problem, origin: { file, line: null, index: null }, text: '' };
    return;
  }
  const text = decoded.text;
  if (isBlank(text)) return;

  let doc: unknown;
  let parseError: Error | null = null;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    parseError = err as Error;
  }
  if (parseError === null) {
    walk.unitText = text;
    walk.unitBytes = data.length;
    routeValue(walk, doc, null, undefined, null);
    yield* out;
    return;
  }
  if (looksLikeJsonLines(text)) {
    yield* normalizeLines(walk, text);
    return;
  }
  const offset = jsonErrorOffset(text);
  const at =
    offset < 0 ? '' : ` at byte ${Buffer.byteLength(text.slice(0, offset)) + decoded.prefixBytes}${decoded.gzip ? ' (decompressed)' : ''}`;
  walk.unitText = text;
  walk.unitBytes = data.length;
  dead(walk, walk.restrict, `malformed JSON${at}: ${parseError.message}`, null, undefined, text);
  yield* out;
}

/**
 * Deepest nesting a whole line or document may have before JSON.parse: far above `maxDepth`, so a
 * deep record inside an object is parsed and dead-lettered alone, its neighbours kept.
 */
function parseNesting(walk: Walk): number {
  return Math.max(walk.maxDepth * 64, 4096);
}

function unsafeReason(problem: string, gzip: boolean): string {
  return `JSON not parsed: ${problem}${gzip ? ' (decompressed)' : ''}`;
}

function isSpaceByte(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

/** Next non-blank line from `from`: [start, end) without the newline, or null. */
function nextLine(data: Buffer, from: number): [number, number] | null {
  let start = from;
  while (start < data.length) {
    let end = data.indexOf(10, start);
    if (end === -1) end = data.length;
    for (let i = start; i < end; i++) if (!isSpaceByte(data[i] as number)) return [start, end];
    start = end + 1;
  }
  return null;
}

/**
 * JSON lines, recognised from the bytes: the first non-blank line is an object or array on its own
 * and another non-blank line follows. Such text can never parse as one document, and
 * `looksLikeJsonLines` would say yes to it, so this only skips decoding and parsing the whole
 * buffer as one string first. Anything else takes the document path.
 */
function startsWithJsonLine(data: Buffer, from: number, maxNesting: number): boolean {
  const first = nextLine(data, from);
  if (first === null || nextLine(data, first[1] + 1) === null) return false;
  let i = first[0];
  while (isSpaceByte(data[i] as number)) i++;
  if (data[i] !== 0x7b /* { */ && data[i] !== 0x5b /* [ */) return false;
  // A first line too hostile to parse is dead-lettered on its own; the lines after it still count.
  if (first[1] - first[0] >= STRUCTURE_SCAN_BYTES && structureProblem(data, first[0], first[1], maxNesting) !== null) return true;
  try {
    const value: unknown = JSON.parse(data.toString('utf8', first[0], first[1]));
    return typeof value === 'object' && value !== null;
  } catch {
    return false;
  }
}

/**
 * JSON lines decoded one line at a time from the bytes: each line is its own string, so one
 * non-ASCII character makes only its line a two-byte string (decoding the whole buffer would make
 * every line one, and every later JSON.parse slower).
 */
function* normalizeLineBytes(walk: Walk, data: Buffer, from: number, maxNesting: number): Generator<NormalizeResult> {
  let start = from;
  let lineNumber = 0;
  while (start < data.length) {
    let end = data.indexOf(10, start);
    if (end === -1) end = data.length;
    lineNumber++;
    const lineEnd = end > start && data[end - 1] === 13 ? end - 1 : end; // CRLF
    const lineStart = start;
    start = end + 1;
    let blank = true;
    for (let i = lineStart; i < lineEnd; i++) {
      if (!isSpaceByte(data[i] as number)) {
        blank = false;
        break;
      }
    }
    if (blank) continue;
    const line = data.toString('utf8', lineStart, lineEnd);
    walk.line = lineNumber;
    walk.unitText = line;
    walk.unitBytes = lineEnd - lineStart;
    const unsafe = walk.unitBytes >= STRUCTURE_SCAN_BYTES ? structureProblem(data, lineStart, lineEnd, maxNesting) : null;
    if (unsafe !== null) {
      dead(walk, walk.restrict, unsafeReason(unsafe, false), null, undefined, line);
      yield* walk.out;
      walk.out.length = 0;
      continue;
    }
    yield* normalizeLine(walk, line);
  }
}

function* normalizeLines(walk: Walk, text: string): Generator<NormalizeResult> {
  let start = 0;
  let lineNumber = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    lineNumber++;
    const lineEnd = end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end; // CRLF
    const line = text.slice(start, lineEnd);
    start = end + 1;
    if (isBlank(line)) continue;
    walk.line = lineNumber;
    walk.unitText = line;
    walk.unitBytes = line.length;
    yield* normalizeLine(walk, line);
  }
}

function* normalizeLine(walk: Walk, line: string): Generator<NormalizeResult> {
  const out = walk.out;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    dead(walk, walk.restrict, `malformed JSON: ${(err as Error).message}`, null, undefined, line);
    yield* out;
    out.length = 0;
    return;
  }
  routeValue(walk, value, null, undefined, null);
  yield* out;
  out.length = 0;
}

/**
 * Normalize one parsed body (webhook POST, API page, EventBridge event). `origin.file` names where
 * it came from; `origin.line`/`index` are kept on results for a record that is the body itself.
 */
export function normalizeDocument(doc: unknown, origin: Origin, options: NormalizeOptions = NO_OPTIONS): NormalizeResult[] {
  const walk = createWalk(origin.file, options);
  walk.line = origin.line;
  // Only serialized if the body itself turns out to be the dead record.
  walk.unitText = '';
  // The body's size is unknown (it was parsed elsewhere): every record is measured.
  walk.unitBytes = Number.POSITIVE_INFINITY;
  routeValue(walk, doc, origin.index, undefined, null);
  for (const result of walk.out) {
    if (result.kind === 'dead' && result.text === '' && result.origin.path === undefined) result.text = jsonText(doc);
  }
  return walk.out;
}
