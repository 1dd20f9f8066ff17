/**
 * Small typed readers shared by the normalizers. Parsed JSON is `unknown` all the way down; these
 * keep the per-field checks short without allocating (no wrapper objects, no closures).
 */
export type JsonObject = Record<string, unknown>;

/** Marks a field that is present with the wrong JSON type (as opposed to absent or null). */
export const WRONG_TYPE: unique symbol = Symbol('wrong-type');
export type WrongType = typeof WRONG_TYPE;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A non-empty string, or null for absent / null / empty; WRONG_TYPE for any other JSON type. */
export function optString(value: unknown): string | null | WrongType {
  if (typeof value === 'string') return value.length > 0 ? value : null;
  return value === undefined || value === null ? null : WRONG_TYPE;
}

/** Like optString, but a wrong type reads as null: for fields we only display, never key on. */
export function looseString(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/** An object, or null for absent / null; WRONG_TYPE for any other JSON type. */
export function optObject(value: unknown): JsonObject | null | WrongType {
  if (isObject(value)) return value;
  return value === undefined || value === null ? null : WRONG_TYPE;
}

/** A short, single-line rendering of a value for a dead-letter reason. */
export function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  const json = jsonText(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

/** `eventTime is missing` / `eventTime is not a string (42)`: the reason names the field and what it held. */
export function badField(field: string, expected: string, value: unknown): string {
  return value === undefined || value === null ? `${field} is missing` : `${field} is not ${expected} (${show(value)})`;
}

/** The first few keys of an object, for an "unrecognised record" reason. */
export function keyList(value: JsonObject, max = 8): string {
  const keys = Object.keys(value);
  if (keys.length === 0) return 'none';
  return keys.length > max ? `${keys.slice(0, max).join(', ')}, ... (${keys.length} keys)` : keys.join(', ');
}

/** Which limit a value breaks, if any: see `measureJson`. */
export type JsonLimit = 'depth' | 'size' | null;

/**
 * Nesting depth (the value itself is level 1) and approximate JSON size of a parsed value, walked
 * with an explicit stack, never recursion: the values come from untrusted input. Stops at the first
 * limit passed. Size counts characters of strings and keys plus punctuation (escapes and multi-byte
 * characters are not expanded): close enough for a limit meant to stop megabytes, not bytes.
 * `maxBytes = Infinity` skips the size accounting.
 */
export function measureJson(value: unknown, maxDepth: number, maxBytes: number): JsonLimit {
  if (typeof value !== 'object' || value === null) return null;
  const countSize = maxBytes !== Number.POSITIVE_INFINITY;
  const values: object[] = [value];
  const depths: number[] = [1];
  let size = 0;
  while (values.length > 0) {
    const v = values.pop() as object;
    const depth = depths.pop() as number;
    if (depth > maxDepth) return 'depth';
    if (Array.isArray(v)) {
      size += 2 + v.length;
      for (let i = 0; i < v.length; i++) {
        const c: unknown = v[i];
        if (typeof c === 'object' && c !== null) {
          values.push(c);
          depths.push(depth + 1);
        } else if (countSize) size += scalarSize(c);
      }
    } else {
      size += 2;
      const o = v as JsonObject;
      for (const key in o) {
        const c = o[key];
        if (typeof c === 'object' && c !== null) {
          values.push(c);
          depths.push(depth + 1);
          if (countSize) size += key.length + 4;
        } else if (countSize) size += key.length + 4 + scalarSize(c);
      }
    }
    if (size > maxBytes) return 'size';
  }
  return null;
}

function scalarSize(value: unknown): number {
  return typeof value === 'string' ? value.length + 2 : typeof value === 'number' ? 8 : 5;
}

/**
 * `JSON.stringify` that cannot overflow the stack: values nested deeper than V8's recursive
 * serializer can go (a few thousand levels) are written by an explicit-stack serializer instead.
 * Used for dead-letter texts and reasons, which exist precisely for such values.
 */
export function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch (err) {
    if (!(err instanceof RangeError)) return String(err);
    return serializeDeep(value);
  }
}

interface SerializeFrame {
  container: object;
  keys: string[] | null;
  next: number;
}

function serializeDeep(value: unknown): string {
  const out: string[] = [];
  const stack: SerializeFrame[] = [];
  const open = (v: unknown): void => {
    if (typeof v !== 'object' || v === null) {
      out.push(JSON.stringify(v) ?? 'null');
    } else if (Array.isArray(v)) {
      out.push('[');
      stack.push({ container: v, keys: null, next: 0 });
    } else {
      out.push('{');
      stack.push({ container: v, keys: Object.keys(v), next: 0 });
    }
  };
  open(value);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1] as SerializeFrame;
    const { container, keys } = frame;
    const length = keys === null ? (container as unknown[]).length : keys.length;
    if (frame.next >= length) {
      out.push(keys === null ? ']' : '}');
      stack.pop();
      continue;
    }
    const i = frame.next++;
    if (i > 0) out.push(',');
    if (keys === null) {
      open((container as unknown[])[i]);
    } else {
      const key = keys[i] as string;
      out.push(JSON.stringify(key), ':');
      open((container as JsonObject)[key]);
    }
  }
  return out.join('');
}
