import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportCommand } from '../../cli/report.js';
import { parseConfig } from '../../core/config.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { insertRows } from '../../core/store/writer.js';
import { buildReport } from '../../reports/registry.js';
import { renderHtml } from '../../reports/render/html.js';
import { storeRetention } from '../../reports/retention.js';
import type { ActivityReport } from '../../reports/types.js';

const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'gw-retention-'));
const storePath = join(dir, 'store');
const now = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();
const utcDay = (ms: number) => iso(ms).slice(0, 10);
// The horizons the report must name: the first whole UTC day still kept.
const rawFrom = utcDay(Math.ceil((now - 30 * DAY) / DAY) * DAY);
let store: Store;

function event(id: string, atMs: number) {
  return {
    source: 'cloudtrail',
    id,
    time: iso(atMs),
    actor_id: 'AIDAOPS',
    actor_name: 'breakglass-ops',
    actor_type: 'IAMUser',
    session_key: 'k',
    action: 'ec2.amazonaws.com:DescribeInstances',
    targets: '[]',
    outcome: 'success',
    outcome_reason: '',
    source_ip: '198.51.100.10',
    user_agent: 'aws-cli',
    account: '111122223333',
    org: '',
    cluster: '',
    raw: '{}',
  };
}

function session(id: string, startMs: number) {
  return {
    session_id: id,
    version: 3,
    identity: 'aws-breakglass-ops',
    source: 'cloudtrail',
    principal: 'breakglass-ops',
    verdict: 'unauthorized',
    reason: 'no_ticket',
    ticket_id: '',
    approvers: [],
    first_event_id: `${id}-e1`,
    unauthorized_event_id: `${id}-e1`,
    start: iso(startMs),
    end: iso(startMs + 600_000),
    events: 2,
    activity_command: 0,
    activity_data: 1,
    activity_config: 0,
    source_ips: ['198.51.100.10'],
    account: '111122223333',
    org: '',
    cluster: '',
    detected_at: iso(startMs + 1000),
  };
}

const count = async (table: string) =>
  Number(
    (await (await store.client.query({ query: `SELECT count() AS n FROM ${table}`, format: 'JSONEachRow' })).json<{ n: string }>())[0]?.n,
  );

beforeAll(async () => {
  store = openStore({ kind: 'chdb', path: storePath });
  await migrate(store, { retentionDays: 30, evidenceRetentionDays: 365 });
  await insertRows(store, 'events', [event('old', now - 100 * DAY), event('recent', now - 5 * DAY)]);
  await insertRows(store, 'sessions', [session('bgs-kept', now - 100 * DAY), session('bgs-expired', now - 500 * DAY)]);
  // ClickHouse applies TTL in merges; a final merge is the purge a day of background merges would do.
  for (const table of ['events', 'sessions', 'session_detections']) await store.client.command({ query: `OPTIMIZE TABLE ${table} FINAL` });
});
afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('retention', () => {
  it('keeps raw events and evidence apart: raw events go after 30 days, sessions stay for 365', async () => {
    expect(await storeRetention(store)).toEqual({ rawDays: 30, evidenceDays: 365 });
    expect(await count('events')).toBe(1);
    const kept = await (await store.client.query({ query: 'SELECT session_id FROM sessions', format: 'JSONEachRow' })).json();
    expect(kept).toEqual([{ session_id: 'bgs-kept' }]);
  });

  it('a report over a period before the raw horizon says so in its content, totals and page', async () => {
    const period = { fromMs: Math.floor((now - 120 * DAY) / DAY) * DAY, toMs: Math.floor(now / DAY) * DAY };
    const report = (await buildReport('breakglass-activity', { store, period, nowMs: now })) as ActivityReport & {
      retention?: { note: string; rawEventsFrom: string; evidenceFrom: string | null };
      totals: Record<string, number>;
    };
    expect(report.sessions.map((s) => s.sessionId)).toEqual(['bgs-kept']);
    expect(report.retention).toEqual({
      rawEventsFrom: rawFrom,
      evidenceFrom: null,
      note: `raw events before ${rawFrom} removed by retention; verdicts and sessions kept`,
    });
    expect(report.totals.rawEventDaysRemoved).toBe((Date.parse(rawFrom) - period.fromMs) / DAY);
    expect(report.totals.evidenceDaysRemoved).toBe(0);
    expect(renderHtml(report)).toContain(`raw events before ${rawFrom} removed by retention; verdicts and sessions kept`);

    // Reaching past the evidence horizon too: the report says verdicts are gone, never a quiet "no rows".
    const longer = { fromMs: period.fromMs - 500 * DAY, toMs: period.toMs };
    const old = (await buildReport('breakglass-activity', { store, period: longer, nowMs: now })) as typeof report;
    expect(old.retention?.note).toMatch(
      /^raw events before \d{4}-\d\d-\d\d removed by retention; verdicts and sessions before \d{4}-\d\d-\d\d removed too/,
    );
    expect(old.totals.evidenceDaysRemoved).toBeGreaterThan(0);

    const recent = await buildReport('breakglass-activity', { store, period: { fromMs: now - 10 * DAY, toMs: now }, nowMs: now });
    expect('retention' in recent).toBe(false);
  });

  it('report run records the horizon in force as an audit-chain record, once per horizon', async () => {
    await store.close();
    const config = join(dir, 'glasswatch.yml');
    writeFileSync(config, `store:\n  path: ${JSON.stringify(storePath)}\n  retentionDays: 30\n  evidenceRetentionDays: 365\n`);
    const out = join(dir, 'r.json');
    const args = ['run', 'breakglass-activity', '--from', utcDay(now - 60 * DAY), '--to', utcDay(now), '--out', out, '--config', config];
    try {
      expect(await reportCommand(args)).toBe(0);
      expect(await reportCommand(args)).toBe(0);
      expect(JSON.parse(readFileSync(out, 'utf8')).retention.rawEventsFrom).toBe(rawFrom);
    } finally {
      store = openStore({ kind: 'chdb', path: storePath });
    }
    const records = await (
      await store.client.query({ query: "SELECT key, content FROM audit_log WHERE kind = 'retention'", format: 'JSONEachRow' })
    ).json<{ key: string; content: string }>();
    expect(records).toHaveLength(1);
    expect(JSON.parse(records[0]!.content)).toMatchObject({ rawEventsFrom: rawFrom, rawDays: 30, evidenceDays: 365 });
  });

  it('a changed retention in the config is applied to the store by the next report run, and chained', async () => {
    await store.close();
    const config = join(dir, 'shorter.yml');
    writeFileSync(config, `store:\n  path: ${JSON.stringify(storePath)}\n  retentionDays: 20\n  evidenceRetentionDays: 365\n`);
    try {
      expect(
        await reportCommand([
          'run',
          'breakglass-activity',
          '--from',
          utcDay(now - 9 * DAY),
          '--to',
          utcDay(now),
          '--out',
          join(dir, 's.json'),
          '--config',
          config,
        ]),
      ).toBe(0);
    } finally {
      store = openStore({ kind: 'chdb', path: storePath });
    }
    expect(await storeRetention(store)).toEqual({ rawDays: 20, evidenceDays: 365 });
    const days = await (
      await store.client.query({
        query: "SELECT JSONExtractInt(content, 'rawDays') AS d FROM audit_log WHERE kind = 'retention' ORDER BY seq",
        format: 'JSONEachRow',
      })
    ).json<{ d: number | string }>();
    expect(days.map((r) => Number(r.d))).toEqual([30, 20]);
  });

  it('config refuses evidence kept shorter than raw events', () => {
    expect(() => parseConfig({ store: { retentionDays: 400, evidenceRetentionDays: 100 } }, 'gw.yml')).toThrow(
      /gw\.yml: store\.evidenceRetentionDays: \(100\) must be at least store\.retentionDays \(400\)/,
    );
    expect(parseConfig({}, null).evidenceRetentionDays).toBe(2557);
  });
});
