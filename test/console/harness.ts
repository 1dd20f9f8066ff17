import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { signedHeaders } from '../../core/signing.js';

/**
 * `glasswatch start` as an operator runs it with the console configured: in-process bus (or Kafka),
 * chDB store, the Kubernetes audit webhook and the signed tickets endpoint. Tests drive it over HTTP.
 */
const root = new URL('../../', import.meta.url).pathname;

export const CONSOLE_TOKEN = 'soc-alice-console-token-0123456789';
export const AUDIT_TOKEN = 'audit-webhook-token-0123456789';
export const TICKETS_SECRET = 'tickets-secret-for-console-tests-0123';

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, check: () => T | Promise<T>, ms = 30_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

export interface Pipeline {
  dir: string;
  storePath: string;
  consoleUrl: string;
  webhookUrl: string;
  ticketsUrl: string;
  output: () => string;
  /** SIGTERM and wait for a clean exit (the store is free afterwards). */
  stop(): Promise<number | null>;
  /** SIGKILL: a crash, nothing flushed or closed. */
  kill(): Promise<void>;
}

export async function startPipeline(
  o: {
    bus?: Record<string, unknown>;
    topics?: Record<string, string>;
    /** Config overrides; a function gets the console's port (a confirmation link names the console). */
    extra?: Record<string, unknown> | ((ports: { console: number }) => Record<string, unknown>);
    /** The directory of an earlier run (its store and checkpoints): a restart, e.g. after a kill -9. */
    dir?: string;
  } = {},
): Promise<Pipeline> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'gw-console-'));
  const [webhookPort, ticketsPort, consolePort] = [await freePort(), await freePort(), await freePort()];
  const config = join(dir, 'glasswatch.yml');
  const storePath = join(dir, 'store');
  writeFileSync(
    config,
    stringify({
      store: { path: storePath },
      bus: o.bus ?? { kind: 'memory' },
      ...(o.topics ? { topics: o.topics } : {}),
      collectors: {
        checkpointDir: join(dir, 'checkpoints'),
        k8s: {
          cluster: 'prod-eu1',
          receiver: { host: '127.0.0.1', port: webhookPort, path: '/audit', token: AUDIT_TOKEN, insecureHttp: true },
        },
      },
      identities: [
        {
          id: 'k8s-breakglass',
          source: 'k8s',
          match: [{ 'user.username': 'breakglass-admin' }, { 'user.groups': 'system:masters' }],
          revocation: { mode: 'manual' },
        },
      ],
      tickets: { secret: TICKETS_SECRET, http: { listen: `127.0.0.1:${ticketsPort}`, secret: TICKETS_SECRET } },
      alerts: { jsonl: join(dir, 'alerts.jsonl') },
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's environment reference, expanded by glasswatch
      console: { host: '127.0.0.1', port: consolePort, tokens: [{ name: 'soc-alice', token: '${GW_TEST_CONSOLE_TOKEN}' }] },
      ...(typeof o.extra === 'function' ? o.extra({ console: consolePort }) : o.extra),
    }),
  );
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'test/support/run-cli.ts'), 'start', '--config', config],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GW_TEST_CONSOLE_TOKEN: CONSOLE_TOKEN, GLASSWATCH_LOG_LEVEL: 'warn' },
    },
  );
  let text = '';
  child.stdout!.on('data', (c: Buffer) => {
    text += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    text += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  await waitFor(
    'glasswatch start to serve the console',
    () => {
      if (gone) throw new Error(`glasswatch start exited:\n${text}`);
      return /glasswatch start: chDB/.test(text) && text.includes('console: http://');
    },
    90_000,
  );
  return {
    dir,
    storePath,
    consoleUrl: `http://127.0.0.1:${consolePort}`,
    webhookUrl: `http://127.0.0.1:${webhookPort}/audit`,
    ticketsUrl: `http://127.0.0.1:${ticketsPort}/tickets`,
    output: () => text,
    stop: async () => {
      if (!gone) child.kill('SIGTERM');
      const code = await exited;
      return code;
    },
    kill: async () => {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** One apiserver audit event by `user` (the break-glass identity matches `breakglass-admin` or `system:masters`). */
export function auditEvent(id: string, o: { user?: string; groups?: string[]; ip?: string; resource?: string; verb?: string } = {}) {
  const t = new Date().toISOString().replace('Z', '000Z');
  const resource = o.resource ?? 'secrets';
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: id,
    stage: 'ResponseComplete',
    requestURI: `/api/v1/namespaces/payments/${resource}`,
    verb: o.verb ?? 'list',
    user: { username: o.user ?? 'breakglass-admin', groups: o.groups ?? ['system:authenticated'] },
    sourceIPs: [o.ip ?? '10.20.30.40'],
    userAgent: 'kubectl/v1.31.0',
    objectRef: { resource, namespace: 'payments', apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: t,
    stageTimestamp: t,
  };
}

/** Posts an EventList to the webhook as the apiserver does; resolves with the status. */
export async function postAudit(url: string, events: Record<string, unknown>[]): Promise<number> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AUDIT_TOKEN}` },
    body: JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: events }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** Submits a ticket version to the signed tickets endpoint. */
export async function submitTicket(url: string, ticket: Record<string, unknown>): Promise<number> {
  const body = JSON.stringify(ticket);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signedHeaders(TICKETS_SECRET, body) },
    body,
  });
  await res.arrayBuffer();
  return res.status;
}

export function ticket(id: string, status: 'requested' | 'approved', updatedAt: Date): Record<string, unknown> {
  const from = new Date(updatedAt.getTime() + 60_000);
  return {
    id,
    identities: ['k8s-breakglass'],
    requester: 'dave@example.com',
    approvers: status === 'approved' ? ['erin@example.com'] : [],
    status,
    notBefore: from.toISOString(),
    notAfter: new Date(from.getTime() + 3_600_000).toISOString(),
    reason: 'payments outage: rotate the broken secret',
    updatedAt: updatedAt.toISOString(),
  };
}

export const bearer = { authorization: `Bearer ${CONSOLE_TOKEN}` };

/** A server-sent-event reader over fetch: collects every event with its arrival time. */
export async function openStream(url: string, headers: Record<string, string>) {
  const controller = new AbortController();
  const res = await fetch(url, { headers, signal: controller.signal });
  const events: { event: string; data: string; at: number }[] = [];
  if (res.ok && res.body) {
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let i = buffer.indexOf('\n\n');
          while (i >= 0) {
            const block = buffer.slice(0, i);
            buffer = buffer.slice(i + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
            const data = /^data: (.*)$/m.exec(block)?.[1] ?? '';
            events.push({ event, data, at: performance.now() });
            i = buffer.indexOf('\n\n');
          }
        }
      } catch {
        // aborted
      }
    })();
  }
  return { status: res.status, headers: res.headers, events, close: () => controller.abort() };
}
