import { ReportError } from './errors.js';
import type { Period } from './types.js';

export const PERIOD_KINDS = ['previous-day', 'previous-week', 'previous-month', 'previous-quarter'] as const;
export type PeriodKind = (typeof PERIOD_KINDS)[number];

// A date, or a date-time with an explicit zone: an instant without a zone would depend on the host.
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;

/** Parses `--from`/`--to`: `2026-11-20` (UTC midnight) or `2026-11-20T09:00:00Z` / `+02:00`. */
export function parseInstant(text: string, what: string): number {
  const ms = ISO_INSTANT.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms))
    throw new ReportError('BG_REPORT_USAGE', `${what} is not an ISO 8601 date or date-time with a zone: "${text}"`, {
      stage: 'config',
      hint: 'e.g. 2026-11-20 or 2026-11-20T09:00:00Z',
    });
  return ms;
}

export function parsePeriod(from: string | undefined, to: string | undefined): Period {
  if (!from || !to)
    throw new ReportError('BG_REPORT_USAGE', 'a report needs --from and --to', {
      stage: 'config',
      hint: 'e.g. --from 2026-11-01 --to 2026-12-01',
    });
  const period = { fromMs: parseInstant(from, '--from'), toMs: parseInstant(to, '--to') };
  if (period.fromMs >= period.toMs)
    throw new ReportError('BG_REPORT_USAGE', `--from (${from}) must be before --to (${to}); the period is [from, to)`, { stage: 'config' });
  return period;
}

/** Throws a RangeError for a zone the runtime does not know. */
export function checkTimeZone(timeZone: string): void {
  new Intl.DateTimeFormat('en-US', { timeZone });
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Wall-clock fields of an instant in a zone. */
function wallClock(ms: number, timeZone: string) {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  const parts: Record<string, number> = {};
  for (const p of f.formatToParts(new Date(ms))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return {
    year: parts.year ?? 1970,
    month: parts.month ?? 1,
    day: parts.day ?? 1,
    hour: parts.hour ?? 0,
    minute: parts.minute ?? 0,
    second: parts.second ?? 0,
  };
}

/** Offset of the zone from UTC at an instant, in ms (wall clock minus UTC). */
function offsetAt(ms: number, timeZone: string): number {
  const w = wallClock(ms, timeZone);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - (ms - (((ms % 1000) + 1000) % 1000));
}

/**
 * The instant of local midnight on a calendar day in a zone. Month and day may overflow
 * (day 0 is the last day of the previous month), as with Date.UTC.
 */
export function zonedMidnight(year: number, month: number, day: number, timeZone: string): number {
  const guess = Date.UTC(year, month - 1, day);
  // Two rounds: the offset at the first estimate may differ from the one at the answer across a DST change.
  const first = guess - offsetAt(guess, timeZone);
  return guess - offsetAt(first, timeZone);
}

/**
 * The complete calendar period before the one containing `nowMs`, in the schedule's zone:
 * yesterday, last ISO week (Monday to Monday), last month or last quarter.
 */
export function previousPeriod(kind: PeriodKind, nowMs: number, timeZone: string): Period {
  const w = wallClock(nowMs, timeZone);
  const { year, month, day } = w;
  switch (kind) {
    case 'previous-day':
      return { fromMs: zonedMidnight(year, month, day - 1, timeZone), toMs: zonedMidnight(year, month, day, timeZone) };
    case 'previous-week': {
      const weekday = (new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 6) % 7; // Monday = 0
      const monday = day - weekday;
      return { fromMs: zonedMidnight(year, month, monday - 7, timeZone), toMs: zonedMidnight(year, month, monday, timeZone) };
    }
    case 'previous-month':
      return { fromMs: zonedMidnight(year, month - 1, 1, timeZone), toMs: zonedMidnight(year, month, 1, timeZone) };
    case 'previous-quarter': {
      const first = Math.floor((month - 1) / 3) * 3 + 1;
      return { fromMs: zonedMidnight(year, first - 3, 1, timeZone), toMs: zonedMidnight(year, first, 1, timeZone) };
    }
  }
}
