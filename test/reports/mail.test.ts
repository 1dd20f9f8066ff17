import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportCommand } from '../../cli/report.js';
import { loadConfig } from '../../core/config.js';
import { silentLogger } from '../../core/log.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { smtpTransport } from '../../detectors/build.js';
import { verifyDigest } from '../../reports/digest.js';
import { deliverReport, deliveryStatus } from '../../reports/mail.js';
import { parseReportsConfig, parseSchedules } from '../../reports/options.js';
import { parsePeriod, previousPeriod } from '../../reports/period.js';
import { buildReport } from '../../reports/registry.js';
import { ReportScheduler } from '../../reports/schedule.js';
import { type Fixture, PERIOD, replayFixture, writeFixture } from './fixtures.js';
import { decodeHeader, parseMime, SMTP_PASSWORD, SMTP_USER, startSmtp, type TestSmtp } from './smtp.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-report-mail-'));
let smtp: TestSmtp;
let refusing: TestSmtp;
let fixture: Fixture;

const smtpYaml = (port: number) => `smtp:
  host: 127.0.0.1
  port: ${port}
  secure: false
  user: ${SMTP_USER}
  password: \${GW_TEST_SMTP_PASSWORD}
  rejectUnauthorized: false
`;

interface DeliveryRow {
  delivery_id: string;
  report: string;
  schedule: string;
  recipients: string[];
  status: string;
  attempts: number | string;
  message_id: string;
  digest: string;
  error: string;
}

async function deliveries(store: Store): Promise<DeliveryRow[]> {
  const r = await store.client.query({ query: 'SELECT * FROM report_deliveries ORDER BY at', format: 'JSONEachRow' });
  return r.json<DeliveryRow>();
}

async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = openStore({ kind: 'chdb', path: fixture.store });
  try {
    await migrate(store);
    return await fn(store);
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  process.env.GW_TEST_SMTP_PASSWORD = SMTP_PASSWORD;
  smtp = await startSmtp();
  refusing = await startSmtp({
    onRcptTo(_address, _session, callback) {
      callback(Object.assign(new Error('mailbox unavailable'), { responseCode: 550 }));
    },
  });
  fixture = writeFixture(
    dir,
    `reports:
  from: glasswatch@example.com
  delivery: { retries: 2, initialDelayMs: 10, maxDelayMs: 20 }
${smtpYaml(smtp.port)}`,
  );
  await replayFixture(fixture);
});
afterAll(async () => {
  await smtp?.close();
  await refusing?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('report send', () => {
  it('mails the HTML body with the CSV attached over STARTTLS with auth, and records the delivery', async () => {
    const code = await reportCommand([
      'send',
      'unauthorized-use',
      '--mail-to',
      'soc@example.com',
      '--mail-to',
      'audit@example.com',
      '--from',
      PERIOD.from,
      '--to',
      PERIOD.to,
      '--config',
      fixture.config,
    ]);
    expect(code).toBe(0);
    expect(smtp.mails).toHaveLength(1);
    const mail = smtp.mails[0]!;
    expect(mail.recipients).toEqual(['soc@example.com', 'audit@example.com']);
    expect(mail.from).toBe('glasswatch@example.com');
    expect(mail.secure).toBe(true);
    expect(mail.user).toBe(SMTP_USER);
    const { headers, parts } = parseMime(mail.raw);
    expect(decodeHeader(headers.subject ?? '')).toBe(
      '[glasswatch] Unauthorized break-glass use 2026-03-10 to 2026-03-12: 3 incidents, 0 revoked, 0 failed',
    );
    const html = parts.find((p) => p.headers['content-type']?.startsWith('text/html'));
    expect(html?.body).toContain('<svg');
    expect(html?.body).toContain('Unauthorized break-glass use');
    expect(html?.body).toContain('okta-emergency-admin');
    const csv = parts.find((p) => p.headers['content-type']?.startsWith('text/csv'));
    expect(csv?.headers['content-disposition']).toMatch(/attachment; filename=.?unauthorized-use_2026-03-10_2026-03-12\.csv/);
    const lines = csv!.body.split('\r\n');
    expect(lines[0]!.startsWith('sessionId,identity,source,principal,reason,')).toBe(true);
    expect(lines.filter((l) => l !== '')).toHaveLength(4);
    expect(headers['x-glasswatch-report']).toBe('unauthorized-use');

    await withStore(async (store) => {
      const rows = await deliveries(store);
      expect(rows).toHaveLength(1);
      const row = rows[0]!;
      expect(row).toMatchObject({
        report: 'unauthorized-use',
        schedule: '',
        recipients: ['soc@example.com', 'audit@example.com'],
        status: 'sent',
        error: '',
      });
      expect(Number(row.attempts)).toBe(1);
      expect(row.message_id).toBe(headers['message-id']);
      expect(row.digest).toBe(headers['x-glasswatch-digest']);
      const report = await buildReport('unauthorized-use', { store, period: parsePeriod(PERIOD.from, PERIOD.to) });
      expect(report.digest).toBe(row.digest);
      expect(verifyDigest(report)).toBe(true);
    });
  });

  it('records a refused delivery as failed without retrying a permanent 5xx', async () => {
    const config = loadConfig(fixture.config);
    const refusingConfig = {
      ...config,
      sections: { ...config.sections, smtp: { ...(config.sections.smtp as object), port: refusing.port } },
    };
    await withStore(async (store) => {
      const report = await buildReport('breakglass-activity', { store, period: parsePeriod(PERIOD.from, PERIOD.to) });
      const record = await deliverReport(
        {
          store,
          transport: smtpTransport(refusingConfig),
          from: 'glasswatch@example.com',
          subjectPrefix: '[gw]',
          retry: parseReportsConfig(config).delivery,
          log: silentLogger,
        },
        report,
        { recipients: ['soc@example.com'], schedule: null, format: 'csv' },
      );
      expect(record).toMatchObject({ status: 'failed', attempts: 1, messageId: null });
      expect(record.error).toMatch(/mailbox unavailable/);
      expect(await deliveryStatus(store, record.deliveryId)).toBe('failed');
      const row = (await deliveries(store)).find((d) => d.delivery_id === record.deliveryId)!;
      expect(row).toMatchObject({ status: 'failed', message_id: '', digest: report.digest });
      expect(row.error).toMatch(/550/);
    });
  });

  it('retries with backoff when the server cannot be reached, then records the failure', async () => {
    const config = loadConfig(fixture.config);
    const closed = await startSmtp();
    const port = closed.port;
    await closed.close();
    const deadConfig = { ...config, sections: { ...config.sections, smtp: { ...(config.sections.smtp as object), port } } };
    await withStore(async (store) => {
      const report = await buildReport('ticket-coverage', { store, period: parsePeriod(PERIOD.from, PERIOD.to) });
      const record = await deliverReport(
        {
          store,
          transport: smtpTransport(deadConfig),
          from: 'glasswatch@example.com',
          subjectPrefix: '[gw]',
          retry: { retries: 2, initialDelayMs: 10, maxDelayMs: 20 },
          log: silentLogger,
        },
        report,
        { recipients: ['soc@example.com'], schedule: null, format: 'json' },
      );
      expect(record).toMatchObject({ status: 'failed', attempts: 3 });
      expect(record.error).toMatch(/ECONNREFUSED|connect/i);
      expect(await deliveryStatus(store, record.deliveryId)).toBe('failed');
    });
  });
});

describe('schedules', () => {
  it('validates the schedules section with file and field in errors', () => {
    const config = loadConfig(fixture.config);
    const withSchedules = (schedules: unknown) => ({ ...config, sections: { ...config.sections, schedules } });
    const good = {
      name: 'daily',
      cron: '0 7 * * *',
      timezone: 'Europe/Berlin',
      report: 'breakglass-activity',
      period: 'previous-day',
      recipients: ['soc@example.com'],
    };
    expect(parseSchedules(withSchedules([good]))).toEqual([{ ...good, format: 'csv' }]);
    expect(() => parseSchedules(withSchedules([{ ...good, cron: 'every day' }]))).toThrow(/schedules\[0\]\.cron: is not a cron expression/);
    expect(() => parseSchedules(withSchedules([{ ...good, timezone: 'Mars/Olympus' }]))).toThrow(/schedules\[0\]\.timezone/);
    expect(() => parseSchedules(withSchedules([{ ...good, report: 'nope' }]))).toThrow(/schedules\[0\]\.report: must be one of/);
    expect(() => parseSchedules(withSchedules([{ ...good, period: 'yesterday' }]))).toThrow(/schedules\[0\]\.period/);
    expect(() => parseSchedules(withSchedules([{ ...good, recipients: ['not-an-address'] }]))).toThrow(/not a mail address/);
    expect(() => parseSchedules(withSchedules([good, good]))).toThrow(/duplicate schedule name/);
    expect(() => parseSchedules(withSchedules([{ ...good, extra: 1 }]))).toThrow(/schedules\[0\]\.extra: unknown key/);
    expect(() => parseSchedules(withSchedules({}))).toThrow(/schedules: must be a list/);
  });

  it('fires on a seconds-level cron, mails the previous period in its zone, records it, and mails a period once', async () => {
    const config = loadConfig(fixture.config);
    const schedule = {
      name: 'every-second',
      cron: '*/1 * * * * *',
      timezone: 'America/New_York',
      report: 'breakglass-activity' as const,
      period: 'previous-day' as const,
      recipients: ['ciso@example.com'],
      format: 'csv' as const,
    };
    const before = smtp.mails.length;
    await withStore(async (store) => {
      const scheduler = new ReportScheduler({ config, store, log: silentLogger, schedules: [schedule] });
      const startedAt = Date.now();
      scheduler.start();
      try {
        const deadline = Date.now() + 15_000;
        while (smtp.mails.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        // Later firings in the same day find the period already mailed.
        await new Promise((r) => setTimeout(r, 2_500));
      } finally {
        await scheduler.stop();
      }
      const mails = smtp.mails.slice(before);
      expect(mails).toHaveLength(1);
      expect(mails[0]!.recipients).toEqual(['ciso@example.com']);
      const expected = previousPeriod('previous-day', startedAt, 'America/New_York');
      const { headers, parts } = parseMime(mails[0]!.raw);
      expect(decodeHeader(headers.subject ?? '')).toContain('Break-glass activity');
      expect(parts.some((p) => p.headers['content-type']?.startsWith('text/csv'))).toBe(true);
      const rows = (await deliveries(store)).filter((d) => d.schedule === 'every-second');
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ status: 'sent', report: 'breakglass-activity', message_id: headers['message-id'] });
      const period = await store.client.query({
        query:
          'SELECT toUnixTimestamp64Milli(period_from) AS f, toUnixTimestamp64Milli(period_to) AS t FROM report_deliveries WHERE schedule = {s:String}',
        query_params: { s: 'every-second' },
        format: 'JSONEachRow',
      });
      const [p] = await period.json<{ f: number | string; t: number | string }>();
      expect([Number(p!.f), Number(p!.t)]).toEqual([expected.fromMs, expected.toMs]);
      // New York midnight is 04:00 or 05:00 UTC.
      expect([4, 5]).toContain(new Date(expected.toMs).getUTCHours());
    });
  });
});
