// The console's JSON API, login, CSRF and live stream against a real `glasswatch start` (in-process bus,
// chDB, the Kubernetes audit webhook and the signed tickets endpoint), driven with plain fetch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectStore } from '../../core/store/index.js';
import {
  auditEvent,
  bearer,
  CONSOLE_TOKEN,
  openStream,
  type Pipeline,
  postAudit,
  removeDir,
  startPipeline,
  submitTicket,
  ticket,
  waitFor,
} from './harness.js';

type Json = Record<string, unknown>;

describe('console API on glasswatch start', () => {
  let p: Pipeline;
  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${p.consoleUrl}${path}`, { ...init, headers: { ...bearer, ...(init.headers as Record<string, string>) } });
    return { status: res.status, body: (await res.json()) as Json, headers: res.headers };
  };
  let alertId = '';
  let sessionId = '';

  beforeAll(async () => {
    p = await startPipeline();
  }, 120_000);
  afterAll(async () => {
    if (p) {
      await p.stop();
      removeDir(p.dir);
    }
  });

  it('refuses every page and API call without a valid token (401), and serves a CSP without inline script', async () => {
    for (const path of ['/api/sessions', '/api/alerts', '/api/tickets', '/api/stream', '/api/sessions/x']) {
      const res = await fetch(`${p.consoleUrl}${path}`);
      expect(res.status, path).toBe(401);
      expect(((await res.json()) as Json).error).toBe('authentication required');
    }
    const wrong = await fetch(`${p.consoleUrl}/api/sessions`, { headers: { authorization: `Bearer ${CONSOLE_TOKEN}x` } });
    expect(wrong.status).toBe(401);
    for (const path of ['/', '/alerts', '/requests', '/health', '/sessions/x']) {
      const res = await fetch(`${p.consoleUrl}${path}`, { redirect: 'manual' });
      expect(res.status, path).toBe(401);
      expect(await res.text()).toContain('Log in first');
    }
    const triage = await fetch(`${p.consoleUrl}/api/alerts/x/triage`, { method: 'POST', body: '{"state":"resolved"}' });
    expect(triage.status).toBe(401);
    const page = await fetch(`${p.consoleUrl}/login`);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
  });

  it('pushes a break-glass event accepted by the webhook to the SSE stream, and serves it as sessions and alerts', async () => {
    const stream = await openStream(`${p.consoleUrl}/api/stream`, bearer);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    await waitFor('the stream to say hello', () => stream.events.some((e) => e.event === 'hello'));
    const sent = performance.now();
    expect(await postAudit(p.webhookUrl, [auditEvent('api-bg-1', { ip: '10.9.8.7' })])).toBe(200);
    const pushed = await waitFor('the unauthorized alert on the stream', () =>
      stream.events.find((e) => e.event === 'alert' && (JSON.parse(e.data) as { alert: Json }).alert.type === 'breakglass.unauthorized'),
    );
    // Then `stored`: the alert's and its session's rows are in the store, and every view renders them.
    await waitFor('the stored message', () => stream.events.some((e) => e.event === 'stored' && e.at >= pushed.at));
    stream.close();
    // The bar is 2 s at p99 (npm run bench:console measures it); one event on a shared CI machine gets slack.
    expect(pushed.at - sent).toBeLessThan(5000);
    const alert = (JSON.parse(pushed.data) as { alert: Json }).alert;
    expect(alert).toMatchObject({ identity: 'k8s-breakglass', principal: 'breakglass-admin', source_ip: '10.9.8.7', severity: 'critical' });
    alertId = String(alert.alert_id);
    sessionId = String(alert.session_id);

    const open = await api('/api/sessions?state=open');
    expect(open.status).toBe(200);
    const sessions = open.body.sessions as Json[];
    const s = sessions.find((x) => x.session_id === sessionId);
    expect(s).toMatchObject({ identity: 'k8s-breakglass', principal: 'breakglass-admin', verdict: 'unauthorized', reason: 'no_ticket' });
    expect(s?.source_ips).toEqual(['10.9.8.7']);
    expect(s?.revocation_outcome).toBe('manual');
    expect((await api('/api/sessions?state=all')).body.sessions).toEqual(
      expect.arrayContaining([expect.objectContaining({ session_id: sessionId })]),
    );
    expect((await api('/api/sessions?state=closed')).status).toBe(400);

    const detail = await api(`/api/sessions/${encodeURIComponent(sessionId)}`);
    expect(detail.status).toBe(200);
    const events = detail.body.events as Json[];
    expect(events.map((e) => e.id)).toEqual(['api-bg-1']);
    expect(JSON.parse(String(events[0]!.raw))).toMatchObject({ auditID: 'api-bg-1', verb: 'list' });
    expect(events[0]!.categories).toEqual(['command', 'data']);
    expect((detail.body.alerts as Json[]).map((a) => a.type)).toEqual(
      expect.arrayContaining(['breakglass.unauthorized', 'breakglass.revocation']),
    );
    expect(detail.body.revocations).toEqual([expect.objectContaining({ outcome: 'manual', session_id: sessionId })]);
    expect((await api('/api/sessions/no-such-session')).status).toBe(404);

    const critical = await api('/api/alerts?type=breakglass.unauthorized&severity=critical');
    expect((critical.body.alerts as Json[]).map((a) => a.alert_id)).toContain(alertId);
    expect((critical.body.alerts as Json[])[0]).toMatchObject({ triage_state: 'open', triage_actor: null });
    const future = await api(`/api/alerts?since=${new Date(Date.now() + 3_600_000).toISOString()}`);
    expect(future.body.alerts).toEqual([]);
    const zoneless = await api('/api/alerts?since=2026-11-20T10:00:00');
    expect(zoneless.status).toBe(400);
    expect(String(zoneless.body.error)).toContain('with a zone');
    expect((await api('/api/alerts?severity=low&type=breakglass.unauthorized')).body.alerts).toEqual([]);
  });

  it('records triage with who, when and comment; refuses a bad state and an unknown alert', async () => {
    const before = Date.now();
    const post = await api(`/api/alerts/${alertId}/triage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ state: 'acknowledged', comment: 'paging the payments on-call' }),
    });
    expect(post.status).toBe(201);
    expect(post.body.triage).toMatchObject({
      alert_id: alertId,
      state: 'acknowledged',
      actor: 'soc-alice',
      comment: 'paging the payments on-call',
    });
    const acked = await api('/api/alerts?triage=acknowledged');
    const row = (acked.body.alerts as Json[]).find((a) => a.alert_id === alertId);
    expect(row).toMatchObject({ triage_state: 'acknowledged', triage_actor: 'soc-alice', triage_comment: 'paging the payments on-call' });
    expect(Date.parse(String(row?.triage_at))).toBeGreaterThanOrEqual(before - 1000);
    expect((await api('/api/alerts?triage=open')).body.alerts).not.toEqual(
      expect.arrayContaining([expect.objectContaining({ alert_id: alertId })]),
    );
    const bad = await api(`/api/alerts/${alertId}/triage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ state: 'ignored' }),
    });
    expect(bad.status).toBe(400);
    const unknown = await api('/api/alerts/gw-nope/triage', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ state: 'resolved' }),
    });
    expect(unknown.status).toBe(404);
  });

  it('browser login: HttpOnly SameSite=Strict cookie; state changes need the CSRF token and this origin', async () => {
    const loginPage = await fetch(`${p.consoleUrl}/login`);
    const loginCookie = (loginPage.headers.get('set-cookie') ?? '').split(';')[0]!;
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await loginPage.text())![1]!;
    const form = (token: string, c = csrf) => new URLSearchParams({ _csrf: c, token }).toString();
    const formHeaders = { 'content-type': 'application/x-www-form-urlencoded', cookie: loginCookie };
    const wrong = await fetch(`${p.consoleUrl}/login`, {
      method: 'POST',
      headers: formHeaders,
      body: form('not-the-token'),
      redirect: 'manual',
    });
    expect(wrong.status).toBe(401);
    const forgedLogin = await fetch(`${p.consoleUrl}/login`, {
      method: 'POST',
      headers: formHeaders,
      body: form(CONSOLE_TOKEN, 'forged'),
      redirect: 'manual',
    });
    expect(forgedLogin.status).toBe(403);
    const ok = await fetch(`${p.consoleUrl}/login`, {
      method: 'POST',
      headers: formHeaders,
      body: form(CONSOLE_TOKEN),
      redirect: 'manual',
    });
    expect(ok.status).toBe(303);
    const setCookie = ok.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/gw_session=[^;]+;.*HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    const session = /gw_session=[^;]+/.exec(setCookie)![0];
    const home = await fetch(`${p.consoleUrl}/`, { headers: { cookie: session } });
    expect(home.status).toBe(200);
    const html = await home.text();
    const pageCsrf = /<meta name="csrf-token" content="([^"]+)">/.exec(html)![1]!;
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<]/); // no inline script: only <script src=... defer></script>

    const triage = (headers: Record<string, string>) =>
      fetch(`${p.consoleUrl}/api/alerts/${alertId}/triage`, {
        method: 'POST',
        headers: { cookie: session, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ state: 'resolved', comment: 'by browser' }),
      });
    expect((await triage({})).status).toBe(403);
    expect((await triage({ 'x-csrf-token': 'forged-token' })).status).toBe(403);
    expect((await triage({ 'x-csrf-token': pageCsrf, origin: 'http://evil.example' })).status).toBe(403);
    expect((await triage({ 'x-csrf-token': pageCsrf })).status).toBe(201);
    const resolved = await api('/api/alerts?triage=resolved');
    expect((resolved.body.alerts as Json[]).find((a) => a.alert_id === alertId)).toMatchObject({
      triage_actor: 'soc-alice',
      triage_comment: 'by browser',
    });
  });

  it('escapes every value: a principal made of markup is text on the page', async () => {
    const evil = '<img src=x onerror=alert(1)>"\'<script>alert(2)</script>';
    expect(await postAudit(p.webhookUrl, [auditEvent('api-bg-evil', { user: evil, groups: ['system:masters'], ip: '10.66.66.66' })])).toBe(
      200,
    );
    const s = await waitFor('the markup session', async () =>
      ((await api('/api/sessions?state=open')).body.sessions as Json[]).find((x) => x.principal === evil),
    );
    const page = await (await fetch(`${p.consoleUrl}/`, { headers: bearer })).text();
    expect(page).not.toContain('<img src=x');
    expect(page).not.toContain('<script>alert(2)');
    expect(page).toContain('&#60;img src=x onerror=alert(1)&#62;&#34;&#39;&#60;script&#62;');
    const detail = await (await fetch(`${p.consoleUrl}/sessions/${encodeURIComponent(String(s.session_id))}`, { headers: bearer })).text();
    expect(detail).not.toContain('<script>alert(2)');
  });

  it('lists requested and approved tickets', async () => {
    const now = new Date();
    expect(await submitTicket(p.ticketsUrl, ticket('CHG-API-1', 'requested', now))).toBe(202);
    const requested = await waitFor('the request in /api/tickets', async () =>
      ((await api('/api/tickets?status=requested')).body.tickets as Json[]).find((t) => t.ticket_id === 'CHG-API-1'),
    );
    expect(requested).toMatchObject({ status: 'requested', requester: 'dave@example.com', identities: ['k8s-breakglass'], versions: 1 });
    expect((await api('/api/tickets?status=approved')).body.tickets).toEqual([]);
    expect(await submitTicket(p.ticketsUrl, ticket('CHG-API-1', 'approved', new Date(now.getTime() + 1000)))).toBe(202);
    const approved = await waitFor('the approval in /api/tickets', async () =>
      ((await api('/api/tickets?status=approved')).body.tickets as Json[]).find((t) => t.ticket_id === 'CHG-API-1'),
    );
    expect(approved).toMatchObject({ status: 'approved', approvers: ['erin@example.com'], versions: 2, requested_at: now.toISOString() });
    expect((await api('/api/tickets?status=requested')).body.tickets).toEqual([]);
    expect((await api('/api/tickets?status=waiting')).status).toBe(400);
  });

  it('slows down token guessing: the 21st login within a minute from one address gets 429', async () => {
    const loginPage = await fetch(`${p.consoleUrl}/login`);
    const cookie = (loginPage.headers.get('set-cookie') ?? '').split(';')[0]!;
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await loginPage.text())![1]!;
    const statuses: number[] = [];
    for (let i = 0; i < 22; i++) {
      const res = await fetch(`${p.consoleUrl}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams({ _csrf: csrf, token: `guess-${i}` }).toString(),
      });
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
  });

  it('puts every triage action in the audit chain (evidence tables go through insertRows)', async () => {
    expect(await p.stop()).toBe(0);
    const store = await connectStore({ kind: 'chdb', path: p.storePath }, { create: false });
    try {
      const rows = await (
        await store.client.query({
          query: "SELECT key, content FROM audit_log WHERE tbl = 'alert_triage' ORDER BY seq",
          format: 'JSONEachRow',
        })
      ).json<{ key: string; content: string }>();
      expect(rows.length).toBe(2);
      expect(rows.map((r) => JSON.parse(r.content).state)).toEqual(['acknowledged', 'resolved']);
      const triage = await (
        await store.client.query({ query: 'SELECT state, actor FROM alert_triage ORDER BY at', format: 'JSONEachRow' })
      ).json();
      expect(triage).toEqual([
        { state: 'acknowledged', actor: 'soc-alice' },
        { state: 'resolved', actor: 'soc-alice' },
      ]);
    } finally {
      await store.close();
    }
  });
});
