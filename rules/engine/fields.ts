/**
 * Field resolution over raw JSON events.
 *
 * Decision (documented in ir.ts): a Sigma field name `a.b.c` is split on dots and
 * every way of grouping the segments into keys is tried, so both the nested path
 * `{"a":{"b":{"c":…}}}` and a literal dotted key `{"a.b.c":…}` (or `{"a.b":{"c":…}}`)
 * resolve. Arrays met on the way are searched element by element. The result is the
 * list of values found; an empty list means the field is absent.
 */

export const ABSENT: unique symbol = Symbol('absent');

/** A compiled field path: resolution of one event's field. */
export interface FieldAccessor {
  readonly name: string;
  /** The first value found (fast path for single-valued fields) or ABSENT. */
  collect(raw: unknown, out: unknown[]): void;
}

export function fieldAccessor(name: string): FieldAccessor {
  const segments = name.split('.');
  if (segments.length === 1) {
    return {
      name,
      collect(raw, out) {
        if (raw !== null && typeof raw === 'object' && !Array.isArray(raw) && Object.hasOwn(raw, name))
          out.push((raw as Record<string, unknown>)[name]);
      },
    };
  }
  // keys[i][j] = segments i..j joined, precomputed so resolution allocates nothing.
  const keys: string[][] = segments.map((_, i) => segments.map((__, j) => (j >= i ? segments.slice(i, j + 1).join('.') : '')));
  const walk = (node: unknown, i: number, out: unknown[]): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const el of node) walk(el, i, out);
      return;
    }
    const row = keys[i] as string[];
    for (let j = i; j < segments.length; j++) {
      const key = row[j] as string;
      if (!Object.hasOwn(node, key)) continue;
      const value = (node as Record<string, unknown>)[key];
      if (j === segments.length - 1) out.push(value);
      else walk(value, j + 1, out);
    }
  };
  return { name, collect: (raw, out) => walk(raw, 0, out) };
}

/** Convenience for tests and the correlation engine: all values of a field. */
export function fieldValues(raw: unknown, name: string): unknown[] {
  const out: unknown[] = [];
  fieldAccessor(name).collect(raw, out);
  return out;
}
