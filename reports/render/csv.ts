import { REPORTS, rowsOf } from '../registry.js';
import type { AnyReport } from '../types.js';
import { cellText, pick } from './cells.js';

/** `;` too: spreadsheets in locales whose list separator is `;` would split a joined list into cells. */
const NEEDS_QUOTES = /[",;\r\n]/;
/** Spreadsheets run cells that start like a formula; principal names and details come from audited systems. */
const FORMULA_START = /^[=+\-@\t\r]/;

const guard = (text: string): string => (FORMULA_START.test(text) ? `'${text}` : text);

/**
 * The text of one cell, formula-guarded. The guard applies to the final text of every cell
 * (lists, JSON, anything not a number or boolean we computed ourselves) and to each element
 * of a joined list, so no element is a formula once the list is split again.
 */
function safeCellText(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return cellText(value);
  if (Array.isArray(value) && value.every((x) => typeof x !== 'object' || x === null))
    return guard(value.map((x) => guard(cellText(x))).join(';'));
  return guard(cellText(value));
}

/** One RFC 4180 field: quoted when it holds a comma, quote, semicolon, CR or LF, with quotes doubled. */
export function csvField(value: unknown): string {
  const text = safeCellText(value);
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180 CSV of the report's rows: a header line, CRLF line ends (also after the last record). */
export function renderCsv(report: AnyReport): string {
  const columns = REPORTS[report.report].columns;
  const lines = [columns.map(csvField).join(',')];
  for (const row of rowsOf(report)) lines.push(columns.map((c) => csvField(pick(row, c))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
