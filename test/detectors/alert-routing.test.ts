import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.js';
import { type Alert, alertId } from '../../detectors/alerts/alert.js';
import { AlertDispatcher, MemoryDeliveryLedger } from '../../detectors/alerts/dispatcher.js';
import { RuleMatchThrottle, routeAccepts, SessionGrouper } from '../../detectors/alerts/routing.js';
import { type DemoAlert, replayDemo } from '../support/demo-alerts.js';

/**
 * Issue 13, item 4: routing per output, a session's activity grouped for e-mail and chat, and
 * dedup/threshold for rule.match. Measured on the demo day through a real SMTP server.
 */
interface Mail {
  subject: string;
  ids: string[];
  data: string;
}
const mails: Mail[] = [];
let smtp: SMTPServer;
let port = 0;

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, _session, cb) {
      let data = '';
      stream.on('data', (c: Buffer) => {
        data += c.toString();
      });
      stream.on('end', () => {
        const header = (name: string) =>
          new RegExp(`^${name}: (.*(?:\\r?\\n[ \\t].*)*)`, 'mi').exec(data)?.[1]?.replace(/\r?\n[ \t]/g, ' ') ?? '';
        mails.push({ subject: header('Subject'), ids: header('X-Glasswatch-Alert-Id').split(' ').filter(Boolean), data });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
  port = (smtp.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((r) => smtp.close(() => r()));
});

async function demoMails(email: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  mails.length = 0;
  const run = await replayDemo(
    (dir) => ({ email: { from: 'gw@example.com', to: ['soc@example.com'], ...email }, jsonl: join(dir, 'all.jsonl'), ...extra }),
    ['--deliver'],
    { smtp: { host: '127.0.0.1', port } },
  );
  const sent = [...mails];
  const jsonl = readFileSync(join(run.dir, 'all.jsonl'), 'utf8').trim().split('\n');
  return { alerts: run.alerts, sent, jsonl };
}

/** The target: at most one mail per session per window, plus the alerts that are not session activity. */
function bound(alerts: DemoAlert[], windowMs: number): number {
  const urgent = new Set(['breakglass.unauthorized', 'breakglass.revocation', 'breakglass.attempt']);
  let n = alerts.filter((a) => !a.sessionId || urgent.has(a.type)).length;
  const bySession = new Map<string, number[]>();
  for (const a of alerts.filter((x) => x.sessionId && !urgent.has(x.type)))
    bySession.set(a.sessionId, [...(bySession.get(a.sessionId) ?? []), Date.parse(a.detectedAt)]);
  for (const times of bySession.values()) n += Math.floor((Math.max(...times) - Math.min(...times)) / windowMs) + 1;
  return n;
}

describe('e-mail of the demo day', () => {
  it('groups a session into one mail per window (default 60 s); JSON lines keeps every alert; nothing is lost', async () => {
    const { alerts, sent, jsonl } = await demoMails({});
    const one = await demoMails({ groupWindowSeconds: 0 });
    process.stdout.write(
      `[measure] demo day: ${alerts.length} alerts; e-mails sent ungrouped ${one.sent.length}, grouped (60 s) ${sent.length}; bound ${bound(alerts, 60_000)}; unauthorized ${alerts.filter((a) => a.type === 'breakglass.unauthorized').length}\n`,
    );
    expect(one.sent.length).toBe(alerts.length);
    expect(sent.length).toBeLessThan(alerts.length);
    expect(sent.length).toBeLessThanOrEqual(bound(alerts, 60_000));
    expect(jsonl.length).toBe(alerts.length);
    // Every alert reached the SOC: in its own mail or in a grouped update.
    expect(new Set(sent.flatMap((m) => m.ids))).toEqual(new Set(alerts.map((a) => a.id)));
    const grouped = sent.filter((m) => m.ids.length > 1);
    expect(grouped.length).toBeGreaterThan(0);
    for (const m of grouped) expect(m.subject).toMatch(/update\(s\) in break-glass session bgs-/);
    // Unauthorized alerts are never held.
    for (const a of alerts.filter((x) => x.type === 'breakglass.unauthorized'))
      expect(sent.some((m) => m.ids.length === 1 && m.ids[0] === a.id)).toBe(true);
  });

  it('routes by minSeverity, types and identities', async () => {
    const high = await demoMails({ minSeverity: 'high', groupWindowSeconds: 0 });
    expect(high.sent.length).toBe(high.alerts.filter((a) => a.severity === 'high' || a.severity === 'critical').length);
    const types = await demoMails({ types: ['breakglass.unauthorized', 'breakglass.revocation'], groupWindowSeconds: 0 });
    expect(types.sent.length).toBe(
      types.alerts.filter((a) => a.type === 'breakglass.unauthorized' || a.type === 'breakglass.revocation').length,
    );
    expect(types.sent.length).toBeGreaterThan(0);
    const root = await demoMails({ identities: ['aws-root'], groupWindowSeconds: 0 });
    expect(root.sent.length).toBe(root.alerts.filter((a) => a.identity === 'aws-root').length);
    expect(root.sent.length).toBeGreaterThan(0);
  });

  it('fails closed on a routing typo: unknown identity, type or severity names the field', async () => {
    await expect(demoMails({ identities: ['aws-rot'] })).rejects.toThrow(/alerts\.email\.identities: unknown identity "aws-rot"/);
    await expect(demoMails({ types: ['breakglass.unauthorised'] })).rejects.toThrow(/alerts\.email\.types: unknown alert type/);
    await expect(demoMails({ minSeverity: 'urgent' })).rejects.toThrow(/alerts\.email\.minSeverity/);
  });
});

const ruleMatch = (n: number, atMs: number, principal = 'alice'): Alert => ({
  id: alertId('rule.match', String(n)),
  type: 'rule.match',
  severity: 'medium',
  identity: null,
  source: 'cloudtrail',
  eventIds: [`e${n}`],
  ticketId: null,
  reason: null,
  category: null,
  ruleId: 'r-1',
  ruleTitle: 'Rule one',
  ruleAuthor: null,
  sessionId: null,
  principal,
  sourceIp: null,
  time: new Date(atMs).toISOString(),
  detectedAt: new Date(atMs).toISOString(),
  summary: 'x',
});

describe('rule.match dedup and threshold', () => {
  const t0 = Date.parse('2026-11-20T10:00:00Z');
  it('dedupSeconds: one alert per rule and principal per period', () => {
    const th = new RuleMatchThrottle({ dedupSeconds: 300, threshold: 1 });
    const admitted = [0, 60, 299, 300, 301, 700].map((s, i) => th.admit(ruleMatch(i, t0 + s * 1000)));
    expect(admitted).toEqual([true, false, false, true, false, true]);
    expect(th.admit(ruleMatch(9, t0 + 61_000, 'bob'))).toBe(true);
  });
  it('threshold: the n-th match within the period alerts; per-rule settings override the global ones', () => {
    const th = new RuleMatchThrottle({ dedupSeconds: 0, threshold: 1 }, new Map([['r-1', { dedupSeconds: 600, threshold: 3 }]]));
    const admitted = [0, 10, 20, 30, 40].map((s, i) => th.admit(ruleMatch(i, t0 + s * 1000)));
    expect(admitted).toEqual([false, false, true, false, false]);
    expect(th.suppressed).toBe(4);
    expect(th.admit({ ...ruleMatch(7, t0), ruleId: 'other' })).toBe(true);
  });
  it('from config, on the demo day: rule.match alerts below the threshold are not sent, the others untouched', async () => {
    const open = await demoMails({ groupWindowSeconds: 0 });
    const rm = open.alerts.filter((a) => a.type === 'rule.match');
    expect(rm.length).toBeGreaterThan(0);
    const rules = Object.fromEntries([...new Set(rm.map((a) => a.ruleId))].map((id) => [id, { threshold: 1000, dedupSeconds: 3600 }]));
    const throttled = await demoMails({ groupWindowSeconds: 0 }, { ruleMatch: { rules } });
    expect(throttled.sent.length).toBe(open.sent.length - rm.length);
    // Still raised and recorded (store, --alerts-out): only delivery is thresholded.
    expect(throttled.alerts.filter((a) => a.type === 'rule.match').length).toBe(rm.length);
  });
});

describe('routing and grouping units', () => {
  it('routeAccepts: an identities filter drops alerts without identity', () => {
    const a = ruleMatch(1, 0);
    expect(routeAccepts({ identities: ['aws-root'] }, a)).toBe(false);
    expect(routeAccepts({ minSeverity: 'medium', types: ['rule.match'] }, a)).toBe(true);
    expect(routeAccepts({ minSeverity: 'high' }, a)).toBe(false);
  });
  it('SessionGrouper: first at once, then one update per window, the rest drained at close', () => {
    const g = new SessionGrouper(60_000);
    const at = (s: number, type: Alert['type'] = 'breakglass.activity') =>
      ({ ...ruleMatch(s, Date.parse('2026-11-20T10:00:00Z') + s * 1000), type, sessionId: 'bgs-1' }) as never;
    expect(g.offer(at(0, 'breakglass.authorized'))).toHaveLength(1);
    expect(g.offer(at(10))).toHaveLength(0);
    expect(g.offer(at(20))).toHaveLength(0);
    expect(g.offer(at(25, 'breakglass.unauthorized'))).toHaveLength(1);
    expect(g.offer(at(61))).toHaveLength(3);
    expect(g.offer(at(70))).toHaveLength(0);
    expect(g.due(Date.parse('2026-11-20T10:01:30Z'))).toHaveLength(0);
    expect(g.due(Date.parse('2026-11-20T10:02:01Z'))).toEqual([[expect.objectContaining({ eventIds: ['e70'] })]]);
    expect(g.offer(at(200))).toHaveLength(1);
    expect(g.offer(at(210))).toHaveLength(0);
    expect(g.drain()).toHaveLength(1);
    expect(g.held).toBe(0);
  });
  it('live: a held update is sent by the timer once its window has passed, and close() sends what is still held', async () => {
    const sent: string[][] = [];
    const output = {
      name: 'chat',
      routing: { groupWindowSeconds: 1 },
      async send(a: Alert) {
        sent.push([a.id]);
        return null;
      },
      async sendGroup(list: { id: string }[]) {
        sent.push(list.map((a) => a.id));
        return null;
      },
    };
    const d = new AlertDispatcher([output], new MemoryDeliveryLedger(), silentLogger, {}, { clock: 'live' });
    const now = (n: number, type: Alert['type'] = 'breakglass.activity') => ({ ...ruleMatch(n, Date.now()), type, sessionId: 'bgs-live' });
    await d.dispatch(now(1, 'breakglass.authorized'));
    await d.dispatch(now(2));
    await d.dispatch(now(3));
    expect(sent).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 2500));
    expect(sent).toEqual([[now(1).id], [now(2).id, now(3).id]]);
    await d.dispatch(now(4));
    await d.close();
    // Alert 4 goes at once or in the final update, depending on the timer tick: never lost either way.
    expect(sent.flat()).toEqual([1, 2, 3, 4].map((n) => now(n).id));
    expect(d.routingTotals.grouped).toBeGreaterThanOrEqual(2);
  });
});
