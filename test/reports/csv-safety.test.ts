import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csvField, renderCsv } from '../../reports/render/csv.js';
import type { AnyReport } from '../../reports/types.js';
import { parseCsv } from './csv-parse.js';

const FORMULA = /^[=+\-@\t\r]/;
const LEADS = ['=', '+', '-', '@', '\t', '\r'];

describe('CSV formula guard on the final text of every cell', () => {
  it('guards list cells (approvers, sourceIps) whatever the leading character', () => {
    for (const lead of LEADS) {
      const cell = csvField([`${lead}HYPERLINK("http://evil")`, 'bob']);
      const [parsed] = parseCsv(`${cell}\r\n`);
      expect(parsed, JSON.stringify(lead)).toHaveLength(1);
      expect(parsed![0]!, JSON.stringify(lead)).not.toMatch(FORMULA);
      expect(parsed![0]!.startsWith("'")).toBe(true);
    }
  });

  it('guards every element of a list, and keeps the list in one cell in ;-separator spreadsheets', () => {
    const cell = csvField(['alice', '=cmd|" /C calc"!A0']);
    expect(cell.startsWith('"')).toBe(true);
    const text = parseCsv(`${cell}\r\n`)[0]![0]!;
    for (const element of text.split(';')) expect(element).not.toMatch(FORMULA);
  });

  it('refuses a nested record (a flat table has no JSON in a cell) and guards non-string scalars', () => {
    expect(() => csvField([{ a: 1 }])).toThrow(/nested record/);
    expect(() => csvField({ a: '=1' })).toThrow(/nested record/);
    // Numbers are our own (counts, durations): a negative number stays a number.
    expect(csvField(-5)).toBe('-5');
    expect(csvField(true)).toBe('true');
  });

  it('a whole report: no parsed cell starts like a formula, RFC 4180 round trip intact', () => {
    const hostile = ['=1+1', '+SUM(A1)', '-2+3', '@cmd', '\tx', '\r=y'];
    const report = {
      report: 'unauthorized-use',
      from: '2026-03-10T00:00:00.000Z',
      to: '2026-03-11T00:00:00.000Z',
      totals: {},
      digest: 'x',
      incidents: [
        {
          sessionId: 's1',
          identity: 'okta-emergency-admin',
          source: 'okta',
          principal: '=HYPERLINK("http://evil","x")',
          reason: 'use_without_ticket',
          ticketId: null,
          approvers: hostile,
          sourceIps: ['@203.0.113.9', '-1'],
          start: '2026-03-10T01:00:00.000Z',
          events: 3,
          activity: { command: 1, data: 0, config: 0 },
          revocations: [{ target: '=evil', outcome: 'failed' }],
        },
      ],
    } as unknown as AnyReport;
    const rows = parseCsv(renderCsv(report));
    expect(rows).toHaveLength(2);
    expect(rows[1]).toHaveLength(rows[0]!.length);
    for (const cell of rows[1]!) expect(cell).not.toMatch(FORMULA);
    const col = (name: string) => rows[1]![rows[0]!.indexOf(name)]!;
    expect(col('approvers')).toBe(hostile.map((h) => `'${h}`).join(';'));
    expect(col('sourceIps')).toBe("'@203.0.113.9;'-1");
    expect(col('events')).toBe('3');
  });

  it('property: any list of strings gives one RFC 4180 cell with no formula start', () => {
    const piece = fc.string({ unit: fc.constantFrom('=', '+', '-', '@', '\t', '\r', '\n', '"', ',', ';', 'a', ' ', "'") });
    fc.assert(
      fc.property(fc.oneof(piece, fc.array(piece, { maxLength: 5 })), (value) => {
        const cells = parseCsv(`${csvField(value)},end\r\n`);
        expect(cells).toHaveLength(1);
        expect(cells[0]).toHaveLength(2);
        expect(cells[0]![0]!).not.toMatch(FORMULA);
      }),
      { numRuns: 2000 },
    );
  });
});
