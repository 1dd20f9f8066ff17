// "Was this you?" in a real browser (Debian's chromium driven by playwright-core) against a real
// `glasswatch start` (in-process bus, chDB, the revocation stage and its webhook worker): the owner
// gets the question by mail from a real SMTP server, opens the link (the page acts on nothing),
// answers; "no" revokes through the revocation stage at once, "yes" keeps the session flagged for
// review. The console's session page shows the revocation's verification from later logs.
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSmtp, type TestSmtp } from '../reports/smtp.js';
import { auditEvent, bearer, CONSOLE_TOKEN, type Pipeline, postAudit, removeDir, startPipeline, waitFor } from './harness.js';

const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const artifacts = join(new URL('.', import.meta.url).pathname, 'artifacts');
const shot = (page: Page, name: string) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });

/** The link in a mail (quoted-printable undone). */
function linkIn(raw: string): string {
  const text = raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
  const m = /(http:\/\/127\.0\.0\.1:\d+\/confirm\/\S+)/.exec(text);
  if (!m?.[1]) throw new Error(`no link in mail:\n${text}`);
  return m[1];
}

describe('"was this you?" in chromium', () => {
  let p: Pipeline;
  let browser: Browser;
  let smtp: TestSmtp;
  let hook: Server;
  const revoked: Array<{ sessionId: string; atMs: number }> = [];

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    if (!existsSync(executablePath)) throw new Error(`no chromium at ${executablePath} (apt-get install chromium, or CHROMIUM_PATH)`);
    browser = await chromium.launch({ executablePath, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
    smtp = await startSmtp({ disabledCommands: ['STARTTLS', 'AUTH'], authOptional: true });
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        revoked.push({ sessionId: String((JSON.parse(body) as { sessionId: string }).sessionId), atMs: Date.now() });
        res.writeHead(200).end('{}');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/revoke`;
    p = await startPipeline({
      extra: (ports) => ({
        identities: [
          {
            id: 'k8s-breakglass',
            source: 'k8s',
            match: [{ 'user.username': 'breakglass-admin' }, { 'user.groups': 'system:masters' }],
            revocation: { mode: 'auto', targets: ['webhook'] },
            confirm: { via: 'email', owner: 'owner@example.com', timeoutSeconds: 300 },
          },
        ],
        smtp: { host: '127.0.0.1', port: smtp.port },
        revocation: {
          webhook: { url: hookUrl, secret: 'revoke-webhook-secret-0123456789' },
          verify: { allowanceSeconds: { webhook: 0 } },
          confirm: {
            secret: 'confirm-link-secret-0123456789abcdef0123',
            consoleUrl: `http://127.0.0.1:${ports.console}`,
            from: 'glasswatch@example.com',
          },
        },
      }),
    });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    if (p) {
      await p.stop();
      removeDir(p.dir);
    }
    await smtp?.close();
    await new Promise((r) => hook?.close(r));
  });

  /** Posts a break-glass use from `ip`; resolves with the question's link and the session id it names. */
  async function ask(id: string, ip: string): Promise<{ link: string; sessionId: string }> {
    expect(await postAudit(p.webhookUrl, [auditEvent(id, { ip })])).toBe(200);
    const mail = await waitFor(`the question about ${ip}`, () => smtp.mails.find((m) => m.raw.includes(ip)), 30_000);
    expect(mail.recipients).toEqual(['owner@example.com']);
    const sessionId = /session: (\S+)/.exec(mail.raw.replace(/=\r?\n/g, ''))?.[1];
    if (!sessionId) throw new Error('no session in the mail');
    return { link: linkIn(mail.raw), sessionId };
  }

  it('"no" in the browser revokes through the revocation stage at once; the session page shows the revocation and its verification', async () => {
    const { link, sessionId } = await ask('confirm-no-1', '10.88.0.1');
    const context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
    const cspViolations: string[] = [];
    const owner = await context.newPage();
    owner.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    const opened = await owner.goto(link);
    expect(opened?.status()).toBe(200);
    await expect(owner.textContent('h1')).resolves.toContain('Was this you?');
    expect(await owner.textContent('main')).toContain(sessionId);
    await shot(owner, 'confirm-1-question');
    // Opening the page did nothing.
    await new Promise((r) => setTimeout(r, 500));
    expect(revoked.map((r) => r.sessionId)).not.toContain(sessionId);

    const answeredMs = Date.now();
    await Promise.all([owner.waitForLoadState('load'), owner.click('form.confirm-no button[type="submit"]')]);
    await owner.waitForSelector('text=being revoked');
    await shot(owner, 'confirm-2-answered-no');
    const r = await waitFor('the revocation', () => revoked.find((x) => x.sessionId === sessionId), 20_000);
    console.log(`confirm (start, revocation stage): "no" clicked -> revocation at the target: ${r.atMs - answeredMs} ms`);
    expect(cspViolations).toEqual([]);

    // The SOC's view: the revocation with its verification, pending until later logs say more.
    const soc = await context.newPage();
    await soc.goto(`${p.consoleUrl}/login`);
    await soc.fill('input[name="token"]', CONSOLE_TOKEN);
    await Promise.all([soc.waitForURL(`${p.consoleUrl}/`), soc.click('form.login button[type="submit"]')]);
    const sessionUrl = `${p.consoleUrl}/sessions/${encodeURIComponent(sessionId)}`;
    await waitFor('the revocation on the session page', async () => {
      await soc.goto(sessionUrl);
      return /revoked[\s\S]*watching later logs/.test((await soc.textContent('#revocations').catch(() => '')) ?? '');
    });
    expect(await soc.textContent('#confirmations')).toMatch(/asked[\s\S]*no[\s\S]*revoked/);
    await shot(soc, 'confirm-3-session-pending');
    // The revoked handle works again: ineffective, with the event.
    expect(await postAudit(p.webhookUrl, [auditEvent('confirm-no-after', { ip: '10.88.0.1' })])).toBe(200);
    await waitFor('ineffective on the session page', async () => {
      await soc.goto(sessionUrl);
      const text = (await soc.textContent('#revocations')) ?? '';
      return text.includes('ineffective') && text.includes('confirm-no-after');
    });
    await shot(soc, 'confirm-4-session-ineffective');
    const api = (await (await fetch(`${p.consoleUrl}/api/sessions/${encodeURIComponent(sessionId)}`, { headers: bearer })).json()) as {
      revocations: Record<string, unknown>[];
    };
    expect(api.revocations[0]).toMatchObject({
      outcome: 'revoked',
      verification: 'ineffective',
      verified: 0,
      verify_event_id: 'confirm-no-after',
    });
    await context.close();
  });

  it('"yes, ticket …" in the browser keeps the session and flags it for review', async () => {
    const { link, sessionId } = await ask('confirm-yes-1', '10.88.0.2');
    const context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
    const owner = await context.newPage();
    await owner.goto(link);
    await owner.fill('form.confirm-yes input[name="ticket"]', 'CHG-2001');
    await Promise.all([owner.waitForLoadState('load'), owner.click('form.confirm-yes button[type="submit"]')]);
    await owner.waitForSelector('text=flagged for review');
    await shot(owner, 'confirm-5-answered-yes');
    // The same link again: refused.
    const again = await owner.goto(link);
    expect(again?.status()).toBe(409);
    const soc = await context.newPage();
    await soc.goto(`${p.consoleUrl}/login`);
    await soc.fill('input[name="token"]', CONSOLE_TOKEN);
    await Promise.all([soc.waitForURL(`${p.consoleUrl}/`), soc.click('form.login button[type="submit"]')]);
    await soc.goto(`${p.consoleUrl}/sessions/${encodeURIComponent(sessionId)}`);
    expect(await soc.textContent('main')).toMatch(/needs review/);
    expect(await soc.textContent('#confirmations')).toContain('CHG-2001');
    await shot(soc, 'confirm-6-session-review');
    await new Promise((r) => setTimeout(r, 1000));
    expect(revoked.map((r) => r.sessionId)).not.toContain(sessionId);
    await context.close();
  });
});
