/**
 * HTML building blocks. Every value reaches the page through `esc` (text and attributes alike):
 * a principal, a ticket reason or a raw event is written by the person glasswatch watches.
 */
export function esc(value: unknown): string {
  if (value === null || value === undefined) return '';
  return String(value).replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A trusted HTML string (built only from `esc`aped values and literals). */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** Tagged template: interpolated values are escaped unless they are `Html` (or arrays of it). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

function render(v: unknown): string {
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  return esc(v);
}

/** `2026-11-20T22:41:03.000Z` → `2026-11-20 22:41:03Z`. */
export function when(iso: unknown): string {
  if (typeof iso !== 'string' || iso === '' || iso.startsWith('1970-01-01')) return '—';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function age(fromIso: unknown, nowMs: number): string {
  const t = typeof fromIso === 'string' ? Date.parse(fromIso) : Number.NaN;
  if (!Number.isFinite(t)) return '—';
  const s = Math.max(0, Math.round((nowMs - t) / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

/** A short badge whose class comes from a fixed list (never from the value itself). */
export function badge(value: unknown): Html {
  const v = String(value ?? '');
  const known: Record<string, string> = {
    unauthorized: 'bad',
    authorized: 'ok',
    attempt: 'warn',
    critical: 'bad',
    high: 'bad',
    medium: 'warn',
    low: 'info',
    informational: 'info',
    open: 'warn',
    acknowledged: 'info',
    resolved: 'ok',
    revoked: 'ok',
    failed: 'bad',
    manual: 'warn',
    not_revocable: 'bad',
    requested: 'warn',
    approved: 'ok',
    verified: 'ok',
    ineffective: 'bad',
    pending: 'warn',
    asked: 'warn',
    yes: 'warn',
    review: 'warn',
    no: 'bad',
    timeout: 'bad',
    undelivered: 'bad',
  };
  return html`<span class="badge ${new Html(known[v] ?? 'plain')}">${v || '—'}</span>`;
}

export const NAV = [
  ['now', '/', 'Now'],
  ['requests', '/requests', 'Requests'],
  ['alerts', '/alerts', 'Alerts'],
  ['health', '/health', 'Health'],
] as const;

export function page(o: { title: string; view: string; csrf: string | null; user: string | null; body: Html }): string {
  const nav = NAV.map(([id, href, label]) => html`<a href="${href}"${new Html(id === o.view ? ' aria-current="page"' : '')}>${label}</a>`);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>glasswatch — ${o.title}</title>
<link rel="stylesheet" href="/static/console.css">
<script src="/static/console.js" defer></script>
${o.csrf ? html`<meta name="csrf-token" content="${o.csrf}">` : ''}
</head>
<body>
<header>
<span class="brand">glasswatch</span>
${
  o.user
    ? html`<nav>${nav}</nav><span class="live" id="live" title="live updates">live</span>
<form method="post" action="/logout" class="logout"><input type="hidden" name="_csrf" value="${o.csrf ?? ''}"><span>${o.user}</span> <button type="submit">log out</button></form>`
    : ''
}
</header>
<main id="view" data-view="${o.view}">
${o.body}
</main>
</body>
</html>
`.text;
}
