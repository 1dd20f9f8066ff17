// "Was this you?" before cutting, with real parts: the chDB store, a real SMTP server (the e-mail
// question), real HTTP receivers (the signed webhook question, the Slack question, the revocation
// webhook) and the console over HTTP. Nothing of ours is replaced.
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConsoleSection, startConsole } from '../../console/index.js';
import { MemoryBus } from '../../core/bus/memory.js';
import { ConfigError, parseConfig } from '../../core/config.js';
import { silentLogger } from '../../core/log.js';
import { verify } from '../../core/signing.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { buildDetector, type DetectorBuild } from '../../detectors/build.js';
import { type ConfirmationGate, confirmationIdOf } from '../../detectors/confirm/gate.js';
import { signConfirmToken } from '../../detectors/confirm/token.js';
import { IdentityRegistry } from '../../detectors/identities.js';
import { settleChain } from '../../evidence/journal.js';
import { startEvidence } from '../../evidence/start.js';
import { verifyAudit } from '../../evidence/verify.js';
import { freePort } from '../console/harness.js';
import { startSmtp, type TestSmtp } from '../reports/smtp.js';
import { k8s } from '../support/events.js';

const SECRET = 'confirm-secret-0123456789abcdef0123456789';
const HOOK_SECRET = 'question-hook-secret-0123456789';
const REVOKE_SECRET = 'revoke-hook-secret-0123456789';
const CONSOLE_TOKEN = 'soc-console-token-0123456789abcdef';

interface Received {
  body: Record<string, unknown>;
  headers: IncomingHttpHeaders;
  raw: string;
  atMs: number;
}

async function receiver(): Promise<{ url: string; got: Received[]; server: Server }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => {
      raw += c.toString();
    });
    req.on('end', () => {
      got.push({ body: JSON.parse(raw) as Record<string, unknown>, headers: req.headers, raw, atMs: Date.now() });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, got, server };
}

const waitFor = async <T>(what: string, check: () => T | Promise<T>, ms = 20_000): Promise<NonNullable<T>> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

/** The link in a mail body (quoted-printable undone). */
function linkIn(raw: string): string {
  const text = raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
  const m = /(http:\/\/127\.0\.0\.1:\d+\/confirm\/\S+)/.exec(text);
  if (!m?.[1]) throw new Error(`no link in mail:\n${text}`);
  return m[1];
}

const csrfIn = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';

let smtp: TestSmtp;
let questionHook: Awaited<ReturnType<typeof receiver>>;
let slackHook: Awaited<ReturnType<typeof receiver>>;
let revokeHook: Awaited<ReturnType<typeof receiver>>;
let store: Store;
let consoleUrl: string;
let configOf: (o?: { webhook?: number; questionUrl?: string }) => ReturnType<typeof parseConfig>;
const builds: DetectorBuild[] = [];
const alerts: Alert[] = [];
const closers: (() => Promise<unknown>)[] = [];
let build: DetectorBuild;
let ip = 10;

/** One unauthorized use by `user` from a fresh address (a new session). */
async function use(b: DetectorBuild, user: string): Promise<{ sessionId: string; alertId: string; handedMs: number }> {
  const e = k8s(
    new Date().toISOString(),
    'list',
    { username: user, groups: ['system:authenticated'] },
    { resource: 'secrets' },
    200,
    `10.9.0.${ip++}`,
  );
  const handedMs = Date.now();
  await b.detector.handle([e]);
  await b.detector.flush();
  const alert = alerts.find((a) => a.type === 'breakglass.unauthorized' && a.eventIds[0] === e.id);
  if (!alert?.sessionId) throw new Error('no unauthorized alert');
  return { sessionId: alert.sessionId, alertId: alert.id, handedMs };
}

const revokedSessions = () => revokeHook.got.map((r) => r.body.sessionId);

beforeAll(async () => {
  smtp = await startSmtp({ disabledCommands: ['STARTTLS', 'AUTH'], authOptional: true });
  closers.push(() => smtp.close());
  questionHook = await receiver();
  slackHook = await receiver();
  revokeHook = await receiver();
  for (const r of [questionHook, slackHook, revokeHook]) closers.push(() => new Promise((done) => r.server.close(done)));
  store = openStore({ kind: 'chdb', path: join(mkdtempSync(join(tmpdir(), 'gw-confirm-')), 'store') });
  await migrate(store);
  const port = await freePort();
  consoleUrl = `http://127.0.0.1:${port}`;
  configOf = (o = {}) =>
    parseConfig(
      {
        identities: [
          {
            id: 'k8s-bg-mail',
            source: 'k8s',
            match: { 'user.username': 'bg-mail' },
            revocation: { mode: 'auto', targets: ['webhook'] },
            confirm: { via: 'email', owner: 'owner@example.com', timeoutSeconds: 120 },
          },
          {
            id: 'k8s-bg-hook',
            source: 'k8s',
            match: { 'user.username': 'bg-hook' },
            revocation: { mode: 'auto', targets: ['webhook'] },
            confirm: { via: 'webhook', owner: 'alice', timeoutSeconds: o.webhook ?? 10 },
          },
          {
            id: 'k8s-bg-slack',
            source: 'k8s',
            match: { 'user.username': 'bg-slack' },
            revocation: { mode: 'auto', targets: ['webhook'] },
            confirm: { via: 'slack', owner: 'U024BE7LH', timeoutSeconds: 120 },
          },
          { id: 'k8s-bg-plain', source: 'k8s', match: { 'user.username': 'bg-plain' }, revocation: { mode: 'auto', targets: ['webhook'] } },
        ],
        smtp: { host: '127.0.0.1', port: smtp.port },
        revocation: {
          webhook: { url: revokeHook.url, secret: REVOKE_SECRET },
          // A later event by a revoked handle counts at once (the console shows ineffective).
          verify: { allowanceSeconds: { webhook: 0 } },
          confirm: {
            secret: SECRET,
            consoleUrl,
            from: 'glasswatch@example.com',
            webhook: { url: o.questionUrl ?? questionHook.url, secret: HOOK_SECRET },
            slack: { url: slackHook.url },
          },
        },
        console: { host: '127.0.0.1', port, tokens: [{ name: 'soc', token: CONSOLE_TOKEN }] },
      },
      'confirm.yml',
    );
  const config = configOf();
  // Every evidence row inserted from here on is an audit-chain record, as in `glasswatch start`.
  await startEvidence(store, { ...config, file: null }, { command: 'test-confirm' });
  build = await buildDetector({ config, store, log: silentLogger, clock: 'live', deliver: false, onAlert: (a) => alerts.push(a) });
  builds.push(build);
  const running = await startConsole({ config, options: parseConsoleSection(config), store, bus: new MemoryBus(), log: silentLogger });
  closers.push(() => running.stop());
}, 120_000);

afterAll(async () => {
  for (const b of builds) await b.detector.close().catch(() => {});
  for (const c of closers.reverse()) await c().catch(() => {});
  await store?.close();
});

describe('was this you? before cutting', () => {
  it('asks the owner by mail at once; a GET acts on nothing; "yes, ticket …" keeps the session, flagged for review; the link works once', async () => {
    const { sessionId, alertId, handedMs } = await use(build, 'bg-mail');
    const mail = await waitFor('the question mail', () => smtp.mails.find((m) => m.raw.includes(confirmationIdOf(alertId))));
    const mailedMs = Date.now();
    expect(mail.recipients).toEqual(['owner@example.com']);
    const link = linkIn(mail.raw);
    console.log(`confirm: unauthorized use handed to the detector -> question mail received: ${mailedMs - handedMs} ms`);
    // The detector did not wait for the owner: no revocation, no answer, and it is free for the next event.
    expect(revokedSessions()).not.toContain(sessionId);
    expect(alerts.find((x) => x.id === alertId)?.summary).toContain('asking its owner first (email): revoked on "no" or after 120 s');

    // A GET (a mail scanner following the link) shows the question and records nothing.
    const page = await fetch(link);
    expect(page.status).toBe(200);
    expect(page.headers.get('referrer-policy')).toBe('same-origin');
    const text = await page.text();
    expect(text).toContain('Was this you?');
    expect(text).toContain(sessionId);
    expect(text).toContain('bg-mail');
    await fetch(link);
    const stepsAfterGet = await states(sessionId);
    expect(stepsAfterGet).toEqual(['asked']);

    // Without the form token (a cross-site form cannot have it): refused, nothing recorded.
    const noCsrf = await fetch(link, { method: 'POST', body: new URLSearchParams({ answer: 'no' }) });
    expect(noCsrf.status).toBe(403);
    expect(await states(sessionId)).toEqual(['asked']);

    const yes = await fetch(link, {
      method: 'POST',
      body: new URLSearchParams({ _csrf: csrfIn(text), answer: 'yes', ticket: 'CHG-4711' }),
    });
    expect(yes.status).toBe(200);
    expect(await yes.text()).toContain('flagged for review');
    await waitFor('the gate to take the yes', () => (build.detector.options.confirm as ConfirmationGate).open === 0);
    expect(await states(sessionId)).toEqual(['asked', 'yes']);
    const [row] = await select(`SELECT ticket_id, nonce FROM confirmations WHERE session_id = {s:String} AND state = 'yes'`, {
      s: sessionId,
    });
    expect(row?.ticket_id).toBe('CHG-4711');
    expect(String(row?.nonce).length).toBeGreaterThan(10);
    // Not revoked, and the console's session page shows it for review.
    await new Promise((r) => setTimeout(r, 600));
    expect(revokedSessions()).not.toContain(sessionId);
    const sessionPage = await consoleGet(`/sessions/${encodeURIComponent(sessionId)}`);
    expect(sessionPage).toContain('needs review');
    expect(sessionPage).toContain('CHG-4711');

    // The same link again (replayed): refused, nothing recorded.
    const replay = await fetch(link, { method: 'POST', body: new URLSearchParams({ _csrf: csrfIn(text), answer: 'no' }) });
    expect(replay.status).toBe(409);
    expect((await fetch(link)).status).toBe(409);
    expect(await states(sessionId)).toEqual(['asked', 'yes']);
    // The audit chain holds every step (what the journal still holds first moved into audit_log).
    await settleChain(store);
    const chained = await select(`SELECT count() AS n FROM audit_log WHERE tbl = 'confirmations'`, {});
    expect(Number(chained[0]?.n)).toBeGreaterThanOrEqual(2);
  });

  it('"no" revokes at once, and the console shows the revocation and its verification (pending, then ineffective with the handle and event)', async () => {
    const { sessionId } = await use(build, 'bg-slack');
    // The Slack question: Slack's incoming-webhook format, the owner mentioned, the link inside.
    const slack = await waitFor('the Slack question', () => slackHook.got.find((g) => JSON.stringify(g.body).includes(sessionId)));
    expect(String(slack.body.text)).toContain('<@U024BE7LH>');
    expect(Array.isArray(slack.body.blocks)).toBe(true);
    const link = /<(http:\/\/[^|>]+)\|Answer here>/.exec(JSON.stringify(slack.body).replace(/\\u0026/g, '&'))?.[1];
    expect(link).toBeTruthy();
    const page = await (await fetch(link!)).text();
    const answeredMs = Date.now();
    const no = await fetch(link!, { method: 'POST', body: new URLSearchParams({ _csrf: csrfIn(page), answer: 'no' }) });
    expect(no.status).toBe(200);
    const revoked = await waitFor('the revocation', () => revokeHook.got.find((g) => g.body.sessionId === sessionId));
    console.log(`confirm: "no" posted -> revocation request at the target: ${revoked.atMs - answeredMs} ms`);
    expect(revoked.atMs - answeredMs).toBeLessThan(3000);
    expect(verify(REVOKE_SECRET, revoked.headers, revoked.raw).ok).toBe(true);
    await waitFor('the revoked step', async () => (await states(sessionId)).includes('revoked'));
    expect(await states(sessionId)).toEqual(['asked', 'no', 'revoked']);
    expect(alerts.some((a) => a.type === 'breakglass.revocation' && a.sessionId === sessionId)).toBe(true);

    const api = async () =>
      (await (
        await fetch(`${consoleUrl}/api/sessions/${encodeURIComponent(sessionId)}`, {
          headers: { authorization: `Bearer ${CONSOLE_TOKEN}` },
        })
      ).json()) as { revocations: Record<string, unknown>[] };
    expect((await api()).revocations[0]).toMatchObject({ outcome: 'revoked', verification: 'pending', verified: null });
    expect(await consoleGet(`/sessions/${encodeURIComponent(sessionId)}`)).toContain('watching later logs');

    // The revoked session's handle acts again: ineffective, shown with the handle and the event.
    const again = k8s(
      new Date().toISOString(),
      'get',
      { username: 'bg-slack', groups: ['system:authenticated'] },
      { resource: 'secrets' },
      200,
      `10.9.0.${ip - 1}`,
    );
    await build.detector.handle([again]);
    await build.detector.flush();
    const r = await waitFor('the ineffective verification', async () => {
      const x = (await api()).revocations[0];
      return x?.verification === 'ineffective' ? x : null;
    });
    expect(r).toMatchObject({ verified: 0, verify_event_id: again.id });
    const html = await consoleGet(`/sessions/${encodeURIComponent(sessionId)}`);
    expect(html).toContain('ineffective');
    expect(html).toContain(again.id);
  });

  it('no answer revokes at the timeout, also when the asking detector crashed during the wait (another member, already running, takes the question on from the store)', async () => {
    // A second detector member, running before the question is asked.
    const other = await buildDetector({
      config: configOf(),
      store,
      log: silentLogger,
      clock: 'live',
      deliver: false,
      onAlert: (a) => alerts.push(a),
    });
    builds.push(other);
    const { sessionId } = await use(build, 'bg-hook');
    const q = await waitFor('the webhook question', () => questionHook.got.find((g) => g.body.sessionId === sessionId));
    expect(verify(HOOK_SECRET, q.headers, q.raw).ok).toBe(true);
    expect(q.body).toMatchObject({ type: 'glasswatch.confirmation', owner: 'alice', identity: 'k8s-bg-hook' });
    const [asked] = await select(
      `SELECT toUnixTimestamp64Milli(due_at) AS due FROM confirmations WHERE session_id = {s:String} AND state = 'asked'`,
      { s: sessionId },
    );
    const dueMs = Number(asked?.due);
    // "Crash": the asking detector's gate stops without settling anything; the question is only in the store.
    await build.detector.options.confirm!.close();
    const revoked = await waitFor(
      'the revocation at the timeout',
      () => revokeHook.got.find((g) => g.body.sessionId === sessionId),
      20_000,
    );
    console.log(`confirm: unanswered question revoked ${revoked.atMs - dueMs} ms after its due time (by the other member)`);
    expect(revoked.atMs).toBeGreaterThanOrEqual(dueMs);
    expect(revoked.atMs - dueMs).toBeLessThan(2000);
    await waitFor('the timeout step', async () => (await states(sessionId)).includes('timeout'));
    await new Promise((r) => setTimeout(r, 500));
    expect(await states(sessionId)).toEqual(['asked', 'timeout']);
    expect(revokeHook.got.filter((g) => g.body.sessionId === sessionId)).toHaveLength(1);
    // A late answer is refused: the link expired with the question.
    expect((await fetch(String(q.body.link))).status).toBe(410);
    build = other;
  }, 40_000);

  it('refuses a link for another session, a forged token and an expired one; the link opens nothing else', async () => {
    const a = await use(build, 'bg-mail');
    const b = await use(build, 'bg-mail');
    const mailOf = (alertId: string) => waitFor('mail', () => smtp.mails.find((m) => m.raw.includes(confirmationIdOf(alertId))));
    const linkA = linkIn((await mailOf(a.alertId)).raw);
    const linkB = linkIn((await mailOf(b.alertId)).raw);
    const tokenA = new URL(linkA).searchParams.get('token')!;
    const idB = confirmationIdOf(b.alertId);
    // A's link presented for B's question.
    expect((await fetch(`${consoleUrl}/confirm/${idB}?token=${tokenA}`)).status).toBe(403);
    // Correctly signed for B's question, but bound to A's session: refused.
    const claimsA = JSON.parse(Buffer.from(tokenA.split('.')[1]!, 'base64url').toString()) as {
      s: string;
      i: string;
      e: number;
      n: string;
    };
    const crossed = signConfirmToken(SECRET, { ...claimsA, c: idB });
    const crossedPage = await fetch(`${consoleUrl}/confirm/${idB}?token=${crossed}`);
    expect(crossedPage.status).toBe(403);
    expect(await crossedPage.text()).toContain('not for this session');
    // Forged: a changed signature, a changed claim, another key.
    const [v, payload, sig] = tokenA.split('.') as [string, string, string];
    const flipped = `${v}.${payload}.${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BB' : 'AA'}`;
    const idA = confirmationIdOf(a.alertId);
    expect((await fetch(`${consoleUrl}/confirm/${idA}?token=${flipped}`)).status).toBe(403);
    const longer = Buffer.from(JSON.stringify({ ...claimsA, c: idA, e: claimsA.e + 3_600_000 })).toString('base64url');
    expect((await fetch(`${consoleUrl}/confirm/${idA}?token=${v}.${longer}.${sig}`)).status).toBe(403);
    const otherKey = signConfirmToken('another-secret-0123456789abcdef012345', { ...claimsA, c: idA });
    expect((await fetch(`${consoleUrl}/confirm/${idA}?token=${otherKey}`)).status).toBe(403);
    // Expired (signed with the right key, expiry in the past).
    const expired = signConfirmToken(SECRET, { ...claimsA, c: idA, e: Date.now() - 1000 });
    expect(
      (await fetch(`${consoleUrl}/confirm/${idA}?token=${expired}`, { method: 'POST', body: new URLSearchParams({ answer: 'no' }) }))
        .status,
    ).toBe(410);
    // The link is no console credential: nothing else opens with it.
    expect((await fetch(`${consoleUrl}/api/sessions`, { headers: { authorization: `Bearer ${tokenA}` } })).status).toBe(401);
    expect((await fetch(`${consoleUrl}/sessions/${encodeURIComponent(a.sessionId)}?token=${tokenA}`)).status).toBe(401);
    expect((await fetch(`${consoleUrl}/alerts?token=${tokenA}`)).status).toBe(401);
    // None of it answered or revoked anything; the genuine links still work.
    expect(await states(a.sessionId)).toEqual(['asked']);
    expect(await states(b.sessionId)).toEqual(['asked']);
    expect(revokedSessions()).not.toContain(a.sessionId);
    expect((await fetch(linkA)).status).toBe(200);
    expect((await fetch(linkB)).status).toBe(200);
  });

  it('the same verdict seen again by a restarted detector is not asked twice', async () => {
    const { sessionId, alertId } = await use(build, 'bg-mail');
    await waitFor('the first question', () => smtp.mails.find((m) => m.raw.includes(confirmationIdOf(alertId))));
    const [asked] = await select(`SELECT request FROM confirmations WHERE session_id = {s:String} AND state = 'asked'`, { s: sessionId });
    const { request, eventTimeMs, detectedAtMs } = JSON.parse(String(asked?.request)) as {
      request: Parameters<ConfirmationGate['ask']>[0];
      eventTimeMs: number;
      detectedAtMs: number;
    };
    const mails = smtp.mails.length;
    const next = await buildDetector({ config: configOf(), store, log: silentLogger, clock: 'live', deliver: false });
    builds.push(next);
    await (next.detector.options.confirm as ConfirmationGate).ask(request, eventTimeMs, detectedAtMs);
    await new Promise((r) => setTimeout(r, 500));
    expect(smtp.mails.length).toBe(mails);
    expect(await states(sessionId)).toEqual(['asked']);
    await next.detector.close();
  });

  it('a question that cannot be delivered revokes at once (fail closed)', async () => {
    // The owner's webhook refuses the question (HTTP 400: resending will not help).
    const refusing = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(400).end('no'));
    });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((done) => refusing.close(done)));
    const url = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/`;
    const b = await buildDetector({
      config: configOf({ questionUrl: url }),
      store,
      log: silentLogger,
      clock: 'live',
      deliver: false,
      onAlert: (a) => alerts.push(a),
    });
    builds.push(b);
    const { sessionId, handedMs } = await use(b, 'bg-hook');
    const r = await waitFor('the revocation', () => revokeHook.got.find((g) => g.body.sessionId === sessionId));
    console.log(`confirm: undeliverable question -> revoked ${r.atMs - handedMs} ms after the use was handed to the detector`);
    await waitFor('the undelivered step', async () => (await states(sessionId)).includes('undelivered'));
    expect(await states(sessionId)).toEqual(['asked', 'undelivered']);
    await b.detector.close();
  });

  it('an identity without confirm: is revoked at once, as before', async () => {
    const { sessionId } = await use(build, 'bg-plain');
    expect(revokedSessions()).toContain(sessionId);
    expect(await states(sessionId)).toEqual([]);
  });

  it('every question, answer and timeout is in the audit chain, and the chain verifies', async () => {
    const steps = await select(`SELECT count() AS n FROM confirmations`, {});
    await settleChain(store);
    const chained = await select(`SELECT count() AS n FROM audit_log WHERE tbl = 'confirmations'`, {});
    expect(Number(chained[0]?.n)).toBe(Number(steps[0]?.n));
    const result = await verifyAudit(store);
    expect(result.findings).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it('config errors name the field', () => {
    const bad =
      (identity: Record<string, unknown>, revocation: Record<string, unknown> = {}) =>
      () => {
        const config = parseConfig(
          { identities: [{ id: 'x', source: 'k8s', match: { 'user.username': 'x' }, ...identity }], revocation },
          'bad.yml',
        );
        const registry = IdentityRegistry.fromConfig(config.sections.identities, config.file);
        return buildDetector({ config, store: null, log: silentLogger, clock: 'replay', deliver: false }).then(() => registry);
      };
    expect(() =>
      IdentityRegistry.fromConfig([{ id: 'x', source: 'k8s', match: { a: 1 }, confirm: { via: 'fax', owner: 'a' } }], 'c.yml'),
    ).toThrow(/identities\[0\]\.confirm\.via: must be one of email, webhook, slack/);
    expect(() =>
      IdentityRegistry.fromConfig([{ id: 'x', source: 'k8s', match: { a: 1 }, confirm: { via: 'email', owner: 'alice' } }], 'c.yml'),
    ).toThrow(/identities\[0\]\.confirm\.owner: must be an e-mail address/);
    expect(() =>
      IdentityRegistry.fromConfig(
        [{ id: 'x', source: 'k8s', match: { a: 1 }, confirm: { via: 'webhook', owner: 'a', timeoutSeconds: 5 } }],
        'c.yml',
      ),
    ).toThrow(/identities\[0\]\.confirm\.timeoutSeconds: must be between 10 and 3600/);
    return Promise.all([
      expect(bad({ revocation: { mode: 'manual' }, confirm: { via: 'webhook', owner: 'a' } })()).rejects.toThrow(
        /identities\[0\]\.confirm: needs revocation\.mode: auto/,
      ),
      expect(
        bad(
          { revocation: { mode: 'auto', targets: ['k8s'] }, confirm: { via: 'webhook', owner: 'a' } },
          { k8s: { server: 'https://k', token: 't' } },
        )(),
      ).rejects.toThrow(/revocation\.confirm: is required/),
      expect(
        bad(
          { revocation: { mode: 'auto', targets: ['k8s'] }, confirm: { via: 'webhook', owner: 'a' } },
          { k8s: { server: 'https://k', token: 't' }, confirm: { secret: 'short', consoleUrl: 'http://c' } },
        )(),
      ).rejects.toThrow(/revocation\.confirm\.secret: must be at least 32 characters/),
      expect(
        bad(
          { revocation: { mode: 'auto', targets: ['k8s'] }, confirm: { via: 'webhook', owner: 'a' } },
          { k8s: { server: 'https://k', token: 't' }, confirm: { secret: SECRET, consoleUrl: 'http://c' } },
        )(),
      ).rejects.toThrow(/revocation\.confirm\.webhook: is required/),
    ]).then(() => expect(ConfigError).toBeDefined());
  });
});

async function select(query: string, params: Record<string, unknown>): Promise<Record<string, unknown>[]> {
  return (await store.client.query({ query, query_params: params, format: 'JSONEachRow' })).json<Record<string, unknown>>();
}

async function states(sessionId: string): Promise<string[]> {
  const rows = await select(`SELECT state FROM confirmations WHERE session_id = {s:String} ORDER BY at, state`, { s: sessionId });
  return rows.map((r) => String(r.state));
}

async function consoleGet(path: string): Promise<string> {
  const res = await fetch(`${consoleUrl}${path}`, { headers: { authorization: `Bearer ${CONSOLE_TOKEN}` } });
  expect(res.status).toBe(200);
  return res.text();
}
