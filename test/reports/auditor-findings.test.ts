/**
 * Issue 11 part 5, the findings an auditor can defend: an early use is `early_use` (not an
 * overrun), a self-approval counts once, in the period of its use; a credential never seen rotated
 * in a history shorter than the rotation period is `no_history`; a rotation missing after a use
 * raises `breakglass.rotation_missing` when the scheduled report runs, through the configured alert
 * outputs; every page colours a severity the same way. Real replay into chDB, real SMTP.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.js';
import { silentLogger } from '../../core/log.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { parsePeriod } from '../../reports/period.js';
import { buildReport } from '../../reports/registry.js';
import { PALETTE } from '../../reports/render/html.js';
import { renderReport } from '../../reports/render/index.js';
import { ReportScheduler } from '../../reports/schedule.js';
import { type CoverageReport, REPORT_NAMES, type RotationReport } from '../../reports/types.js';
import { writeAuditorFixture } from './auditor-fixture.js';
import { ACCOUNT, type Fixture, replayFixture } from './fixtures.js';
import { SMTP_PASSWORD, SMTP_USER, startSmtp, type TestSmtp } from './smtp.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-auditor-findings-'));
const alertsFile = join(dir, 'alerts.jsonl');
let fixture: Fixture;
let store: Store;
let smtp: TestSmtp;
const coverage = async (from: string, to: string) =>
  (await buildReport('ticket-coverage', { store, period: parsePeriod(from, to) })) as CoverageReport;

beforeAll(async () => {
  process.env.GW_TEST_SMTP_PASSWORD = SMTP_PASSWORD;
  smtp = await startSmtp();
  fixture = writeAuditorFixture(
    dir,
    `alerts:
  jsonl: ${JSON.stringify(alertsFile)}
reports:
  from: glasswatch@example.com
  delivery: { retries: 1, initialDelayMs: 10, maxDelayMs: 20 }
smtp:
  host: 127.0.0.1
  port: ${smtp.port}
  secure: false
  user: ${SMTP_USER}
  password: \${GW_TEST_SMTP_PASSWORD}
  rejectUnauthorized: false
`,
  );
  await replayFixture(fixture);
  store = openStore({ kind: 'chdb', path: fixture.store });
  await migrate(store);
}, 120_000);
afterAll(async () => {
  await store?.close();
  await smtp?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ticket-coverage', () => {
  it('calls a use 9 h before the window early_use with how early, not a 9 h overrun', async () => {
    const r = await coverage('2026-03-11', '2026-03-12');
    const early = r.findings.filter((f) => f.ticketId === 'T-104');
    expect(early).toHaveLength(1);
    expect(early[0]).toMatchObject({
      kind: 'early_use',
      start: '2026-03-11T01:00:00.000Z',
      notBefore: '2026-03-11T10:00:00.000Z',
      earlyMs: 9 * 3_600_000,
      overrunMs: null,
      uses: null,
    });
    expect(r.totals.earlyUses).toBe(1);
    expect(r.totals.windowOverruns).toBe(0);
    // A real overrun stays one, measured from the window's end.
    const before = await coverage('2026-03-10', '2026-03-11');
    expect(before.findings.filter((f) => f.kind === 'window_overrun').map((f) => [f.ticketId, f.overrunMs, f.earlyMs])).toEqual([
      ['T-101', 15 * 60_000, null],
    ]);
  });

  it('counts a self-approval once, in the period of its use, in the findings and the totals', async () => {
    // T-105's window (03-11 23:00 to 03-12 02:00) overlaps both days; its one use is on 03-12.
    const day11 = await coverage('2026-03-11', '2026-03-12');
    const day12 = await coverage('2026-03-12', '2026-03-13');
    expect(day11.findings.filter((f) => f.kind === 'self_approval')).toEqual([]);
    expect(day11.totals.selfApprovals).toBe(0);
    expect(day12.findings.filter((f) => f.kind === 'self_approval')).toEqual([
      expect.objectContaining({ ticketId: 'T-105', requester: 'dave@example.com', start: '2026-03-12T00:30:00.000Z', uses: null }),
    ]);
    expect(day12.totals.selfApprovals).toBe(1);
    const day10 = await coverage('2026-03-10', '2026-03-11');
    const all = await coverage('2026-03-10', '2026-03-13');
    expect(all.totals.selfApprovals).toBe(2);
    expect(day10.totals.selfApprovals + day11.totals.selfApprovals + day12.totals.selfApprovals).toBe(all.totals.selfApprovals);
  });

  it('reports a self-approved ticket never used once, in the period its window ends, beside the unused ticket', async () => {
    const r = await coverage('2026-03-13', '2026-03-14');
    expect(r.findings.map((f) => [f.kind, f.ticketId, f.sessionId, f.uses])).toEqual([
      ['self_approval', 'T-106', null, 0],
      ['unused_ticket', 'T-106', null, 0],
    ]);
    expect(r.totals).toMatchObject({ selfApprovals: 1, unusedTickets: 1 });
    expect((await coverage('2026-03-12', '2026-03-13')).findings.some((f) => f.ticketId === 'T-106')).toBe(false);
  });
});

describe('rotation-compliance', () => {
  const rotation = async (maxAgeDays: number) =>
    (await buildReport('rotation-compliance', {
      store,
      period: parsePeriod('2026-03-10', '2026-03-12'),
      rotation: { afterUseHours: 24, maxAgeDays },
    })) as RotationReport;

  it('calls a credential never seen rotated no_history, with the date history starts, while history is shorter than the period', async () => {
    const r = await rotation(90);
    const root = r.findings.find((f) => f.check === 'max-age' && f.identity === 'aws-root');
    expect(root).toMatchObject({
      status: 'no_history',
      historySince: '2026-03-10T09:10:00.000Z',
      dueBy: '2026-06-08T09:10:00.000Z',
      rotatedAt: null,
    });
    expect(r.totals).toMatchObject({ overdue: 0, noHistory: 1 });
    const ops = r.findings.find((f) => f.check === 'max-age' && f.identity === 'aws-breakglass-ops');
    expect(ops).toMatchObject({ status: 'ok', historySince: '2026-03-10T09:10:00.000Z' });
  });

  it('calls it overdue once the stored history covers the whole rotation period', async () => {
    const r = await rotation(1);
    const root = r.findings.find((f) => f.check === 'max-age' && f.identity === 'aws-root');
    expect(root).toMatchObject({ status: 'overdue', historySince: '2026-03-10T09:10:00.000Z', dueBy: null });
    expect(r.totals).toMatchObject({ overdue: 1, noHistory: 0 });
  });
});

interface AlertLine {
  id: string;
  type: string;
  severity: string;
  identity: string;
  sessionId: string;
  principal: string;
  reason: string;
  time: string;
  account: string | null;
}

const rotationAlerts = (): AlertLine[] =>
  (existsSync(alertsFile) ? readFileSync(alertsFile, 'utf8') : '')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AlertLine)
    .filter((a) => a.type === 'breakglass.rotation_missing');

describe('breakglass.rotation_missing', () => {
  const scheduleOf = (name: string, period: 'previous-day' | 'previous-week') => ({
    name,
    cron: '0 8 * * *',
    timezone: 'UTC',
    report: 'rotation-compliance' as const,
    period,
    recipients: ['audit@example.com'],
    format: 'csv' as const,
  });
  const run = async (schedule: ReturnType<typeof scheduleOf>, firedAt: string) => {
    const scheduler = new ReportScheduler({ config: loadConfig(fixture.config), store, log: silentLogger, schedules: [schedule] });
    try {
      return await scheduler.runSchedule(schedule, Date.parse(firedAt));
    } finally {
      await scheduler.stop();
    }
  };

  it('is raised for a use whose rotation fell due after its own period was reported (pending then, missing now)', async () => {
    const daily = scheduleOf('daily-rotation', 'previous-day');
    // 03-12: E2 (ended 00:40) is due 03-13 00:40, after the period's end: pending, nothing raised.
    expect(await run(daily, '2026-03-13T08:00:00Z')).toMatchObject({ status: 'sent' });
    expect(rotationAlerts()).toEqual([]);
    // 03-13 has no use of its own; E2's due time has passed within it.
    expect(await run(daily, '2026-03-14T08:00:00Z')).toMatchObject({ status: 'sent' });
    expect(rotationAlerts().map((a) => [a.identity, a.time])).toEqual([['aws-breakglass-ops', '2026-03-13T00:40:00.000Z']]);
  });

  it('is raised by the scheduled rotation report through the configured outputs and stored, once per missing rotation', async () => {
    const weekly = scheduleOf('weekly-rotation', 'previous-week');
    expect(await run(weekly, '2026-03-16T08:00:00Z')).toMatchObject({ status: 'sent', report: 'rotation-compliance' });
    // The same period again: already mailed, nothing raised twice.
    expect(await run(weekly, '2026-03-16T08:01:00Z')).toBeNull();
    const report = (await buildReport('rotation-compliance', {
      store,
      period: parsePeriod('2026-03-09', '2026-03-16'),
    })) as RotationReport;
    const missing = report.findings.filter((f) => f.status === 'missing');
    expect(missing.map((f) => [f.identity, f.usedAt])).toEqual([
      ['aws-breakglass-ops', '2026-03-12T00:40:00.000Z'],
      ['aws-root', '2026-03-10T22:10:00.000Z'],
    ]);
    // E2's alert went out with the daily run above: each output has it once.
    const alerts = rotationAlerts().sort((a, b) => (a.identity < b.identity ? -1 : 1));
    expect(alerts.map((a) => [a.identity, a.sessionId, a.time, a.severity, a.reason])).toEqual(
      missing.map((f) => [f.identity, f.sessionId, f.dueBy, 'high', 'rotation_missing']),
    );
    expect(alerts.find((a) => a.identity === 'aws-root')).toMatchObject({ principal: 'Root', account: ACCOUNT });
    const stored = await store.client.query({
      query: "SELECT DISTINCT alert_id, identity FROM alerts WHERE type = 'breakglass.rotation_missing' ORDER BY identity",
      format: 'JSONEachRow',
    });
    expect((await stored.json<{ alert_id: string; identity: string }>()).map((a) => [a.alert_id, a.identity])).toEqual(
      alerts.map((a) => [a.id, a.identity]),
    );
  });
});

describe('colours follow severity', () => {
  it('every status is one colour on every page, and every violation is in the red family', async () => {
    const period = parsePeriod('2026-03-09', '2026-03-16');
    const seen = new Map<string, string>();
    for (const name of REPORT_NAMES) {
      const html = renderReport(await buildReport(name, { store, period }), 'html').text;
      for (const m of html.matchAll(
        /<span style="display:inline-block;padding:0 5px;border-radius:3px;background:(#[0-9a-f]{6});color:(#[0-9a-f]{6});font-weight:600">([^<]+)<\/span>/g,
      )) {
        const colour = `${m[1]}/${m[2]}`;
        expect(seen.get(m[3]!) ?? colour, `${name}: ${m[3]}`).toBe(colour);
        seen.set(m[3]!, colour);
      }
    }
    const red = `${PALETTE.violation.bg}/${PALETTE.violation.fg}`;
    const amber = `${PALETTE.warning.bg}/${PALETTE.warning.fg}`;
    const green = `${PALETTE.ok.bg}/${PALETTE.ok.fg}`;
    for (const v of [
      'unauthorized',
      'no_ticket',
      'outside_window',
      'self_approved',
      'missing',
      'self_approval',
      'early_use',
      'window_overrun',
      'use_without_ticket',
    ])
      expect(seen.get(v), v).toBe(red);
    for (const v of ['late', 'no_history', 'manual', 'unused_ticket']) expect(seen.get(v), v).toBe(amber);
    for (const v of ['authorized', 'rotated', 'ok']) expect(seen.get(v), v).toBe(green);
  });
});
