import { ALERT_TYPES } from '../../detectors/alerts/alert.js';
import type { HealthSnapshot } from '../live.js';
import type { Row, SessionDetail, StoredHealth } from '../queries.js';
import { TRIAGE_STATES } from '../triage.js';
import { age, badge, type Html, html, when } from './html.js';

const SEVERITIES = ['critical', 'high', 'medium', 'low', 'informational'];

function sessionLink(id: unknown): Html {
  return html`<a href="/sessions/${encodeURIComponent(String(id ?? ''))}">${String(id ?? '').slice(0, 24)}</a>`;
}

function list(v: unknown): string {
  return Array.isArray(v) ? v.join(', ') : String(v ?? '');
}

export function nowView(sessions: Row[], clockMs: number): Html {
  const rows = sessions.map(
    (s) => html`<tr data-session="${s.session_id}">
<td>${sessionLink(s.session_id)}</td><td>${s.identity}</td><td>${s.principal}</td><td>${list(s.source_ips)}</td>
<td>${badge(s.verdict)}</td><td>${s.reason}</td><td>${s.ticket_id || '—'}</td><td>${when(s.start)}</td><td>${when(s.end)} <small>(${age(s.end, clockMs)} ago)</small></td>
<td class="num">${s.events}</td><td class="num">${s.activity_command}/${s.activity_data}/${s.activity_config}</td>
<td>${s.revocation_outcome ? badge(s.revocation_outcome) : '—'}</td></tr>`,
  );
  return html`<h1>Open break-glass sessions <small>${sessions.length} open at ${when(new Date(clockMs).toISOString())}</small></h1>
${
  sessions.length === 0
    ? html`<p class="empty">No break-glass session is open.</p>`
    : html`<table id="sessions"><thead><tr><th>session</th><th>identity</th><th>principal</th><th>source IP</th><th>verdict</th><th>reason</th>
<th>ticket</th><th>started</th><th>last event</th><th>events</th><th>command/data/config</th><th>revocation</th></tr></thead><tbody>${rows}</tbody></table>`
}`;
}

function triageForm(alertId: unknown, csrf: string, current: unknown): Html {
  // The usual next step is preselected: open → acknowledged → resolved.
  const next = current === 'acknowledged' || current === 'resolved' ? 'resolved' : 'acknowledged';
  const options = TRIAGE_STATES.map((s) => html`<option value="${s}"${s === next ? html` selected` : ''}>${s}</option>`);
  return html`<form method="post" action="/alerts/${encodeURIComponent(String(alertId))}/triage" class="triage">
<input type="hidden" name="_csrf" value="${csrf}"><select name="state" aria-label="triage state">${options}</select>
<input name="comment" maxlength="2000" placeholder="comment" aria-label="comment"><button type="submit">save</button></form>`;
}

function alertRows(alerts: Row[], csrf: string): Html[] {
  return alerts.map(
    (a) => html`<tr data-alert="${a.alert_id}" data-type="${a.type}">
<td>${when(a.detected_at)}</td><td>${a.type}</td><td>${badge(a.severity)}</td><td>${a.identity || '—'}</td><td>${a.principal || '—'}</td>
<td>${a.session_id ? sessionLink(a.session_id) : '—'}</td><td class="summary">${a.summary}</td>
<td class="triage-state">${badge(a.triage_state)}${a.triage_actor ? html`<br><small>${a.triage_actor}, ${when(a.triage_at)}${a.triage_comment ? html`: ${a.triage_comment}` : ''}</small>` : ''}</td>
<td>${triageForm(a.alert_id, csrf, a.triage_state)}</td></tr>`,
  );
}

function alertTable(alerts: Row[], csrf: string, id: string): Html {
  if (alerts.length === 0) return html`<p class="empty">No alerts.</p>`;
  return html`<table id="${id}"><thead><tr><th>detected</th><th>type</th><th>severity</th><th>identity</th><th>principal</th><th>session</th>
<th>summary</th><th>triage</th><th></th></tr></thead><tbody>${alertRows(alerts, csrf)}</tbody></table>`;
}

export interface AlertFilters {
  type: string;
  severity: string;
  identity: string;
  since: string;
  until: string;
  triage: string;
}

function select(name: string, values: readonly string[], current: string, label: string): Html {
  return html`<label>${label} <select name="${name}"><option value="">any</option>${values.map(
    (v) => html`<option value="${v}"${v === current ? html` selected` : ''}>${v}</option>`,
  )}</select></label>`;
}

export function alertsView(alerts: Row[], f: AlertFilters, csrf: string): Html {
  return html`<h1>Alerts <small>${alerts.length} shown, newest first</small></h1>
<form method="get" action="/alerts" class="filters">
${select('type', ALERT_TYPES, f.type, 'type')} ${select('severity', SEVERITIES, f.severity, 'severity')}
<label>identity <input name="identity" value="${f.identity}"></label>
<label>since <input name="since" value="${f.since}" placeholder="2026-11-20T00:00:00Z"></label>
<label>until <input name="until" value="${f.until}" placeholder="ISO time"></label>
${select('triage', TRIAGE_STATES, f.triage, 'triage')} <button type="submit">filter</button></form>
${alertTable(alerts, csrf, 'alerts')}`;
}

export function requestsView(o: { requested: Row[]; approved: Row[]; changes: Row[]; alerts: Row[]; clockMs: number; csrf: string }): Html {
  const ticket = (t: Row, extra: Html) =>
    html`<tr data-ticket="${t.ticket_id}"><td>${t.ticket_id}</td><td>${list(t.identities)}</td><td>${t.requester}</td><td>${list(t.approvers) || '—'}</td>
<td>${when(t.not_before)} → ${when(t.not_after)}</td><td>${t.reason}</td>${extra}</tr>`;
  return html`<h1>Requests</h1>
<h2>Waiting for approval <small>${o.requested.length}</small></h2>
${
  o.requested.length === 0
    ? html`<p class="empty">No request is waiting.</p>`
    : html`<table id="requested"><thead><tr><th>ticket</th><th>identities</th><th>requester</th><th>approvers</th><th>window</th><th>reason</th><th>waiting</th></tr></thead>
<tbody>${o.requested.map((t) => ticket(t, html`<td>${age(t.requested_at, o.clockMs)}</td>`))}</tbody></table>`
}
<h2>Approved windows, active or upcoming <small>${o.approved.length}</small></h2>
${
  o.approved.length === 0
    ? html`<p class="empty">No approved window is active or upcoming.</p>`
    : html`<table id="approved"><thead><tr><th>ticket</th><th>identities</th><th>requester</th><th>approvers</th><th>window</th><th>reason</th><th>state</th></tr></thead>
<tbody>${o.approved.map((t) => ticket(t, html`<td>${Date.parse(String(t.not_before)) <= o.clockMs ? 'active' : 'upcoming'}</td>`))}</tbody></table>`
}
<h2>Request and approval alerts</h2>
${alertTable(o.alerts, o.csrf, 'request-alerts')}
<h2>Recent changes</h2>
${
  o.changes.length === 0
    ? html`<p class="empty">No ticket yet.</p>`
    : html`<table id="changes"><thead><tr><th>when</th><th>ticket</th><th>status</th><th>identities</th><th>requester</th><th>approvers</th><th>window</th><th>via</th></tr></thead>
<tbody>${o.changes.map(
        (
          t,
        ) => html`<tr><td>${when(t.updated_at)}</td><td>${t.ticket_id}</td><td>${badge(t.status)}</td><td>${list(t.identities)}</td><td>${t.requester}</td>
<td>${list(t.approvers) || '—'}</td><td>${when(t.not_before)} → ${when(t.not_after)}</td><td>${t.origin}</td></tr>`,
      )}</tbody></table>`
}`;
}

/**
 * What later logs showed about a revocation (detectors/revoke/verify.ts): verified (quiet window),
 * ineffective (a revoked handle still worked: the handle and the event), or pending (still watched).
 */
function verificationCell(r: Row): Html | string {
  const v = String(r.verification ?? '');
  if (v === '') return '—';
  if (v === 'pending') return html`${badge('pending')} watching later logs`;
  const event = r.verify_event_id ? html` · event <code>${r.verify_event_id}</code>` : '';
  return html`${badge(v)} ${when(r.verified_at)} ${r.verify_detail}${event}`;
}

/** "Was this you?": each question to the identity's owner and what came of it (detectors/confirm). */
function confirmationsSection(steps: Row[]): Html {
  if (steps.length === 0) return html``;
  const yes = steps.find((c) => c.state === 'yes');
  return html`<h2>Was this you?</h2>
${yes ? html`<p class="problem">${badge('review')} The owner said it was them, under ticket <strong>${yes.ticket_id}</strong>: the session was not revoked and needs review.</p>` : ''}
<table id="confirmations"><thead><tr><th>at</th><th>step</th><th>via</th><th>owner</th><th>due</th><th>ticket</th><th>by</th><th>detail</th></tr></thead>
<tbody>${steps.map(
    (c) => html`<tr><td>${when(c.at)}</td><td>${badge(c.state)}</td><td>${c.via}</td><td>${c.owner}</td><td>${when(c.due_at)}</td>
<td>${c.ticket_id || '—'}</td><td>${c.actor}</td><td>${c.detail}</td></tr>`,
  )}</tbody></table>`;
}

export function sessionView(d: SessionDetail, csrf: string): Html {
  const s = d.session;
  const revocationAlerts = d.alerts.filter((a) => a.type === 'breakglass.revocation');
  const facts: [string, unknown][] = [
    ['identity', s.identity],
    ['principal', s.principal],
    ['source', s.source],
    ['source IPs', list(s.source_ips)],
    ['account / org / cluster', [s.account, s.org, s.cluster].filter(Boolean).join(' ') || '—'],
    ['started', when(s.start)],
    ['last event', when(s.end)],
    ['detected', when(s.detected_at)],
    ['events', s.events],
    ['activity command / data / config', `${s.activity_command} / ${s.activity_data} / ${s.activity_config}`],
    ['ticket', s.ticket_id || '—'],
  ];
  return html`<h1>Session ${s.session_id} ${badge(s.verdict)} <small>${s.reason}</small></h1>
<dl class="facts">${facts.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
<h2>Ticket and its versions</h2>
${
  d.ticket.length === 0
    ? html`<p class="empty">No ticket explains this session.</p>`
    : html`<table id="ticket-versions"><thead><tr><th>version</th><th>status</th><th>requester</th><th>approvers</th><th>window</th><th>scope</th><th>reason</th><th>via</th></tr></thead>
<tbody>${d.ticket.map(
        (t) => html`<tr><td>${when(t.updated_at)}</td><td>${badge(t.status)}</td><td>${t.requester}</td><td>${list(t.approvers) || '—'}</td>
<td>${when(t.not_before)} → ${when(t.not_after)}</td><td>${[list(t.scope_accounts), list(t.scope_orgs), list(t.scope_clusters)].filter(Boolean).join(' ') || 'any'}</td>
<td>${t.reason}</td><td>${t.origin}</td></tr>`,
      )}</tbody></table>`
}
<h2>Alerts</h2>
${alertTable(d.alerts, csrf, 'session-alerts')}
${confirmationsSection(d.confirmations)}
<h2>Revocation</h2>
${
  d.revocations.length === 0
    ? html`<p class="empty">No revocation was attempted.</p>`
    : html`<table id="revocations"><thead><tr><th>requested</th><th>target</th><th>principal</th><th>outcome</th><th>attempts</th><th>time to revoke</th><th>detail</th><th>verification</th><th>next step</th></tr></thead>
<tbody>${d.revocations.map(
        (
          r,
        ) => html`<tr><td>${when(r.requested_at)}</td><td>${r.target}</td><td>${r.principal}</td><td>${badge(r.outcome)}</td><td class="num">${r.attempts}</td>
<td class="num">${Number(r.time_to_revoke_ms) >= 0 ? `${r.time_to_revoke_ms} ms` : '—'}</td><td>${r.detail}</td>
<td class="verification">${verificationCell(r)}</td>
<td>${revocationAlerts.find((a) => a.summary && String(a.summary).includes(String(r.target)))?.summary ?? '—'}</td></tr>`,
      )}</tbody></table>`
}
<h2>Timeline <small>${d.events.length} events</small></h2>
<table id="timeline"><thead><tr><th>time</th><th>action</th><th>category</th><th>outcome</th><th>source IP</th><th>raw event</th></tr></thead>
<tbody>${d.events.map(
    (
      e,
    ) => html`<tr data-event="${e.id}"><td>${when(e.time)}</td><td>${e.action}</td><td>${(e.categories as string[]).length ? (e.categories as string[]).map((c) => badge(c)) : '—'}</td><td>${e.outcome}</td>
<td>${e.source_ip}</td><td><details><summary>${e.id}</summary><pre>${prettyRaw(e.raw)}</pre></details></td></tr>`,
  )}</tbody></table>`;
}

function prettyRaw(raw: unknown): string {
  if (typeof raw !== 'string') return JSON.stringify(raw, null, 2);
  try {
    return JSON.stringify(JSON.parse(raw), null, 2);
  } catch {
    return raw;
  }
}

export function healthView(live: HealthSnapshot, stored: StoredHealth, openSessions: number, clockMs: number): Html {
  const names = [...new Set([...live.sources.map((s) => s.source), ...stored.sources.map((s) => s.source)])].sort();
  const rows = names.map((name) => {
    const l = live.sources.find((s) => s.source === name);
    const st = stored.sources.find((s) => s.source === name);
    const last = l?.last_event ?? st?.last_event ?? null;
    return html`<tr data-source="${name}"><td>${name}</td><td>${when(last)}</td><td class="num">${l?.lag_seconds ?? '—'}</td>
<td class="num">${l?.events_per_second ?? 0}</td><td class="num">${st?.events ?? 0}</td><td class="num">${Math.max(l?.dead_letters ?? 0, st?.dead_letters ?? 0)}</td>
<td>${st?.last_silence ? html`${badge('open')} silent at ${when(st.last_silence)}` : 'no silence alert'}</td></tr>`;
  });
  return html`<h1>Health <small>at ${when(new Date(clockMs).toISOString())}</small></h1>
<h2>Sources</h2>
<table id="sources"><thead><tr><th>source</th><th>last event</th><th>lag (s)</th><th>events/s</th><th>stored events</th><th>dead letters</th><th>silence</th></tr></thead>
<tbody>${rows.length ? rows : html`<tr><td colspan="7" class="empty">No source has sent an event yet.</td></tr>`}</tbody></table>
<h2>Detector</h2>
<dl class="facts"><dt>open sessions</dt><dd id="open-sessions">${openSessions}</dd>
<dt>events/s</dt><dd>${live.detector ? live.detector.events_per_second : 'runs in another process (see its /metrics)'}</dd>
<dt>events judged</dt><dd>${live.detector ? live.detector.events : '—'}</dd>
<dt>console live clients</dt><dd>${live.sse_clients}</dd></dl>`;
}

export function loginView(csrf: string, problem: string | null): Html {
  return html`<h1>Log in</h1>
${problem ? html`<p class="problem" role="alert">${problem}</p>` : ''}
<form method="post" action="/login" class="login"><input type="hidden" name="_csrf" value="${csrf}">
<label>console token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">log in</button></form>
<p><small>Tokens are configured in <code>console.tokens</code>; <code>glasswatch demo --serve</code> prints a one-time token.</small></p>`;
}
