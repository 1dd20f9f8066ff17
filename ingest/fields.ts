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
  const json = JSON.stringify(value) ?? String(value);
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
