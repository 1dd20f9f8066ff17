import { ReportError } from '../errors.js';
import type { AnyReport } from '../types.js';
import { cellText } from './cells.js';
import { flatTable } from './flat.js';

/** `;` too: spreadsheets in locales whose list separator is `;` would split a joined list into cells. */
const NEEDS_QUOTES = /[",;\r\n]/;
/** Spreadsheets run cells that start like a formula; principal names and details come from audited systems. */
const FORMULA_START = /^[=+\-@\t\r]/;

const guard = (text: string): string => (FORMULA_START.test(text) ? `'${text}` : text);

const isScalar = (x: unknown) => x === null || typeof x !== 'object';

/**
 * The text of one cell, formula-guarded. The guard applies to the final text of every cell
 * and to each element of a joined list, so no element is a formula once the list is split again.
 * A record or a list of records has no place in a flat table: that is a layout bug, and it fails
 * rather than writing JSON into a cell.
 */
function safeCellText(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return cellText(value);
  if (Array.isArray(value) && value.every(isScalar)) return guard(value.map((x) => guard(cellText(x))).join(';'));
  if (!isScalar(value))
    throw new ReportError('BG_REPORT_RENDER', 'a CSV cell would hold a nested record', {
      stage: 'processing',
      hint: 'flatten the field in reports/render/flat.ts',
    });
  return guard(cellText(value));
}

/** One RFC 4180 field: quoted when it holds a comma, quote, semicolon, CR or LF, with quotes doubled. */
export function csvField(value: unknown): string {
  const text = safeCellText(value);
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180 CSV of the report's flat table: a header line, CRLF line ends (also after the last record). */
export function renderCsv(report: AnyReport): string {
  const { columns, rows } = flatTable(report);
  const lines = [columns.map(csvField).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvField(row[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
