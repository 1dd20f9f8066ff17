import { REPORTS } from '../registry.js';
import type { AnyReport } from '../types.js';
import { cellText } from './cells.js';
import { evidenceBlock } from './evidence.js';
import { reportBody } from './sections.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Every value that reaches the HTML goes through here: audited systems choose names and details. */
export function escapeHtml(value: unknown): string {
  return cellText(value).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/**
 * A value inside a CSS string (the print header): everything but plain letters, digits and a few
 * separators becomes a `\hex ` escape, so no quote, backslash, newline or `</style>` gets out.
 */
export function cssString(value: unknown): string {
  return `"${cellText(value).replace(/[^A-Za-z0-9 _.,:@()+-]/g, (c) => `\\${c.codePointAt(0)!.toString(16)} `)}"`;
}

/**
 * One severity scale for every report, text, cell and bar alike: a violation is always red, a
 * warning amber, a good outcome green, the rest grey.
 */
export type Tone = 'violation' | 'warning' | 'ok' | 'neutral';

export const PALETTE: Record<Tone, { fg: string; bg: string; bar: string }> = {
  violation: { fg: '#991b1b', bg: '#fee2e2', bar: '#dc2626' },
  warning: { fg: '#92400e', bg: '#fef3c7', bar: '#d97706' },
  ok: { fg: '#065f46', bg: '#d1fae5', bar: '#059669' },
  neutral: { fg: '#374151', bg: '#f3f4f6', bar: '#6b7280' },
};

const TONES: Record<string, Tone> = {
  unauthorized: 'violation',
  no_ticket: 'violation',
  outside_window: 'violation',
  self_approved: 'violation',
  failed: 'violation',
  not_revocable: 'violation',
  missing: 'violation',
  overdue: 'violation',
  use_without_ticket: 'violation',
  self_approval: 'violation',
  early_use: 'violation',
  window_overrun: 'violation',
  mismatch: 'violation',
  missing_digest: 'violation',
  late: 'warning',
  pending: 'warning',
  no_history: 'warning',
  unused_ticket: 'warning',
  manual: 'warning',
  unverifiable: 'warning',
  authorized: 'ok',
  revoked: 'ok',
  verified: 'ok',
  ineffective: 'violation',
  rotated: 'ok',
  ok: 'ok',
  valid: 'ok',
};

/** Totals that count violations (or things to follow up) are coloured when not zero. */
const TOTAL_TONES: Record<string, Tone> = {
  unauthorized: 'violation',
  attempts: 'violation',
  logValidationFailures: 'violation',
  incidents: 'violation',
  failed: 'violation',
  notRevocable: 'violation',
  unrevoked: 'violation',
  ineffective: 'violation',
  usesWithoutTicket: 'violation',
  selfApprovals: 'violation',
  earlyUses: 'violation',
  windowOverruns: 'violation',
  missing: 'violation',
  overdue: 'violation',
  late: 'warning',
  pending: 'warning',
  noHistory: 'warning',
  unusedTickets: 'warning',
  manual: 'warning',
};

export function toneOf(value: unknown): Tone {
  return typeof value === 'string' ? (TONES[value] ?? 'neutral') : 'neutral';
}

export function totalTone(key: string, value: number): Tone {
  return value > 0 ? (TOTAL_TONES[key] ?? 'neutral') : 'neutral';
}

/** A coloured label for a status value (escaped). */
export function badge(value: unknown, tone: Tone = toneOf(value)): string {
  if (value === null || value === undefined || value === '') return '<span class="n">none</span>';
  const p = PALETTE[tone];
  return `<span style="display:inline-block;padding:0 5px;border-radius:3px;background:${p.bg};color:${p.fg};font-weight:600">${escapeHtml(value)}</span>`;
}

/**
 * Rows counted by one field, as horizontal bars in inline SVG: mail clients block external
 * images and scripts, and a few rects with text survive every client that renders SVG at all.
 * 580 px wide: it fits the 600 px mail pane.
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
        `<rect x="${labelW}" y="${y}" width="${w}" height="${barH}" fill="${PALETTE[toneOf(name)].bar}"></rect>` +
        `<text x="${labelW + w + 6}" y="${y + 14}" font-size="12" fill="#111827">${n}</text>`
      );
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${escapeHtml(label)}" width="${labelW + plotW + 60}" height="${height}" viewBox="0 0 ${labelW + plotW + 60} ${height}" style="max-width:100%;height:auto">${bars}</svg>`;
}

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

/** `2026-03-10T09:10:00.000Z` → `2026-03-10 09:10:00Z`: shorter in a narrow pane, still UTC and exact to the second. */
export function when(value: unknown): string {
  return typeof value === 'string' ? escapeHtml(value.replace('T', ' ').replace(/\.000Z$/, 'Z')) : escapeHtml(value);
}

/**
 * Table and cell looks are classes in the page's one `<style>` block (set once, not on each of
 * thousands of cells: a month's activity page stays a few MB); severity colours stay inline on
 * each badge, so a client that drops the style block still shows them.
 */
const PAGE_CSS = [
  '.gw table { border-collapse: collapse; width: 100%; table-layout: fixed; font-size: 12px; margin: 6px 0; word-wrap: break-word; overflow-wrap: anywhere }',
  '.gw td, .gw th { border: 1px solid #d1d5db; padding: 3px 5px; text-align: left; vertical-align: top }',
  '.gw th { background: #f9fafb }',
  '.gw th.k { width: 32%; font-weight: 600 }',
  '.gw .s { font-size: 10px; color: #6b7280; font-family: Menlo, Consolas, monospace }',
  '.gw .n { color: #6b7280 }',
  '.gw .note { font-size: 11px; color: #6b7280; margin: 2px 0 8px }',
];

/** A table of pre-escaped HTML cells; `widths` in percent keep it inside the pane. */
export function table(headers: string[], rows: string[][], widths?: number[]): string {
  const cols = widths ? `<colgroup>${widths.map((w) => `<col style="width:${w}%">`).join('')}</colgroup>` : '';
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('');
  return `<table>${cols}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

/** Label / value pairs as a two-column table (values pre-escaped). */
export function facts(pairs: [string, string][]): string {
  return `<table><tbody>${pairs.map(([k, v]) => `<tr><th class="k">${escapeHtml(k)}</th><td>${v}</td></tr>`).join('')}</tbody></table>`;
}

export interface HtmlContext {
  /** `reports.organisation` from the config: the print header and the page top name it. @default the signed report's metadata */
  organisation?: string | null;
  /** When the report was built (ISO); not part of the digest. @default the signed report's metadata, else now */
  generatedAt?: string;
}

/** The signing envelope beside a signed report's content (reports/signing.ts), read loosely: an unsigned report has none. */
function envelope(report: AnyReport): { organisation?: unknown; generatedAt?: unknown } {
  const m = (report as { metadata?: unknown }).metadata;
  return m && typeof m === 'object' ? (m as { organisation?: unknown; generatedAt?: unknown }) : {};
}

/**
 * A self-contained page (no script, no external resource) that reads in a 600 px mail pane and
 * prints to A4: organisation, report, period and generation time on every printed page, with
 * page numbers from CSS counters.
 */
export function renderHtml(report: AnyReport, context: HtmlContext = {}): string {
  const def = REPORTS[report.report];
  const meta = envelope(report);
  const organisation =
    context.organisation?.trim() || (typeof meta.organisation === 'string' && meta.organisation.trim()) || 'organisation not configured';
  const generatedAt = context.generatedAt ?? (typeof meta.generatedAt === 'string' ? meta.generatedAt : new Date().toISOString());
  const period = `${report.from} to ${report.to}`;
  const totals = Object.entries(report.totals)
    .map(([k, v]) => {
      const p = PALETTE[totalTone(k, v)];
      return `<span style="display:inline-block;margin:0 4px 4px 0;padding:2px 6px;border:1px solid #d1d5db;border-radius:3px;background:${p.bg};color:${p.fg}">${escapeHtml(k)} <b>${escapeHtml(v)}</b></span>`;
    })
    .join('');
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(def.title)}: ${escapeHtml(organisation)}</title>`,
    '<style>',
    `@page { size: A4; margin: 20mm 14mm 18mm 14mm;`,
    `  @top-left { content: ${cssString(`${organisation}: ${def.title}`)}; font-size: 9pt; color: #4b5563 }`,
    `  @top-right { content: ${cssString(period)}; font-size: 9pt; color: #4b5563 }`,
    `  @bottom-left { content: ${cssString(`generated ${generatedAt}`)}; font-size: 8pt; color: #6b7280 }`,
    '  @bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 8pt; color: #6b7280 } }',
    '@media print { .gw-page { max-width: none !important; padding: 0 !important } tr, .gw-keep { page-break-inside: avoid; break-inside: avoid }',
    '  thead { display: table-header-group } h2, h3 { page-break-after: avoid; break-after: avoid } }',
    ...PAGE_CSS,
    '</style></head>',
    '<body style="margin:0;padding:0;background:#ffffff">',
    '<div class="gw gw-page" style="max-width:600px;margin:0 auto;padding:12px;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:13px;line-height:1.4;color:#111827">',
    '<header style="border-bottom:2px solid #111827;padding-bottom:6px;margin-bottom:8px">',
    `<div style="font-size:11px;color:#4b5563">${escapeHtml(organisation)}</div>`,
    `<h1 style="font-size:18px;margin:2px 0">${escapeHtml(def.title)}</h1>`,
    `<div style="font-size:11px;color:#4b5563">Period ${when(report.from)} to ${when(report.to)} (end excluded) · generated ${when(generatedAt)}</div>`,
    '</header>',
    `<p style="margin:4px 0">${escapeHtml(def.description)}.</p>`,
    `<div style="margin:6px 0">${totals}</div>`,
    reportBody(report),
    `<p style="font-size:11px;color:#6b7280">SHA-256 digest of the report: <code style="overflow-wrap:anywhere">${escapeHtml(report.digest)}</code>.</p>`,
    evidenceBlock(report),
    '</div></body></html>',
    '',
  ].join('\n');
}
