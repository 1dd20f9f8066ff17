/**
 * Canonical JSON (RFC 8785-like): object keys sorted by UTF-16 code units at every depth, no
 * whitespace, strings and numbers as JSON.stringify writes them, `undefined` members dropped.
 * The same value always gives the same text, so a hash over it is a hash over the content.
 * Non-finite numbers and bigints are refused rather than silently written as `null`.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON has no form for ${value}`);
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw new TypeError(`canonical JSON has no form for a ${typeof value}`);
  }
  const withJson = value as { toJSON?: () => unknown };
  if (typeof withJson.toJSON === 'function') return canonicalJson(withJson.toJSON());
  // String concatenation, not parts joined: the chain and verify run this per row (the bench's hot spot).
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      // As JSON.stringify: a hole or undefined in an array is null (dropping it would shift positions).
      const item: unknown = value[i];
      out += item === undefined ? 'null' : canonicalJson(item);
    }
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  // Rows are built in sorted column order (evidence/normalize.ts): checking is cheaper than sorting.
  if (!isSorted(keys)) keys.sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const item = record[k];
    if (item === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += `${quoted(k)}:${canonicalJson(item)}`;
  }
  return `${out}}`;
}

/**
 * canonicalJson of a flat row (evidence/normalize.ts rowContent: keys in sorted order, values strings,
 * numbers, booleans, null or arrays of those): the same text, written by JSON.stringify, which is
 * several times faster (the chain runs this per evidence row). Anything else (an object value, a
 * non-finite number, keys out of order) takes the general path, so the text never differs.
 */
export function canonicalRowJson(row: Record<string, unknown>): string {
  let prev: string | null = null;
  for (const k in row) {
    if (prev !== null && prev > k) return canonicalJson(row);
    prev = k;
    if (!plain(row[k])) return canonicalJson(row);
  }
  return JSON.stringify(row);
}

function plain(v: unknown): boolean {
  if (v === null) return true;
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return true;
    case 'number':
      return Number.isFinite(v);
    case 'object':
      if (!Array.isArray(v)) return false;
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        // A hole or undefined in an array: both write null, but the general path is the one that says so.
        if (item === undefined || (item !== null && typeof item === 'object') || !plain(item)) return false;
      }
      return true;
    default:
      return false;
  }
}

/** The same order as Array.prototype.sort's default (UTF-16 code units). */
function isSorted(keys: string[]): boolean {
  for (let i = 1; i < keys.length; i++) if ((keys[i - 1] as string) > (keys[i] as string)) return false;
  return true;
}

/** Column names repeat on every row: each is quoted once (bounded, so hostile keys cannot grow it). */
const quotedKeys = new Map<string, string>();
function quoted(k: string): string {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = JSON.stringify(k);
    if (quotedKeys.size < 4096) quotedKeys.set(k, q);
  }
  return q;
}
