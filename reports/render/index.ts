import type { AnyReport } from '../types.js';
import { renderCsv } from './csv.js';
import { type HtmlContext, renderHtml } from './html.js';

export const FORMATS = ['json', 'csv', 'html'] as const;
export type ReportFormat = (typeof FORMATS)[number];

export interface Rendered {
  text: string;
  contentType: string;
  extension: string;
}

/** `context` gives the HTML page its organisation and generation time (neither is in the digest). */
export function renderReport(report: AnyReport, format: ReportFormat, context: HtmlContext = {}): Rendered {
  switch (format) {
    case 'json':
      return { text: `${JSON.stringify(report, null, 2)}\n`, contentType: 'application/json; charset=utf-8', extension: 'json' };
    case 'csv':
      return { text: renderCsv(report), contentType: 'text/csv; charset=utf-8', extension: 'csv' };
    case 'html':
      return { text: renderHtml(report, context), contentType: 'text/html; charset=utf-8', extension: 'html' };
  }
}

export { csvField, renderCsv } from './csv.js';
export { barChart, escapeHtml, type HtmlContext, renderHtml } from './html.js';
