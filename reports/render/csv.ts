import { REPORTS, rowsOf } from '../registry.js';
import type { AnyReport } from '../types.js';
import { cellText, pick } from './cells.js';

const NEEDS_QUOTES = /[",\r\n]/;
/** Spreadsheets run cells that start like a formula; principal names and details come from audited systems. */
const FORMULA_START = /^[=+\-@\t\r]/;

/** One RFC 4180 field: quoted when it holds a comma, quote, CR or LF, with quotes doubled. */
export function csvField(value: unknown): string {
  let text = cellText(value);
  if (typeof value === 'string' && FORMULA_START.test(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180 CSV of the report's rows: a header line, CRLF line ends (also after the last record). */
export function renderCsv(report: AnyReport): string {
  const columns = REPORTS[report.report].columns;
  const lines = [columns.map(csvField).join(',')];
  for (const row of rowsOf(report)) lines.push(columns.map((c) => csvField(pick(row, c))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
