// console.tls: the console over HTTPS (a certificate made with openssl at test time); the login cookie
// is then Secure as well as HttpOnly and SameSite=Strict. In process, over a real chDB store.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConsoleSection } from '../../console/config.js';
import { type RunningConsole, startConsole } from '../../console/index.js';
import { MemoryBus } from '../../core/bus/memory.js';
import { parseConfig } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import { connectStore, migrate, type Store } from '../../core/store/index.js';
import { CONSOLE_TOKEN, removeDir } from './harness.js';

function get(url: string, ca: Buffer, o: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const req = request(url, { method: o.method ?? 'GET', ca, headers: o.headers ?? {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

describe('console over TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-console-tls-'));
  let store: Store;
  let bus: MemoryBus;
  let running: RunningConsole;

  beforeAll(async () => {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'console.key'),
        '-out',
        join(dir, 'console.crt'),
      ],
      { stdio: 'ignore' },
    );
    const config = parseConfig(
      {
        store: { path: join(dir, 'store') },
        bus: { kind: 'memory' },
        console: {
          port: 0,
          tokens: [{ name: 'soc-carol', token: CONSOLE_TOKEN }],
          tls: { certFile: join(dir, 'console.crt'), keyFile: join(dir, 'console.key') },
        },
      },
      'tls-test.yml',
    );
    store = await connectStore(config.store);
    await migrate(store);
    bus = new MemoryBus();
    running = await startConsole({ config, options: parseConsoleSection(config), store, bus, log: createLogger({ level: 'warn' }) });
  }, 60_000);
  afterAll(async () => {
    await running?.stop();
    await bus?.close();
    await store?.close();
    removeDir(dir);
  });

  it('serves https only, with a Secure login cookie', async () => {
    expect(running.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = readFileSync(join(dir, 'console.crt'));
    expect((await get(`${running.url}/api/sessions`, ca)).status).toBe(401);
    const ok = await get(`${running.url}/api/sessions`, ca, { headers: { authorization: `Bearer ${CONSOLE_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ sessions: [] });
    const page = await get(`${running.url}/login`, ca);
    const cookie = String(page.headers['set-cookie']).split(';')[0]!;
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const login = await get(`${running.url}/login`, ca, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({ _csrf: csrf, token: CONSOLE_TOKEN }).toString(),
    });
    expect(login.status).toBe(303);
    const set = String(login.headers['set-cookie']);
    expect(set).toMatch(/gw_session=/);
    expect(set).toMatch(/; Secure/i);
    expect(set).toMatch(/HttpOnly/i);
    expect(set).toMatch(/SameSite=Strict/i);
  });

  it('refuses a console: section without tokens, with a short token, or with an unknown key, naming the field', () => {
    const parse = (section: unknown) => () => parseConsoleSection(parseConfig({ console: section }, 'c.yml'));
    expect(parse({ port: 8480 })).toThrow(/c\.yml: console\.tokens: is required/);
    expect(parse({ tokens: [{ name: 'a', token: 'short' }] })).toThrow(/console\.tokens\[0\]\.token: must be at least 16 characters/);
    expect(parse({ tokens: [{ name: 'a', token: CONSOLE_TOKEN }], bind: 'x' })).toThrow(/console\.bind: unknown key/);
    expect(parseConsoleSection(parseConfig({ console: { tokens: [{ name: 'a', token: CONSOLE_TOKEN }] } }, 'c.yml')).host).toBe(
      '127.0.0.1',
    );
  });
});
