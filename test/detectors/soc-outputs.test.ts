import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompleteAlert } from '../../detectors/alerts/alert.js';
import { teamsCard } from '../../detectors/alerts/outputs/teams.js';
import { DEMO_IDENTITIES, type DemoAlert, replayDemo } from '../support/demo-alerts.js';
import { loadOcsfSchema, validateOcsf } from '../support/ocsf-schema.js';

/**
 * Issue 13, item 5: PagerDuty Events API v2, Teams workflow webhook (Adaptive Card), syslog RFC 5424
 * over TCP and TLS, Slack chat.postMessage threads. Each receiver is a real local server that
 * checks the documented payload; the alerts are the demo day's, revoked through a webhook.
 */
const dir = mkdtempSync(join(tmpdir(), 'gw-soc-out-'));
const ROUTING_KEY = 'R0123456789abcdef0123456789abcd'.padEnd(32, 'x');
const TOKEN = 'xoxb-test-token';
type Json = DemoAlert;

const pd = { events: [] as Json[], rejected: [] as string[], open: new Map<string, number>(), resolved: new Set<string>() };
const teams = { cards: [] as Json[], rejected: [] as string[] };
const slack = { posts: [] as Json[], rejected: [] as string[], parents: new Set<string>(), seq: 0 };
let http: Server;
let base = '';

function pagerDuty(e: Json): string | null {
  if (e.routing_key !== ROUTING_KEY || String(e.routing_key).length !== 32) return 'routing_key must be the 32-character key';
  if (!['trigger', 'acknowledge', 'resolve'].includes(e.event_action)) return 'bad event_action';
  if (typeof e.dedup_key !== 'string' || e.dedup_key.length > 255) return 'dedup_key';
  if (e.event_action === 'trigger') {
    const p = e.payload ?? {};
    if (typeof p.summary !== 'string' || !p.summary || p.summary.length > 1024) return 'payload.summary';
    if (typeof p.source !== 'string' || !p.source) return 'payload.source';
    if (!['critical', 'error', 'warning', 'info'].includes(p.severity)) return 'payload.severity';
    if (p.timestamp && Number.isNaN(Date.parse(p.timestamp))) return 'payload.timestamp';
    for (const l of e.links ?? []) if (typeof l.href !== 'string') return 'links[].href';
  }
  return null;
}

function adaptiveCard(m: Json): string | null {
  if (m.type !== 'message' || !Array.isArray(m.attachments) || m.attachments.length !== 1) return 'not a message with one attachment';
  const a = m.attachments[0];
  if (a.contentType !== 'application/vnd.microsoft.card.adaptive') return 'contentType';
  const c = a.content;
  if (c?.type !== 'AdaptiveCard' || c.version !== '1.4' || !Array.isArray(c.body) || !c.body.length) return 'content';
  for (const b of c.body) {
    if (b.type === 'TextBlock' && typeof b.text !== 'string') return 'TextBlock.text';
    if (b.type === 'FactSet' && !b.facts.every((f: Json) => typeof f.title === 'string' && typeof f.value === 'string'))
      return 'FactSet.facts';
    if (!['TextBlock', 'FactSet'].includes(b.type)) return `unexpected element ${b.type}`;
  }
  if (JSON.stringify(m).length > 28_000) return 'over 28 KB';
  return null;
}

beforeAll(async () => {
  http = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString('utf8');
    });
    req.on('end', () => {
      const json = body ? (JSON.parse(body) as Json) : {};
      const reply = (status: number, out: unknown = {}) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(out));
      if (req.url === '/revoke') return reply(200, {});
      if (req.url === '/pd/v2/enqueue') {
        const bad = pagerDuty(json);
        if (bad) {
          pd.rejected.push(bad);
          return reply(400, { status: 'invalid event', message: 'Event object is invalid', errors: [bad] });
        }
        pd.events.push(json);
        if (json.event_action === 'trigger') pd.open.set(json.dedup_key, (pd.open.get(json.dedup_key) ?? 0) + 1);
        if (json.event_action === 'resolve' && pd.open.delete(json.dedup_key)) pd.resolved.add(json.dedup_key);
        return reply(202, { status: 'success', message: 'Event processed', dedup_key: json.dedup_key });
      }
      if (req.url === '/teams') {
        const bad = adaptiveCard(json);
        if (bad) teams.rejected.push(bad);
        else teams.cards.push(json);
        return reply(bad ? 400 : 202);
      }
      if (req.url === '/slack/api/chat.postMessage') {
        if (req.headers.authorization !== `Bearer ${TOKEN}`) return reply(200, { ok: false, error: 'invalid_auth' });
        if (json.channel !== 'C0SOC' || typeof json.text !== 'string') return reply(200, { ok: false, error: 'channel_not_found' });
        // Slack: thread_ts must be the parent's ts, never a reply's.
        if (json.thread_ts && !slack.parents.has(json.thread_ts)) {
          slack.rejected.push(`thread_ts ${json.thread_ts} is not a parent`);
          return reply(200, { ok: false, error: 'invalid_thread_ts' });
        }
        const ts = `1764000000.${String(++slack.seq).padStart(6, '0')}`;
        if (!json.thread_ts) slack.parents.add(ts);
        slack.posts.push({ ...json, ts });
        return reply(200, { ok: true, channel: 'C0SOC', ts, message: { text: json.text } });
      }
      reply(404);
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

/** A syslog receiver: octet-counted frames (RFC 6587 §3.4.1 / RFC 5425 §4.3). */
function syslogReceiver(tls: boolean): Promise<{ server: TcpServer; port: number; frames: string[]; bad: string[] }> {
  const frames: string[] = [];
  const bad: string[] = [];
  const onSocket = (s: Socket) => {
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const sp = buf.indexOf(0x20);
        if (sp < 0) return;
        const lenText = buf.subarray(0, sp).toString();
        if (!/^[1-9]\d*$/.test(lenText)) {
          bad.push(`bad MSG-LEN "${lenText}"`);
          buf = Buffer.alloc(0);
          return;
        }
        const len = Number(lenText);
        if (buf.length < sp + 1 + len) return;
        frames.push(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'));
        buf = buf.subarray(sp + 1 + len);
      }
    });
  };
  let server: TcpServer;
  if (tls) {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'syslog.key',
        '-out',
        'syslog.crt',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { cwd: dir, stdio: 'pipe' },
    );
    server = createTlsServer({ key: readFileSync(join(dir, 'syslog.key')), cert: readFileSync(join(dir, 'syslog.crt')) }, onSocket);
  } else server = createTcpServer(onSocket);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port, frames, bad })),
  );
}

const RFC5424 =
  /^<(\d{1,3})>1 (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z) ([\x21-\x7e]{1,255}) ([\x21-\x7e]{1,48}) (-|[\x21-\x7e]{1,128}) ([\x21-\x7e]{1,32}) (\[[^\s=\]"]{1,32}(?: [^\s=\]"]{1,32}="(?:[^"\\\]]|\\["\\\]])*")*\])+ \uFEFF(.*)$/s;

let run: { alerts: DemoAlert[] };
let tcp: Awaited<ReturnType<typeof syslogReceiver>>;
let tlsRx: Awaited<ReturnType<typeof syslogReceiver>>;

beforeAll(async () => {
  tcp = await syslogReceiver(false);
  tlsRx = await syslogReceiver(true);
  const identities = DEMO_IDENTITIES.map((i) =>
    i.id === 'k8s-breakglass' ? i : { ...i, revocation: { mode: 'auto', target: 'webhook' } },
  );
  run = await replayDemo(
    {
      pagerduty: { routingKey: ROUTING_KEY, url: `${base}/pd/v2/enqueue`, format: 'ecs' },
      teams: { url: `${base}/teams` },
      slack: { token: TOKEN, channel: 'C0SOC', apiUrl: `${base}/slack/api` },
      syslog: [
        { host: '127.0.0.1', port: tcp.port, tls: false, format: 'ocsf' },
        { host: '127.0.0.1', port: tlsRx.port, tls: true, caFile: join(dir, 'syslog.crt') },
      ],
    },
    ['--deliver'],
    { identities, revocation: { webhook: { url: `${base}/revoke`, secret: 'revoke-secret' } } },
  );
}, 120_000);

afterAll(async () => {
  await new Promise((r) => http.close(r));
  await new Promise((r) => tcp.server.close(r));
  await new Promise((r) => tlsRx.server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('PagerDuty Events API v2', () => {
  it('one incident per session (dedup_key), opened on high/critical alerts and resolved when the session is revoked', () => {
    expect(pd.rejected).toEqual([]);
    const revoked = run.alerts.filter((a) => a.type === 'breakglass.revocation' && a.revocation.outcome === 'revoked');
    expect(revoked.length).toBeGreaterThan(0);
    for (const r of revoked) expect(pd.resolved.has(`glasswatch:${r.sessionId}`)).toBe(true);
    const paged = run.alerts.filter((a) => a.severity === 'high' || a.severity === 'critical');
    expect(pd.events.length).toBe(paged.length);
    const sessions = new Set(paged.filter((a) => a.sessionId).map((a) => `glasswatch:${a.sessionId}`));
    for (const k of sessions) expect(pd.open.has(k) || pd.resolved.has(k)).toBe(true);
    const trigger = pd.events.find((e) => e.event_action === 'trigger' && e.payload.class === 'breakglass.unauthorized');
    expect(trigger?.payload).toMatchObject({
      severity: 'critical',
      custom_details: { ecs: { version: expect.stringMatching(/^9\./) }, event: { kind: 'alert' } },
    });
  });
});

describe('Microsoft Teams workflow webhook', () => {
  it('posts Adaptive Cards 1.4 in the incoming-webhook message shape; a session is grouped like e-mail', () => {
    expect(teams.rejected).toEqual([]);
    expect(teams.cards.length).toBeGreaterThan(0);
    expect(teams.cards.length).toBeLessThan(run.alerts.length);
    const unauthorized = teams.cards.find((c) => JSON.stringify(c).includes('UNAUTHORIZED'));
    expect(unauthorized?.attachments[0].content.body[1].facts.map((f: Json) => f.title)).toEqual(
      expect.arrayContaining(['Identity', 'Revocation', 'Session']),
    );
  });
});

describe('Teams card text', () => {
  it('a hostile principal cannot become a link or formatting in the card', () => {
    const a = { ...run.alerts[0], principal: '[click here](https://evil.example) *urgent*' } as CompleteAlert;
    const text = JSON.stringify(teamsCard(a));
    expect(text).not.toMatch(/[^\\]\]\(https/);
    expect(text).toContain('\\\\[click here\\\\]\\\\(https://evil.example\\\\) \\\\*urgent\\\\*');
  });
});

describe('Slack chat.postMessage with a bot token', () => {
  it("threads a session's messages under its first one; unauthorized and revocation alerts are broadcast", () => {
    expect(slack.rejected).toEqual([]);
    const bySession = new Map<string, Json[]>();
    for (const p of slack.posts) {
      const sid = /bgs-[0-9a-f]+/.exec(JSON.stringify(p))?.[0];
      if (sid) bySession.set(sid, [...(bySession.get(sid) ?? []), p]);
    }
    expect(bySession.size).toBeGreaterThan(0);
    let threaded = 0;
    for (const posts of bySession.values()) {
      expect(posts[0]?.thread_ts).toBeUndefined();
      for (const p of posts.slice(1)) {
        expect(p.thread_ts).toBe(posts[0]?.ts);
        threaded++;
      }
    }
    expect(threaded).toBeGreaterThan(0);
    expect(slack.posts.some((p) => p.thread_ts && p.reply_broadcast === true)).toBe(true);
  });
});

describe('syslog RFC 5424', () => {
  it('over TCP and TLS: one octet-counted frame per alert, valid header and structured data, the alert as MSG', async () => {
    await new Promise((r) => setTimeout(r, 200));
    for (const rx of [tcp, tlsRx]) {
      expect(rx.bad).toEqual([]);
      expect(rx.frames.length).toBe(run.alerts.length);
      for (const f of rx.frames) {
        const m = RFC5424.exec(f);
        expect(m, f.slice(0, 200)).not.toBeNull();
        expect(Number(m?.[1])).toBeLessThanOrEqual(191);
        expect(Math.floor(Number(m?.[1]) / 8)).toBe(10);
      }
    }
    const ids = new Set(run.alerts.map((a) => a.id));
    for (const f of tlsRx.frames) {
      const id = /\[glasswatch@32473 id="([^"]+)"/.exec(f)?.[1];
      expect(ids.has(id ?? '')).toBe(true);
      expect(JSON.parse(RFC5424.exec(f)?.[8] ?? '').schemaVersion).toBe('2.0');
    }
    process.stdout.write(
      `[measure] demo day ${run.alerts.length} alerts: PagerDuty ${pd.events.length} events (${pd.resolved.size} resolved, ${pd.open.size} open), Teams ${teams.cards.length} cards, Slack ${slack.posts.length} posts, syslog ${tcp.frames.length}+${tlsRx.frames.length} frames\n`,
    );
    // The TCP output is configured with format: ocsf.
    const schema = loadOcsfSchema();
    for (const f of tcp.frames) expect(validateOcsf(schema, JSON.parse(RFC5424.exec(f)?.[8] ?? ''), 'detection_finding')).toEqual([]);
  });
});
