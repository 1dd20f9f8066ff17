import { REPORTS, rowsOf } from '../registry.js';
import type { ActivityReport, ActivitySession, AnyReport, CoverageReport, RotationReport, UnauthorizedReport } from '../types.js';
import { cellText, pick } from './cells.js';
import { badge, barChart, escapeHtml, facts, humanDuration, table, when } from './html.js';

/** Actions shown per session in the page, and in the whole page; every action is in the JSON and the CSV. */
export const HTML_ACTIONS_PER_SESSION = 25;
export const HTML_ACTIONS_PER_PAGE = 2000;

const NONE = '<span class="n">none</span>';
const small = (v: unknown) => `<span class="s">${escapeHtml(v)}</span>`;
const list = (v: string[] | null | undefined) => (v?.length ? escapeHtml(v.join(', ')) : NONE);
const text = (v: unknown) => (v === null || v === undefined || v === '' ? NONE : escapeHtml(v));
const duration = (ms: number | null) => (ms === null ? NONE : escapeHtml(humanDuration(ms)));
const h2 = (t: string) => `<h2 style="font-size:15px;margin:14px 0 4px">${escapeHtml(t)}</h2>`;
const note = (t: string) => `<p class="note">${escapeHtml(t)}</p>`;

function chart(report: AnyReport): string {
  const def = REPORTS[report.report];
  const counts = new Map<string, number>();
  for (const row of rowsOf(report)) {
    const key = cellText(pick(row, def.chartBy)) || '(none)';
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const svg = barChart(
    [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)),
    `${def.title}: rows by ${def.chartBy}`,
  );
  return svg ? `${h2(`By ${def.chartBy}`)}${svg}` : '<p>No rows in this period.</p>';
}

function scope(s: { account: string | null; org: string | null; cluster: string | null }): string {
  const parts = [s.account && `account ${s.account}`, s.org && `org ${s.org}`, s.cluster && `cluster ${s.cluster}`].filter(Boolean);
  return parts.length ? escapeHtml(parts.join(', ')) : NONE;
}

/**
 * Reads what a report may lack when it was not built by this version (a kept JSON copy, a report
 * assembled by hand): a missing list is empty, missing counts are not shown, never a crash.
 */
function activityText(events: number, a: ActivitySession['activity'] | undefined): string {
  return escapeHtml(a ? `${events} events: ${a.command} command, ${a.data} data, ${a.config} config` : `${events ?? '?'} events`);
}

function session(raw: ActivitySession, budget: { actions: number }): string {
  const s = { ...raw, actions: raw.actions ?? [], logValidation: raw.logValidation ?? { status: null, objects: [] } };
  const t = s.ticket;
  const head = `<h3 style="font-size:13px;margin:12px 0 2px">${escapeHtml(s.identity)} · ${when(s.start)} ${badge(s.verdict)}${s.reason ? ` ${badge(s.reason)}` : ''}</h3>`;
  const validation =
    s.source !== 'cloudtrail'
      ? '<span class="n">not applicable</span>'
      : s.logValidation.status === null
        ? badge('not validated', 'warning')
        : `${badge(s.logValidation.status)} ${escapeHtml(`(${s.logValidation.objects.length} log object${s.logValidation.objects.length === 1 ? '' : 's'})`)}`;
  const summary = facts([
    ['Principal', text(s.principal)],
    ['Requester', text(s.requester)],
    ['Approvers', list(s.approvers)],
    ['Scope', scope(s)],
    ['Source IPs', list(s.sourceIps)],
    ['Ticket', text(s.ticketId)],
    ['Duration', `${when(s.start)} to ${when(s.end)} (${duration(s.durationMs)})`],
    ['Activity', activityText(s.events, s.activity)],
    ['Time to detect', duration(s.timeToDetectMs)],
    ['Revocation', `${badge(s.revocation)}${s.timeToRevokeMs === null ? '' : ` in ${duration(s.timeToRevokeMs)}`}`],
    ['CloudTrail log validation', validation],
    ['Session', small(s.sessionId)],
  ]);
  const timeline = t
    ? table(
        ['Ticket step', 'When', 'By'],
        [
          ['requested', when(t.requestedAt), text(t.requestedBy)],
          ['approved', when(t.approvedAt), list(t.approvedBy)],
          ['used', when(t.usedAt), text(t.usedBy)],
          [
            t.closedAs ? escapeHtml(t.closedAs) : 'closed',
            t.closedAt ? when(t.closedAt) : '<span class="n">open</span>',
            t.closedAt ? `via ${text(t.closedVia)}` : '',
          ],
        ],
        [22, 38, 40],
      )
    : '';
  const shown = s.actions.slice(0, Math.min(HTML_ACTIONS_PER_SESSION, budget.actions));
  budget.actions -= shown.length;
  const capped = shown.length < Math.min(HTML_ACTIONS_PER_SESSION, s.actions.length);
  const actions = s.actions.length
    ? table(
        ['Time', 'Action (event id)', 'Target', 'Outcome', 'Category'],
        shown.map((a) => [
          when(a.time),
          `${escapeHtml(a.action)}<br>${small(a.eventId)}`,
          text(a.target),
          a.outcome === 'success' ? escapeHtml(a.outcome) : badge(a.outcome, 'violation'),
          text(a.category),
        ]),
        [18, 34, 22, 13, 13],
      ) +
      note(
        `${shown.length} of ${s.actions.length} actions shown${capped ? ` (the page shows at most ${HTML_ACTIONS_PER_PAGE} actions)` : ''}; every action is in the JSON and CSV.`,
      )
    : note('No stored events for this session (raw events may have been removed by retention).');
  const objects = s.logValidation.objects.filter((o) => o.status !== 'valid');
  const badObjects = objects.length
    ? table(
        ['Log object', 'Validation'],
        objects.slice(0, HTML_ACTIONS_PER_SESSION).map((o) => [small(o.objectKey), badge(o.status)]),
        [75, 25],
      )
    : '';
  return `<div class="gw-keep">${head}${summary}</div>${timeline}${actions}${badObjects}`;
}

function activity(raw: ActivityReport): string {
  const r = { ...raw, attempts: raw.attempts ?? [] };
  const budget = { actions: HTML_ACTIONS_PER_PAGE };
  const attempts = r.attempts.length
    ? table(
        ['Time', 'Identity', 'Principal', 'Source IP', 'Reason'],
        r.attempts.map((a) => [when(a.time), escapeHtml(a.identity), text(a.principal), text(a.sourceIp), text(a.reason)]),
        [22, 20, 22, 18, 18],
      )
    : note('No failed sign-ins in this period.');
  return [
    chart(r),
    h2(`Failed sign-ins (${r.attempts.length})`),
    attempts,
    h2(`Sessions (${r.sessions.length})`),
    ...r.sessions.map((s) => session(s, budget)),
  ].join('\n');
}

function unauthorized(r: UnauthorizedReport): string {
  const incidents = r.incidents.map((raw) => {
    const i = { ...raw, revocations: raw.revocations ?? [] };
    const head = `<h3 style="font-size:13px;margin:12px 0 2px">${escapeHtml(i.identity)} · ${when(i.start)} ${badge(i.reason)} ${badge(i.revocation)}</h3>`;
    const summary = facts([
      ['Principal', text(i.principal)],
      ['Ticket', text(i.ticketId)],
      ['Approvers', list(i.approvers)],
      ['Scope', scope(i)],
      ['Source IPs', list(i.sourceIps)],
      ['Duration', `${when(i.start)} to ${when(i.end)}`],
      ['Activity', activityText(i.events, i.activity)],
      ['Detected', `${when(i.detectedAt)} (${duration(i.timeToDetectMs)} after the first event)`],
      ['Unauthorized event', small(i.unauthorizedEventId)],
    ]);
    const revocations = i.revocations.length
      ? table(
          ['Target', 'Outcome', 'Verified', 'Attempts', 'Time to revoke', 'Detail'],
          i.revocations.map((v) => [
            escapeHtml(v.target),
            badge(v.outcome),
            verifiedCell(v),
            escapeHtml(v.attempts),
            duration(v.timeToRevokeMs),
            text([v.detail, v.verifyDetail].filter(Boolean).join(' · ')),
          ]),
          [13, 13, 14, 10, 14, 36],
        )
      : note('No revocation recorded.');
    return `<div class="gw-keep">${head}${summary}</div>${revocations}`;
  });
  return [chart(r), h2(`Incidents (${r.incidents.length})`), ...incidents].join('\n');
}

/** Whether later logs proved the revocation held; a kept report from before verification shows none. */
function verifiedCell(v: { outcome: string; verified?: boolean | null; verifyEventId?: string | null }): string {
  if (v.verified === true) return badge('verified');
  if (v.verified === false) return `${badge('ineffective')}${v.verifyEventId ? `<br>${small(v.verifyEventId)}` : ''}`;
  return v.outcome === 'revoked' ? badge('not verified', 'neutral') : badge(null);
}

function coverage(r: CoverageReport): string {
  const rows = r.findings.map((f) => [
    badge(f.kind),
    `${text(f.ticketId)}<br>${small(f.identities.join(', '))}`,
    `${text(f.requester)}<br>${small(`approved by ${f.approvers.join(', ') || 'nobody'}`)}`,
    f.notBefore ? `${when(f.notBefore)}<br>${when(f.notAfter)}` : text(null),
    f.start ? `${when(f.start)}<br>${when(f.end)}` : f.uses === null ? text(null) : escapeHtml(`${f.uses} uses`),
    f.earlyMs !== null ? `${duration(f.earlyMs)} early` : f.overrunMs !== null ? `${duration(f.overrunMs)} over` : text(f.reason),
  ]);
  return [
    chart(r),
    h2(`Findings (${r.findings.length})`),
    rows.length ? table(['Kind', 'Ticket', 'Requester', 'Window', 'Use', 'By how much'], rows, [17, 17, 20, 16, 16, 14]) : '',
  ].join('\n');
}

function rotation(r: RotationReport): string {
  const rows = r.findings.map((f) => [
    escapeHtml(f.check),
    `${escapeHtml(f.identity)}<br>${small(`${f.principal}${f.scope ? ` @ ${f.scope}` : ''} (${f.kind})`)}`,
    when(f.usedAt),
    when(f.dueBy),
    f.rotatedAt ? `${when(f.rotatedAt)}<br>${small(f.evidence)}` : f.historySince ? `none since ${when(f.historySince)}` : text(null),
    badge(f.status),
  ]);
  return [
    chart(r),
    note(`Rotation due ${r.afterUseHours} h after a use, and at least every ${r.maxAgeDays} days.`),
    h2(`Findings (${r.findings.length})`),
    rows.length ? table(['Check', 'Credential', 'Used', 'Due by', 'Rotated', 'Status'], rows, [12, 24, 16, 16, 18, 14]) : '',
  ].join('\n');
}

export function reportBody(report: AnyReport): string {
  switch (report.report) {
    case 'breakglass-activity':
      return activity(report);
    case 'unauthorized-use':
      return unauthorized(report);
    case 'ticket-coverage':
      return coverage(report);
    case 'rotation-compliance':
      return rotation(report);
  }
}
