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
      const colour = VERDICT_COLOURS[name] ?? (ALARMING.has(name) ? '#dc2626' : BAR_COLOURS[i % BAR_COLOURS.length]);
      return (
        `<text x="${labelW - 8}" y="${y + 14}" text-anchor="end" font-size="12" fill="#111827">${escapeHtml(name)}</text>` +
        `<rect x="${labelW}" y="${y}" width="${w}" height="${barH}" fill="${colour}"></rect>` +
        `<text x="${labelW + w + 6}" y="${y + 14}" font-size="12" fill="#111827">${n}</text>`
      );
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${escapeHtml(label)}" width="${labelW + plotW + 60}" height="${height}" viewBox="0 0 ${labelW + plotW + 60} ${height}">${bars}</svg>`;
}

const CELL = 'style="border:1px solid #d1d5db;padding:4px 6px;text-align:left;vertical-align:top"';
const ALARM_CELL = 'style="border:1px solid #d1d5db;padding:4px 6px;text-align:left;vertical-align:top;color:#b91c1c;font-weight:600"';
/** Values a compliance reader must not miss. */
const ALARMING = new Set([
  'unauthorized',
  'failed',
  'not_revocable',
  'missing',
  'late',
  'overdue',
  'use_without_ticket',
  'self_approval',
  'window_overrun',
]);
const VERDICT_COLOURS: Record<string, string> = { authorized: '#059669', unauthorized: '#dc2626' };

/** `1145000` ms → `19 min 5 s`: durations are read by people in the email body (the CSV keeps milliseconds). */
export function humanDuration(ms: unknown): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return cellText(ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const totalS = Math.round(ms / 1000);
  const d = Math.floor(totalS / 86_400);
  const h = Math.floor((totalS % 86_400) / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const sec = totalS % 60;
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  return sec ? `${m} min ${sec} s` : `${m} min`;
}

/** `timeToRevokeMs` → `time to revoke`, `activity.command` → `command`: column names for people. */
export function columnLabel(field: string): string {
  const last = field.slice(field.lastIndexOf('.') + 1).replace(/Ms$/, '');
  return last.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

function table(headers: string[], rows: unknown[][]): string {
  const head = headers.map((h) => `<th ${CELL}>${escapeHtml(columnLabel(h))}</th>`).join('');
  const cell = (h: string, v: unknown) => {
    const text = h.endsWith('Ms') ? humanDuration(v) : v;
    return `<td ${typeof v === 'string' && ALARMING.has(v) ? ALARM_CELL : CELL}>${escapeHtml(text)}</td>`;
  };
  const body = rows.map((r) => `<tr>${r.map((v, i) => cell(headers[i] ?? '', v)).join('')}</tr>`).join('');
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
          def.htmlColumns,
          rows.map((r) => def.htmlColumns.map((c) => pick(r, c))),
        )
      : '',
    rows.length
      ? '<p style="font-size:11px;color:#6b7280">Every column, with durations in milliseconds, is in the CSV attachment.</p>'
      : '',
    `<p style="font-size:11px;color:#6b7280">SHA-256 digest of the report: <code>${escapeHtml(report.digest)}</code>. Check a kept JSON copy with glasswatch's verifyDigest.</p>`,
    '</body></html>',
    '',
  ].join('\n');
}
