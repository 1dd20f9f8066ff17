import type { AnyReport } from '../types.js';
import { renderCsv } from './csv.js';
import { renderHtml } from './html.js';

export const FORMATS = ['json', 'csv', 'html'] as const;
export type ReportFormat = (typeof FORMATS)[number];

export interface Rendered {
  text: string;
  contentType: string;
  extension: string;
}

export function renderReport(report: AnyReport, format: ReportFormat): Rendered {
  switch (format) {
    case 'json':
      return { text: `${JSON.stringify(report, null, 2)}\n`, contentType: 'application/json; charset=utf-8', extension: 'json' };
    case 'csv':
      return { text: renderCsv(report), contentType: 'text/csv; charset=utf-8', extension: 'csv' };
    case 'html':
      return { text: renderHtml(report), contentType: 'text/html; charset=utf-8', extension: 'html' };
  }
}

export { csvField, renderCsv } from './csv.js';
export { barChart, escapeHtml, renderHtml } from './html.js';
