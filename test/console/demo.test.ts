// `glasswatch demo --serve`: the demo day replayed through the live pipeline with the console open,
// its URL and a one-time login token printed; the night's incident is in the console.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, waitFor } from './harness.js';

const root = new URL('../../', import.meta.url).pathname;
const artifacts = join(new URL('.', import.meta.url).pathname, 'artifacts');
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
if (!existsSync(executablePath))
  throw new Error(`no chromium at ${executablePath}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`);

describe('glasswatch demo --serve', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-demo-serve-'));
  let child: ChildProcess | null = null;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    removeDir(dir);
  });

  it('replays the day at the given speed, prints the console URL and a one-time token, and shows the incident', async () => {
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'test/support/run-cli.ts'),
        'demo',
        '--serve',
        '--speed',
        '100000',
        '--port',
        '0',
        '--store',
        join(dir, 'store'),
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GLASSWATCH_LOG_LEVEL: 'warn' } },
    );
    let out = '';
    child.stderr!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    await waitFor('the day to be replayed', () => out.includes('the day is replayed'), 120_000);
    expect(out).toMatch(/replaying \d+ events and \d+ ticket versions of 2026-11-20 at 100000x/);
    expect(out).toMatch(/demo clock 2026-11-20 \d\d:\d\d UTC/);
    const url = /console: (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
    const token = /one-time login token \(valid for one browser login\) (\S+)/.exec(out)![1]!;

    // The newcomer's first look, in the browser: log in with the printed one-time token.
    const browser = await chromium.launch({ executablePath, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
    let session = '';
    try {
      const page = await (await browser.newContext({ viewport: { width: 1500, height: 900 } })).newPage();
      await page.goto(`${url}/login`);
      await page.fill('input[name="token"]', token);
      await Promise.all([page.waitForURL(`${url}/`), page.click('form.login button[type="submit"]')]);
      await page.waitForSelector('#sessions tr[data-session]');
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'demo-now.png'), fullPage: true });
      await page.goto(`${url}/alerts?severity=critical`);
      await page.screenshot({ path: join(artifacts, 'demo-alerts.png'), fullPage: true });
      await page.goto(`${url}/`);
      await Promise.all([page.waitForURL(/\/sessions\//), page.click('#sessions tr[data-session] a')]);
      await page.screenshot({ path: join(artifacts, 'demo-session.png'), fullPage: true });
      const cookies = await page.context().cookies();
      session = `gw_session=${cookies.find((c) => c.name === 'gw_session')!.value}`;
    } finally {
      await browser.close();
    }
    // One-time: a second login with the same token is refused.
    const loginPage = await fetch(`${url}/login`);
    const cookie = (loginPage.headers.get('set-cookie') ?? '').split(';')[0]!;
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await loginPage.text())![1]!;
    const again = await fetch(`${url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({ _csrf: csrf, token }).toString(),
    });
    expect(again.status).toBe(401);

    const res = await fetch(`${url}/api/sessions?state=all`, { headers: { cookie: session } });
    const sessions = ((await res.json()) as { sessions: { identity: string; verdict: string; revocation_outcome: string | null }[] })
      .sessions;
    const verdicts = Object.fromEntries(sessions.map((s) => [s.identity, s.verdict]));
    expect(verdicts).toEqual({
      'aws-breakglass-role': 'authorized',
      'aws-root': 'unauthorized',
      'okta-emergency-admin': 'unauthorized',
      'k8s-breakglass': 'unauthorized',
    });
    expect(sessions.find((s) => s.identity === 'okta-emergency-admin')?.revocation_outcome).toBe('revoked');
    const now = await (await fetch(`${url}/`, { headers: { cookie: session } })).text();
    // The replay clock is the day's last event: the night's sessions are still open on Now.
    expect(now).toContain('emergency-admin@example.com');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 180_000);
});
