// The console in a real browser (Debian's chromium driven by playwright-core) against a real
// `glasswatch start`: log in, watch a break-glass event posted to the Kubernetes webhook appear in Now
// and Alerts without reloading, open its session, acknowledge the alert, watch a ticket request and
// its approval arrive in Requests, and check the refusals. Screenshots of every view go to
// test/console/artifacts/.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvent, CONSOLE_TOKEN, type Pipeline, postAudit, removeDir, startPipeline, submitTicket, ticket } from './harness.js';

// Run inside the page by playwright: the browser's globals, typed just enough (the project compiles without the DOM lib).
declare const window: Record<string, unknown>;
declare const document: {
  querySelector(selector: string): { textContent: string | null; getAttribute(name: string): string | null; value?: string } | null;
  createElement(tag: string): { textContent: string | null };
  body: { appendChild(node: unknown): void; dataset: Record<string, string | undefined> };
  activeElement: { blur(): void } | null;
};

const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const artifacts = join(new URL('.', import.meta.url).pathname, 'artifacts');

async function launch(): Promise<Browser> {
  if (!existsSync(executablePath))
    throw new Error(
      `no chromium at ${executablePath}: the browser tests need Debian's chromium (apt-get install chromium) or CHROMIUM_PATH pointing at a Chromium binary`,
    );
  // As root (CI containers) Chromium refuses to start with its sandbox.
  return chromium.launch({ executablePath, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
const marker = (page: Page) => page.evaluate(() => (window as unknown as { glasswatchTestMarker?: number }).glasswatchTestMarker);
const mark = (page: Page) =>
  page.evaluate(() => {
    (window as unknown as { glasswatchTestMarker?: number }).glasswatchTestMarker = 42;
  });
const live = (page: Page) => page.waitForSelector('body[data-live="on"]', { timeout: 10_000 });

describe('console in chromium', () => {
  let p: Pipeline;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    browser = await launch();
    p = await startPipeline();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    if (p) {
      await p.stop();
      removeDir(p.dir);
    }
  });

  it('logs in, shows a break-glass event live in Now and Alerts, opens its session, acknowledges the alert, shows a request and its approval', async () => {
    const context = await browser.newContext({ viewport: { width: 1500, height: 900 } });
    const cspViolations: string[] = [];
    const now = await context.newPage();
    now.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    const first = await now.goto(`${p.consoleUrl}/`);
    expect(first?.status()).toBe(401);
    await shot(now, '0-unauthenticated');
    await now.goto(`${p.consoleUrl}/login`);
    await shot(now, '1-login');
    await now.fill('input[name="token"]', CONSOLE_TOKEN);
    await Promise.all([now.waitForURL(`${p.consoleUrl}/`), now.click('form.login button[type="submit"]')]);
    await expect(now.textContent('h1')).resolves.toContain('Open break-glass sessions');
    await live(now);
    await shot(now, '2-now-empty');

    const alerts = await context.newPage();
    await alerts.goto(`${p.consoleUrl}/alerts`);
    await live(alerts);
    await mark(now);
    await mark(alerts);

    expect(await postAudit(p.webhookUrl, [auditEvent('browser-bg-1', { ip: '10.77.0.1' })])).toBe(200);
    const row = await now.waitForSelector('#sessions tr[data-session]', { timeout: 10_000 });
    expect(await row.textContent()).toMatch(/breakglass-admin[\s\S]*10\.77\.0\.1[\s\S]*unauthorized[\s\S]*no_ticket/);
    expect(await marker(now)).toBe(42); // updated in place, not reloaded
    await alerts.waitForSelector('tr[data-type="breakglass.unauthorized"]', { timeout: 10_000 });
    expect(await marker(alerts)).toBe(42);
    await shot(now, '3-now');

    // Acknowledge on the Alerts page (console.js posts the form with the CSRF header and refreshes).
    // A live refresh while the analyst is half-way through the form (a state chosen, the field left,
    // the comment not yet typed) keeps what they chose: the page is re-rendered, their choice is not.
    const unauthorized = 'tr[data-type="breakglass.unauthorized"]';
    const refreshed = () => alerts.evaluate(() => document.body.dataset.refreshed ?? '');
    const refreshedAfter = async (before: string) =>
      alerts.waitForFunction((b) => (document.body.dataset.refreshed ?? '') !== b, before, { timeout: 10_000 });
    await alerts.selectOption(`${unauthorized} select[name="state"]`, 'resolved');
    await alerts.evaluate(() => document.activeElement?.blur());
    let before = await refreshed();
    expect(await submitTicket(p.ticketsUrl, ticket('CHG-BROWSER-0', 'requested', new Date()))).toBe(202);
    await refreshedAfter(before);
    expect(await alerts.evaluate((sel) => document.querySelector(`${sel} select[name="state"]`)?.value, unauthorized)).toBe('resolved');
    await alerts.fill(`${unauthorized} input[name="comment"]`, 'on it: paging payments on-call');
    await alerts.evaluate(() => document.activeElement?.blur());
    before = await refreshed();
    expect(await submitTicket(p.ticketsUrl, ticket('CHG-BROWSER-0', 'approved', new Date()))).toBe(202);
    await refreshedAfter(before);
    expect(await alerts.evaluate((sel) => document.querySelector(`${sel} input[name="comment"]`)?.value, unauthorized)).toBe(
      'on it: paging payments on-call',
    );
    expect(await alerts.evaluate((sel) => document.querySelector(`${sel} select[name="state"]`)?.value, unauthorized)).toBe('resolved');
    await alerts.selectOption(`${unauthorized} select[name="state"]`, 'acknowledged');
    await alerts.click(`${unauthorized} button[type="submit"]`);
    await alerts.waitForFunction(
      (sel) =>
        /acknowledged[\s\S]*soc-alice[\s\S]*on it: paging payments on-call/.test(
          document.querySelector(`${sel} .triage-state`)?.textContent ?? '',
        ),
      unauthorized,
      { timeout: 10_000 },
    );
    expect(await marker(alerts)).toBe(42);
    await shot(alerts, '4-alerts');

    // The session: timeline with category and the raw event, alerts, the (manual) revocation.
    await Promise.all([now.waitForURL(/\/sessions\//), now.click('#sessions tr[data-session] a')]);
    await now.waitForSelector('#timeline tr[data-event="browser-bg-1"]');
    await now.click('#timeline tr[data-event="browser-bg-1"] summary');
    expect(await now.textContent('#timeline tr[data-event="browser-bg-1"] pre')).toContain('"auditID": "browser-bg-1"');
    expect(await now.textContent('#timeline tr[data-event="browser-bg-1"]')).toContain('data');
    expect(await now.textContent('#revocations')).toContain('manual');
    expect(await now.textContent('#session-alerts')).toContain('acknowledged');
    await shot(now, '5-session');

    // Requests: a request appears, then its approval (and the approval alert) without reloading.
    const requests = await context.newPage();
    await requests.goto(`${p.consoleUrl}/requests`);
    await live(requests);
    await mark(requests);
    const asked = new Date();
    expect(await submitTicket(p.ticketsUrl, ticket('CHG-BROWSER-1', 'requested', asked))).toBe(202);
    await requests.waitForSelector('#requested tr[data-ticket="CHG-BROWSER-1"]', { timeout: 10_000 });
    await shot(requests, '6-requests-waiting');
    expect(await submitTicket(p.ticketsUrl, ticket('CHG-BROWSER-1', 'approved', new Date(asked.getTime() + 1000)))).toBe(202);
    await requests.waitForSelector('#approved tr[data-ticket="CHG-BROWSER-1"]', { timeout: 10_000 });
    await requests.waitForSelector('#request-alerts tr[data-type="breakglass.approved"]', { timeout: 10_000 });
    expect(await requests.textContent('#request-alerts tr[data-type="breakglass.approved"]')).toContain('erin@example.com');
    expect(await marker(requests)).toBe(42);
    await shot(requests, '7-requests');

    const health = await context.newPage();
    await health.goto(`${p.consoleUrl}/health`);
    await health.waitForSelector('#sources tr[data-source="k8s"]');
    expect(Number(await health.textContent('#open-sessions'))).toBeGreaterThanOrEqual(1);
    await shot(health, '8-health');
    expect(cspViolations).toEqual([]);

    // Refusals: a forged CSRF token from a logged-in page, an inline script (CSP), a page and an API call without a cookie.
    const forged = await alerts.evaluate(async () => {
      const id = document.querySelector('tr[data-type="breakglass.unauthorized"]')?.getAttribute('data-alert') ?? '';
      const res = await fetch(`/api/alerts/${id}/triage`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': 'forged' },
        body: JSON.stringify({ state: 'resolved' }),
      });
      return res.status;
    });
    expect(forged).toBe(403);
    const inlineRan = await alerts.evaluate(async () => {
      const s = document.createElement('script');
      s.textContent = 'window.glasswatchInline = 1';
      document.body.appendChild(s);
      await new Promise((r) => setTimeout(r, 100));
      return (window as unknown as { glasswatchInline?: number }).glasswatchInline === 1;
    });
    expect(inlineRan).toBe(false);
    const stranger = await browser.newContext();
    const page = await stranger.newPage();
    expect((await page.goto(`${p.consoleUrl}/alerts`))?.status()).toBe(401);
    expect(await page.textContent('h1')).toBe('Log in first');
    const api = await stranger.request.get(`${p.consoleUrl}/api/alerts`);
    expect(api.status()).toBe(401);
    await stranger.close();
    await context.close();
  }, 120_000);
});
