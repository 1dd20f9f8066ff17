import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config.js';
import { canonicalJson, canonicalWalk } from '../../reports/digest.js';
import { parseReportsConfig } from '../../reports/options.js';
import { parseInstant, parsePeriod, previousPeriod, zonedMidnight } from '../../reports/period.js';
import { csvField } from '../../reports/render/csv.js';
import { barChart, escapeHtml } from '../../reports/render/html.js';
import { sortFindings } from '../../reports/rotation.js';
import { iso } from '../../reports/sql.js';
import type { RotationFinding } from '../../reports/types.js';

const at = (iso: string) => Date.parse(iso);
const span = (p: { fromMs: number; toMs: number }) => [new Date(p.fromMs).toISOString(), new Date(p.toMs).toISOString()];

describe('periods', () => {
  it('computes previous calendar periods in the schedule zone', () => {
    // 2026-03-10 01:30 UTC is still 2026-03-09 in New York (UTC-4 after the 03-08 DST change).
    const now = at('2026-03-10T01:30:00Z');
    expect(span(previousPeriod('previous-day', now, 'America/New_York'))).toEqual(['2026-03-08T05:00:00.000Z', '2026-03-09T04:00:00.000Z']);
    expect(span(previousPeriod('previous-day', now, 'UTC'))).toEqual(['2026-03-09T00:00:00.000Z', '2026-03-10T00:00:00.000Z']);
    expect(span(previousPeriod('previous-week', now, 'Europe/Berlin'))).toEqual(['2026-03-01T23:00:00.000Z', '2026-03-08T23:00:00.000Z']);
    expect(span(previousPeriod('previous-month', now, 'Asia/Tokyo'))).toEqual(['2026-01-31T15:00:00.000Z', '2026-02-28T15:00:00.000Z']);
    expect(span(previousPeriod('previous-quarter', at('2026-05-15T12:00:00Z'), 'UTC'))).toEqual([
      '2026-01-01T00:00:00.000Z',
      '2026-04-01T00:00:00.000Z',
    ]);
    expect(span(previousPeriod('previous-quarter', at('2026-02-01T12:00:00Z'), 'UTC'))).toEqual([
      '2025-10-01T00:00:00.000Z',
      '2026-01-01T00:00:00.000Z',
    ]);
    expect(span(previousPeriod('previous-month', at('2026-01-05T00:00:00Z'), 'UTC'))).toEqual([
      '2025-12-01T00:00:00.000Z',
      '2026-01-01T00:00:00.000Z',
    ]);
  });

  it('finds local midnight across DST changes', () => {
    expect(new Date(zonedMidnight(2026, 3, 29, 'Europe/Berlin')).toISOString()).toBe('2026-03-28T23:00:00.000Z');
    expect(new Date(zonedMidnight(2026, 3, 30, 'Europe/Berlin')).toISOString()).toBe('2026-03-29T22:00:00.000Z');
    expect(new Date(zonedMidnight(2026, 11, 1, 'America/New_York')).toISOString()).toBe('2026-11-01T04:00:00.000Z');
    expect(new Date(zonedMidnight(2026, 11, 2, 'America/New_York')).toISOString()).toBe('2026-11-02T05:00:00.000Z');
  });

  it('parses dates and zoned date-times only', () => {
    expect(parseInstant('2026-03-10', '--from')).toBe(at('2026-03-10T00:00:00Z'));
    expect(parseInstant('2026-03-10T09:00:00+02:00', '--from')).toBe(at('2026-03-10T07:00:00Z'));
    expect(() => parseInstant('2026-03-10T09:00:00', '--from')).toThrow(/with a zone/);
    expect(() => parseInstant('03/10/2026', '--to')).toThrow(/--to is not an ISO 8601/);
    expect(() => parsePeriod('2026-03-10', '2026-03-10')).toThrow(/must be before/);
    expect(() => parsePeriod(undefined, '2026-03-10')).toThrow(/needs --from and --to/);
  });
});

describe('CSV fields (RFC 4180)', () => {
  it('quotes fields with comma, quote, CR or LF and doubles quotes', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('line\nbreak')).toBe('"line\nbreak"');
    expect(csvField('cr\rhere')).toBe('"cr\rhere"');
    expect(csvField(null)).toBe('');
    expect(csvField(42)).toBe('42');
    expect(csvField(-5)).toBe('-5');
    expect(csvField(['a', 'b,c'])).toBe('"a;b,c"');
  });

  it('defuses spreadsheet formulas in text from audited systems', () => {
    expect(csvField('=HYPERLINK("http://x")')).toBe(`"'=HYPERLINK(""http://x"")"`);
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
  });
});

describe('HTML', () => {
  it('escapes markup and quotes', () => {
    expect(escapeHtml(`<img src=x onerror="alert('1')">&`)).toBe('&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;');
    expect(escapeHtml(null)).toBe('');
  });

  it('draws one bar per label, scaled to the largest, with escaped labels', () => {
    const svg = barChart(
      [
        ['<root>', 4],
        ['ops', 2],
      ],
      'chart',
    );
    expect(svg.match(/<rect /g)).toHaveLength(2);
    expect(svg).toContain('&lt;root&gt;');
    expect(svg).toContain('width="320"');
    expect(svg).toContain('width="160"');
    expect(barChart([], 'empty')).toBe('');
  });
});

describe('canonical JSON', () => {
  it('sorts keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: null } })).toBe('{"a":{"c":null,"d":[2,1]},"b":1}');
  });

  it('the fast form equals the walk on every kind of value, the ones it hands back to the walk included', () => {
    const values: unknown[] = [
      { z: 'é\n"q"', a: [1, -0, 1.5e300, Number.NaN, Number.POSITIVE_INFINITY, undefined, null, true], m: { y: undefined, x: false } },
      // Keys an object would place first whatever their insertion order, and keys sorting by code unit.
      { '10': 'ten', '9': 'nine', b: { '2': 1, a: 2 }, Z: 1, é: 2, _: 3 },
      { when: new Date(0), list: [new Map(), () => 1] },
      [[], {}, [{}], 'top', 3, false, null, undefined],
      Object.assign(Object.create(null), { b: 2, a: 1 }),
      JSON.parse('{"b":1,"__proto__":{"x":1},"a":2}'),
      undefined,
      'plain',
    ];
    // The shape of a report row, many times over, in objects of two key orders.
    values.push({
      rows: Array.from({ length: 200 }, (_, i) => (i % 2 ? { id: i, at: iso(i * 997), tags: [`t${i}`] } : { tags: [], at: null, id: i })),
    });
    for (const v of values) expect(canonicalJson(v)).toBe(canonicalWalk(v));
  });
});

describe('ISO times', () => {
  it('are those of Date#toISOString, across days, leap days and the edges of four-digit years', () => {
    const times = [0, 1, 999, 1000, 59_999, 86_399_999, 86_400_000, Date.parse('2024-02-29T23:59:59.999Z'), 253_402_300_799_999];
    for (let i = 0; i < 20_000; i++) times.push(Math.floor(((i * 7919) % 20_000) * 12_670_115_039.99));
    for (const ms of times) expect(iso(ms)).toBe(new Date(ms).toISOString());
    // Outside the fast range: the engine's own answer, the six-digit year and its error included.
    expect(iso(253_402_300_800_000)).toBe(new Date(253_402_300_800_000).toISOString());
    expect(iso(-1)).toBe('1969-12-31T23:59:59.999Z');
    expect(iso(1.5)).toBe(new Date(1.5).toISOString());
    expect(() => iso(Number.NaN)).toThrow(RangeError);
  });
});

describe('reports config', () => {
  it('applies defaults and names file and field in errors', () => {
    const config = parseConfig({ reports: { from: 'Glasswatch <gw@example.com>' } }, 'gw.yml');
    expect(parseReportsConfig(config)).toEqual({
      from: 'Glasswatch <gw@example.com>',
      subjectPrefix: '[glasswatch]',
      organisation: null,
      rotation: { afterUseHours: 24, maxAgeDays: 90 },
      delivery: { retries: 4, initialDelayMs: 2000, maxDelayMs: 60_000 },
    });
    expect(() => parseReportsConfig(parseConfig({ reports: { rotation: { maxAgeDays: 0 } } }, 'gw.yml'))).toThrow(
      /gw\.yml: reports\.rotation\.maxAgeDays: must be between/,
    );
    expect(() => parseReportsConfig(parseConfig({ reports: { rotaton: {} } }, 'gw.yml'))).toThrow(/reports\.rotaton: unknown key/);
    expect(() => parseReportsConfig(parseConfig({ reports: { from: 'nobody' } }, 'gw.yml'))).toThrow(
      /reports\.from: must be a mail address/,
    );
  });
});

describe('rotation findings order', () => {
  it('is the order of the joined keys, with fields that are prefixes of others and fields holding a NUL', () => {
    const parts = ['', 'a', 'ab', 'a\u0000b', 'b', 'B', 'é'];
    let seed = 7;
    const pick = () => {
      seed = (seed * 48_271) % 2_147_483_647;
      return parts[seed % parts.length] as string;
    };
    const make = (i: number): RotationFinding =>
      ({
        check: i % 2 ? 'after-use' : 'max-age',
        identity: pick(),
        principal: pick(),
        scope: i % 5 ? pick() : null,
        usedAt: i % 3 ? null : pick(),
        sessionId: pick(),
      }) as unknown as RotationFinding;
    const key = (f: RotationFinding) => [f.check, f.identity, f.principal, f.scope ?? '', f.usedAt ?? '', f.sessionId ?? ''].join('\u0000');
    const byKey = (list: RotationFinding[]) => [...list].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)).map(key);
    const all = Array.from({ length: 300 }, (_, i) => make(i));
    const withoutNul = all.filter((f) => ![f.identity, f.principal, f.scope, f.usedAt, f.sessionId].includes('a\u0000b'));
    for (const list of [all, withoutNul]) {
      const sorted = [...list].reverse();
      sortFindings(sorted);
      expect(sorted.map(key)).toEqual(byKey(list));
    }
  });
});
