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
  let out = '{';
  let first = true;
  for (const k of Object.keys(record).sort()) {
    const item = record[k];
    if (item === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += `${JSON.stringify(k)}:${canonicalJson(item)}`;
  }
  return `${out}}`;
}
