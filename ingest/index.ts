/**
 * Normalization entry points. `normalizeBuffer` takes the bytes of a file or object (S3 delivery,
 * replay file, webhook body) and recognises the format by content; `normalizeDocument` takes one
 * already-parsed body (a collector that did its own JSON.parse). Neither throws on bad input: every
 * record comes back as exactly one `event`, `skipped` or `dead` result.
 */
import { decodeBytes, isBlank, jsonErrorOffset, looksLikeJsonLines } from './decode.js';
import { createWalk, dead, routeValue, type Walk } from './detect.js';
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
 */
export function* normalizeBuffer(bytes: Buffer, file: string, options: NormalizeOptions = NO_OPTIONS): Generator<NormalizeResult> {
  const out: NormalizeResult[] = [];
  const walk = createWalk(file, options, out);
  const decoded = decodeBytes(bytes);
  if (decoded.problem !== null) {
    // The bytes themselves are the evidence and stay where `file` points; the partial text (if any) follows.
    yield { kind: 'dead', source: walk.restrict, reason: decoded.problem, origin: { file, line: null, index: null }, text: '' };
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
  dead(walk, walk.restrict, `malformed JSON${at}: ${parseError.message}`, null, undefined, text);
  yield* out;
}

function* normalizeLines(walk: Walk, text: string): Generator<NormalizeResult> {
  const out = walk.out;
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
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      dead(walk, walk.restrict, `malformed JSON: ${(err as Error).message}`, null, undefined, line);
      yield* out;
      out.length = 0;
      continue;
    }
    routeValue(walk, value, null, undefined, null);
    yield* out;
    out.length = 0;
  }
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
  routeValue(walk, doc, origin.index, undefined, null);
  for (const result of walk.out) {
    if (result.kind === 'dead' && result.text === '' && result.origin.path === undefined) result.text = JSON.stringify(doc) ?? '';
  }
  return walk.out;
}
