import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportCommand } from '../../cli/report.js';
import type { SignedReport } from '../../reports/signing.js';
import { type Fixture, PERIOD, replayFixture, writeFixture } from './fixtures.js';
import { parseMime, SMTP_PASSWORD, SMTP_USER, startSmtp, type TestSmtp } from './smtp.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-signed-mail-'));
let smtp: TestSmtp;
let fixture: Fixture;

beforeAll(async () => {
  process.env.GW_TEST_SMTP_PASSWORD = SMTP_PASSWORD;
  smtp = await startSmtp();
  fixture = writeFixture(
    dir,
    `reports:
  from: glasswatch@example.com
  organisation: Example Corp
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
});
afterAll(async () => {
  await smtp?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('report mail', () => {
  it('carries the digest, the signature and the verify command, with a .sig.json the recipient can verify', async () => {
    const args = ['send', 'unauthorized-use', '--mail-to', 'audit@example.com', '--from', PERIOD.from, '--to', PERIOD.to];
    expect(await reportCommand([...args, '--config', fixture.config])).toBe(0);
    const { headers, parts } = parseMime(smtp.mails[0]!.raw);
    const stem = 'unauthorized-use_2026-03-10_2026-03-12';
    const sigPart = parts.find((p) => p.headers['content-disposition']?.includes(`${stem}.sig.json`));
    const csvPart = parts.find((p) => p.headers['content-disposition']?.includes(`${stem}.csv`));
    const html = parts.find((p) => p.headers['content-type']?.startsWith('text/html'))!.body;
    const sig = JSON.parse(sigPart!.body) as SignedReport & { file: { name: string } };
    expect(sig.file.name).toBe(`${stem}.csv`);
    expect(headers['x-glasswatch-digest']).toBe(sig.digest);
    expect(headers['x-glasswatch-signature-key']).toBe(sig.signature.keyId);
    expect(html).toContain(sig.digest);
    expect(html).toContain(sig.signature.value);
    expect(html).toContain(`glasswatch report verify ${stem}.sig.json --public-key evidence-key.pub.pem`);
    expect(sig.metadata.organisation).toBe('Example Corp');

    // The recipient saves both attachments and runs the command the mail names (with the store's keys here).
    const inbox = join(dir, 'inbox');
    rmSync(inbox, { recursive: true, force: true });
    mkdirSync(inbox);
    writeFileSync(join(inbox, `${stem}.sig.json`), sigPart!.body);
    writeFileSync(join(inbox, `${stem}.csv`), csvPart!.body);
    expect(await reportCommand(['verify', join(inbox, `${stem}.sig.json`), '--store', fixture.store])).toBe(0);
    expect(await reportCommand(['verify', join(inbox, `${stem}.csv`), '--store', fixture.store])).toBe(0);
    writeFileSync(join(inbox, `${stem}.csv`), csvPart!.body.replace('no_ticket', 'authorized'));
    expect(await reportCommand(['verify', join(inbox, `${stem}.sig.json`), '--store', fixture.store])).toBe(1);
  });

  it('a scheduled report is mailed signed too (the signer glasswatch start gives its scheduler)', async () => {
    const { loadConfig } = await import('../../core/config.js');
    const { silentLogger } = await import('../../core/log.js');
    const { connectStore } = await import('../../core/store/index.js');
    const { loadEvidenceKeys } = await import('../../evidence/keys.js');
    const { ReportScheduler } = await import('../../reports/schedule.js');
    const { reportSigner } = await import('../../reports/signing.js');
    const config = loadConfig(fixture.config);
    const store = await connectStore(config.store);
    try {
      const keys = await loadEvidenceKeys({ signingKeyFile: null, store });
      const signer = reportSigner({ store, config, organisation: 'Example Corp', keys });
      const schedule = {
        name: 'signed-daily',
        cron: '0 6 * * *',
        timezone: 'UTC',
        report: 'unauthorized-use' as const,
        period: 'previous-day' as const,
        recipients: ['audit@example.com'],
        format: 'csv' as const,
      };
      const scheduler = new ReportScheduler({ config, store, log: silentLogger, schedules: [schedule], signer });
      const before = smtp.mails.length;
      await scheduler.runSchedule(schedule, Date.parse(PERIOD.to) + 6 * 3_600_000);
      await scheduler.stop();
      const mails = smtp.mails.slice(before);
      expect(mails).toHaveLength(1);
      const { headers, parts } = parseMime(mails[0]!.raw);
      const sigPart = parts.find((p) => p.headers['content-disposition']?.includes('.sig.json'));
      expect(sigPart, 'a .sig.json attachment').toBeDefined();
      const sig = JSON.parse(sigPart!.body) as SignedReport;
      expect(headers['x-glasswatch-digest']).toBe(sig.digest);
      expect(sig.signature.keyId).toBe(keys.keyId);
    } finally {
      await store.close();
    }
  });
});
