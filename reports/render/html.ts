import { REPORTS, rowsOf } from '../registry.js';
import type { AnyReport } from '../types.js';
import { cellText, pick } from './cells.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Every value that reaches the HTML goes through here: audited systems choose names and details. */
export function escapeHtml(value: unknown): string {
  return cellText(value).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const BAR_COLOURS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2'];

/**
 * Rows counted by one field, as horizontal bars in inline SVG: mail clients block external
 * images and scripts, and a few rects with text survive every client that renders SVG at all.
 */
export function barChart(counts: [string, number][], label: string): string {
  if (counts.length === 0) return '';
  const max = Math.max(...counts.map(([, n]) => n));
  const barH = 20;
  const gap = 6;
  const labelW = 200;
  const plotW = 320;
  const height = counts.length * (barH + gap) + gap;
  const bars = counts
    .map(([name, n], i) => {
      const y = gap + i * (barH + gap);
      const w = max === 0 ? 0 : Math.max(2, Math.round((n / max) * plotW));
      return (
        `<text x="${labelW - 8}" y="${y + 14}" text-anchor="end" font-size="12" fill="#111827">${escapeHtml(name)}</text>` +
        `<rect x="${labelW}" y="${y}" width="${w}" height="${barH}" fill="${BAR_COLOURS[i % BAR_COLOURS.length]}"></rect>` +
        `<text x="${labelW + w + 6}" y="${y + 14}" font-size="12" fill="#111827">${n}</text>`
      );
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${escapeHtml(label)}" width="${labelW + plotW + 60}" height="${height}" viewBox="0 0 ${labelW + plotW + 60} ${height}">${bars}</svg>`;
}

const CELL = 'style="border:1px solid #d1d5db;padding:4px 6px;text-align:left;vertical-align:top"';

function table(headers: string[], rows: unknown[][]): string {
  const head = headers.map((h) => `<th ${CELL}>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((v) => `<td ${CELL}>${escapeHtml(v)}</td>`).join('')}</tr>`).join('');
  return `<table style="border-collapse:collapse;font-size:12px;margin:8px 0">${`<thead><tr>${head}</tr></thead>`}<tbody>${body}</tbody></table>`;
}

/** A self-contained email body: title, period, totals, a bar chart, every row, and the digest. */
export function renderHtml(report: AnyReport): string {
  const def = REPORTS[report.report];
  const rows = rowsOf(report);
  const counts = new Map<string, number>();
  for (const row of rows) {
    const key = cellText(pick(row, def.chartBy)) || '(none)';
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const chart = barChart(
    [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)),
    `${def.title}: rows by ${def.chartBy}`,
  );
  const totals = Object.entries(report.totals);
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(def.title)}</title></head>`,
    '<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#111827">',
    `<h1 style="font-size:18px">${escapeHtml(def.title)}</h1>`,
    `<p>${escapeHtml(def.description)}.<br>Period ${escapeHtml(report.from)} to ${escapeHtml(report.to)} (end excluded).</p>`,
    table(
      totals.map(([k]) => k),
      [totals.map(([, v]) => v)],
    ),
    chart ? `<h2 style="font-size:14px">By ${escapeHtml(def.chartBy)}</h2>${chart}` : '<p>No rows in this period.</p>',
    rows.length ? `<h2 style="font-size:14px">${escapeHtml(def.rowsKey)} (${rows.length})</h2>` : '',
    rows.length
      ? table(
          def.columns,
          rows.map((r) => def.columns.map((c) => pick(r, c))),
        )
      : '',
    `<p style="font-size:11px;color:#6b7280">SHA-256 digest of the report: <code>${escapeHtml(report.digest)}</code>. Check a kept JSON copy with glasswatch's verifyDigest.</p>`,
    '</body></html>',
    '',
  ].join('\n');
}
