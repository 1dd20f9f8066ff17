import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config.js';
import { GlasswatchError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { type Alert, alertId } from '../../detectors/alerts/alert.js';
import { EmailOutput } from '../../detectors/alerts/outputs.js';
import { smtpTransport } from '../../detectors/build.js';
import { deliverReport } from '../../reports/mail.js';
import type { AnyReport } from '../../reports/types.js';
import { SMTP_PASSWORD, SMTP_USER, startSmtp, type TestSmtp } from './smtp.js';

/** A real SMTP server that does not offer STARTTLS, and counts every AUTH it was sent. */
let plain: TestSmtp;
let auths = 0;
/** The same server with STARTTLS (its built-in test certificate). */
let tls: TestSmtp;
let store: Store;

const smtpConfig = (port: number, extra: Record<string, unknown> = {}) =>
  parseConfig(
    { smtp: { host: '127.0.0.1', port, secure: false, user: SMTP_USER, password: SMTP_PASSWORD, rejectUnauthorized: false, ...extra } },
    'gw.yml',
  );

const alert: Alert = {
  id: alertId('breakglass.unauthorized', 'bgs-tls'),
  type: 'breakglass.unauthorized',
  severity: 'critical',
  identity: 'aws-root',
  source: 'cloudtrail',
  eventIds: ['evt-1'],
  ticketId: null,
  reason: 'no_ticket',
  category: null,
  ruleId: null,
  ruleTitle: null,
  ruleAuthor: null,
  sessionId: 'bgs-tls',
  principal: 'Root',
  sourceIp: '203.0.113.77',
  time: '2026-11-20T22:41:52.000Z',
  detectedAt: '2026-11-20T22:41:52.120Z',
  summary: 'UNAUTHORIZED use of break-glass identity aws-root',
};

const report = {
  report: 'unauthorized-use',
  from: '2026-03-10T00:00:00.000Z',
  to: '2026-03-11T00:00:00.000Z',
  totals: { incidents: 1 },
  digest: 'f'.repeat(64),
  incidents: [
    { sessionId: 's1', identity: 'aws-root', principal: 'Root', reason: 'no_ticket', approvers: [], sourceIps: ['203.0.113.77'] },
  ],
} as unknown as AnyReport;

beforeAll(async () => {
  plain = await startSmtp({
    disabledCommands: ['STARTTLS'],
    // The server would take a clear-text password: only the client can refuse to send it.
    allowInsecureAuth: true,
    onAuth(auth, _session, callback) {
      auths++;
      if (auth.username === SMTP_USER && auth.password === SMTP_PASSWORD) callback(null, { user: auth.username });
      else callback(new Error('invalid credentials'));
    },
  });
  tls = await startSmtp();
  store = openStore({ kind: 'chdb', path: join(mkdtempSync(join(tmpdir(), 'gw-smtp-tls-')), 'store') });
  await migrate(store);
});
afterAll(async () => {
  await plain?.close();
  await tls?.close();
  await store?.close();
});

describe('SMTP with auth requires TLS', () => {
  it('alert email: refused before AUTH when the server offers no STARTTLS, with what to do', async () => {
    const before = auths;
    const output = new EmailOutput({ transport: smtpTransport(smtpConfig(plain.port)), from: 'gw@example.com', to: ['soc@example.com'] });
    const err = await output.send(alert).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GlasswatchError);
    const e = err as GlasswatchError;
    expect(e.retriable).toBe(false);
    expect(e.message).toMatch(/STARTTLS/);
    expect(e.message).toMatch(/smtp\.allowInsecureAuth/);
    expect(e.message).toMatch(/smtp\.secure/);
    expect(auths).toBe(before);
    expect(plain.mails).toHaveLength(0);
  });

  it('report mail: refused, recorded as failed once (not retried) with the explanation, password never sent', async () => {
    const before = auths;
    const record = await deliverReport(
      {
        store,
        transport: smtpTransport(smtpConfig(plain.port)),
        from: 'gw@example.com',
        subjectPrefix: '[gw]',
        retry: { retries: 3, initialDelayMs: 10, maxDelayMs: 20 },
        log: silentLogger,
      },
      report,
      { recipients: ['soc@example.com'], schedule: null, format: 'csv' },
    );
    expect(record.status).toBe('failed');
    expect(record.attempts).toBe(1);
    expect(record.error).toMatch(/STARTTLS/);
    expect(record.error).toMatch(/smtp\.allowInsecureAuth: true/);
    expect(auths).toBe(before);
    expect(plain.mails).toHaveLength(0);
  });

  it('with the explicit opt-out smtp.allowInsecureAuth: true (local test servers), it is sent', async () => {
    const before = auths;
    const transport = smtpTransport(smtpConfig(plain.port, { allowInsecureAuth: true }));
    await new EmailOutput({ transport, from: 'gw@example.com', to: ['soc@example.com'] }).send(alert);
    const record = await deliverReport(
      {
        store,
        transport,
        from: 'gw@example.com',
        subjectPrefix: '[gw]',
        retry: { retries: 0, initialDelayMs: 10, maxDelayMs: 20 },
        log: silentLogger,
      },
      report,
      { recipients: ['soc@example.com'], schedule: null, format: 'csv' },
    );
    expect(record.status).toBe('sent');
    expect(auths).toBe(before + 2);
    expect(plain.mails).toHaveLength(2);
    expect(plain.mails.every((m) => !m.secure && m.user === SMTP_USER)).toBe(true);
  });

  it('a server offering STARTTLS is used over TLS with auth, without the opt-out', async () => {
    await new EmailOutput({ transport: smtpTransport(smtpConfig(tls.port)), from: 'gw@example.com', to: ['soc@example.com'] }).send(alert);
    expect(tls.mails).toHaveLength(1);
    expect(tls.mails[0]).toMatchObject({ secure: true, user: SMTP_USER });
  });

  it('smtp.allowInsecureAuth is validated like every other field', () => {
    expect(() => smtpTransport(smtpConfig(plain.port, { allowInsecureAuth: 'yes' }))).toThrow(
      /gw\.yml: smtp\.allowInsecureAuth: must be true or false/,
    );
  });
});
