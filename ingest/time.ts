/**
 * Timestamp normalization to ISO 8601 UTC with milliseconds (`2023-07-10T11:42:24.000Z`).
 *
 * Accepted, because real samples carry them: RFC 3339 with or without fraction (CloudTrail
 * `…Z`, Kubernetes MicroTime `…​.730588Z`), a space instead of `T` and no zone (Panther's
 * `2021-01-01 01:01:01.000000000`, Okta test data `2022-03-22 14:21:53.225`; read as UTC),
 * numeric offsets (`+02:00`, `+0200`). Fractions are truncated to milliseconds, not rounded, so
 * a time never moves into the next second. Rejected: numbers (an epoch is a different field
 * contract, and `eventTime: 42` is a broken record), impossible dates (`2017-09-31`), and years
 * before 1970 (Go's zero time `0001-01-01T00:00:00Z` is "unset", not an event time).
 */
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(?:\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?))?$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysIn(year: number, month: number): number {
  if (month === 2 && ((year % 4 === 0 && year % 100 !== 0) || year % 400 === 0)) return 29;
  return DAYS_IN_MONTH[month - 1] ?? 0;
}

function digits(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * CloudTrail's own form, `2023-07-10T11:42:24Z`, is nearly every record: checked by char codes,
 * no regex match array. Returns undefined when the text is not in exactly that form.
 */
function canonicalSeconds(value: string): string | null | undefined {
  if (value.length !== 20 || value.charCodeAt(10) !== 84 /* T */ || value.charCodeAt(19) !== 90 /* Z */) return undefined;
  if (value.charCodeAt(4) !== 45 || value.charCodeAt(7) !== 45 || value.charCodeAt(13) !== 58 || value.charCodeAt(16) !== 58)
    return undefined;
  const year = digits(value, 0, 4);
  const month = digits(value, 5, 7);
  const day = digits(value, 8, 10);
  const hour = digits(value, 11, 13);
  const minute = digits(value, 14, 16);
  const second = digits(value, 17, 19);
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return null;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return null;
  return `${value.slice(0, 19)}.000Z`;
}

/** The ISO UTC millisecond form of `value`, or null when it is not a timestamp we accept. */
export function toIsoMillis(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const fast = canonicalSeconds(value);
  if (fast !== undefined) return fast;
  const m = TIMESTAMP.exec(value);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s, frac, zone] = m as unknown as [string, string, string, string, string, string, string, string?, string?];
  const year = +y;
  const month = +mo;
  const day = +d;
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return null;
  if (+h > 23 || +mi > 59 || +s > 59) return null;
  const ms = frac === undefined ? '000' : frac.length >= 3 ? frac.slice(0, 3) : frac.padEnd(3, '0');
  if (zone === undefined || zone === 'Z' || zone === 'z' || zone === 'UTC') {
    // Already UTC: build the string directly, no Date round trip on the hot path.
    return `${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`;
  }
  const sign = zone.charCodeAt(0) === 45 /* - */ ? -1 : 1;
  const digits = zone.replace(':', '');
  const offsetMinutes = sign * (+digits.slice(1, 3) * 60 + +(digits.slice(3, 5) || '0'));
  if (Math.abs(offsetMinutes) > 18 * 60) return null;
  const epoch = Date.UTC(year, month - 1, day, +h, +mi, +s, +ms) - offsetMinutes * 60_000;
  return new Date(epoch).toISOString();
}
