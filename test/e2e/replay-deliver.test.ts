import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { main } from '../../cli/main.js';

/**
 * Issue 10, item 6: a replay never pages anyone by surprise. Alerts go to --alerts-out; the
 * configured outputs (here a real webhook on 127.0.0.1) are called only with --deliver. The same
 * replay gives the same alerts file every time, with or without a store.
 */
const demo = new URL('../../demo', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gw-replay-deliver-'));
const received: { id: string }[] = [];
let server: Server;
let configFile: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString('utf8');
    });
    req.on('end', () => {
      received.push(JSON.parse(body) as { id: string });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  configFile = join(dir, 'glasswatch.yml');
  writeFileSync(
    configFile,
    stringify({
      ingest: { k8s: { cluster: 'prod-eu1' } },
      identities: [
        { id: 'aws-root', source: 'cloudtrail', match: { 'userIdentity.type': 'Root' }, revocation: { mode: 'manual' } },
        {
          id: 'aws-breakglass-role',
          source: 'cloudtrail',
          match: [{ 'userIdentity.arn|contains': ':assumed-role/BreakGlass' }],
          revocation: { mode: 'manual' },
        },
        { id: 'k8s-breakglass', source: 'k8s', match: [{ 'user.username': 'breakglass-admin' }], revocation: { mode: 'manual' } },
        {
          id: 'okta-emergency-admin',
          source: 'okta',
          match: { 'actor.alternateId': 'emergency-admin@example.com' },
          revocation: { mode: 'manual' },
        },
      ],
      alerts: { webhooks: [{ url: `http://127.0.0.1:${port}/hook`, secret: 'hook-secret' }] },
    }),
  );
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const replay = (alertsOut: string, ...extra: string[]) =>
  main([
    'replay',
    join(demo, 'data'),
    '--config',
    configFile,
    '--tickets',
    join(demo, 'tickets.jsonl'),
    '--alerts-out',
    alertsOut,
    '--out',
    'none',
    '--quiet',
    ...extra,
  ]);

const alertsOf = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: string; detectedAt: string });
// detectedAt in replay is event time + measured processing time: everything else is the same.
const withoutClock = (file: string) => alertsOf(file).map(({ detectedAt: _d, ...rest }) => rest);

describe('glasswatch replay and alert delivery', () => {
  it('without --deliver writes --alerts-out and calls no configured output', async () => {
    const file = join(dir, 'alerts.jsonl');
    expect(await replay(file)).toBe(3);
    expect(alertsOf(file).length).toBeGreaterThan(0);
    expect(received).toHaveLength(0);
  });

  it('with --deliver also sends every alert to the webhook', async () => {
    const file = join(dir, 'alerts-delivered.jsonl');
    expect(await replay(file, '--deliver')).toBe(3);
    const ids = alertsOf(file).map((a) => a.id);
    expect(received.map((r) => r.id).sort()).toEqual([...ids].sort());
  });

  it('re-running the same replay gives the same alerts file, with or without a store', async () => {
    const file = join(dir, 'alerts-rerun.jsonl');
    expect(await replay(file)).toBe(3);
    const first = withoutClock(file);
    expect(await replay(file)).toBe(3);
    expect(withoutClock(file)).toEqual(first);
    const store = join(dir, 'store');
    expect(await replay(file, '--store', store)).toBe(3);
    expect(withoutClock(file)).toEqual(first);
    expect(await replay(file, '--store', store)).toBe(3);
    expect(withoutClock(file)).toEqual(first);
  });
});

describe('glasswatch replay and ticket scope (issue 10, item 4)', () => {
  /** One System Log event of the emergency admin: a System Log page does not name its org. */
  function oktaUse(): { file: string; time: string } {
    const page = JSON.parse(readFileSync(join(demo, 'data', 'okta', 'system-log-2026-11-20.json'), 'utf8')) as {
      published: string;
      actor: { alternateId: string };
      outcome: { result: string };
    }[];
    const event = page.find((e) => e.actor?.alternateId === 'emergency-admin@example.com' && e.outcome?.result === 'SUCCESS');
    if (!event) throw new Error('the demo System Log has no event of the emergency admin');
    const file = join(dir, 'okta-use.json');
    writeFileSync(file, JSON.stringify([event]));
    return { file, time: event.published };
  }

  function scopedTicket(time: string, org: string): string {
    const ms = Date.parse(time);
    const file = join(dir, `ticket-${org}.jsonl`);
    writeFileSync(
      file,
      `${JSON.stringify({
        id: `CHG-${org}`,
        identities: ['okta-emergency-admin'],
        requester: 'alice@example.com',
        approvers: ['bob@example.com'],
        status: 'approved',
        notBefore: new Date(ms - 3_600_000).toISOString(),
        notAfter: new Date(ms + 3_600_000).toISOString(),
        scope: { orgs: [org] },
        reason: 'scope test',
        updatedAt: new Date(ms - 7_200_000).toISOString(),
      })}\n`,
    );
    return file;
  }

  async function verdict(org: string | null, ticketOrg: string): Promise<{ type: string; reason: string | null }[]> {
    const use = oktaUse();
    const config = join(dir, `scope-${org ?? 'none'}.yml`);
    writeFileSync(
      config,
      stringify({
        ...(org ? { ingest: { okta: { org } } } : {}),
        identities: [
          {
            id: 'okta-emergency-admin',
            source: 'okta',
            match: { 'actor.alternateId': 'emergency-admin@example.com' },
            revocation: { mode: 'manual' },
          },
        ],
      }),
    );
    const alerts = join(dir, `scope-alerts-${org ?? 'none'}-${ticketOrg}.jsonl`);
    const code = await main([
      'replay',
      use.file,
      '--config',
      config,
      '--tickets',
      scopedTicket(use.time, ticketOrg),
      '--alerts-out',
      alerts,
      '--out',
      'none',
      '--quiet',
    ]);
    expect(code).toBe(0);
    return readFileSync(alerts, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; reason: string | null });
  }

  it('replayed Okta events carry ingest.okta.org, so an org-scoped ticket authorizes them as live', async () => {
    const alerts = await verdict('example.okta.com', 'example.okta.com');
    expect(alerts.map((a) => a.type)).toContain('breakglass.authorized');
    expect(alerts.map((a) => a.type)).not.toContain('breakglass.unauthorized');
  });

  it('a ticket scoped to another org does not cover the replayed use', async () => {
    const alerts = await verdict('example.okta.com', 'other.okta.com');
    expect(alerts.find((a) => a.type === 'breakglass.unauthorized')).toMatchObject({ reason: 'out_of_scope' });
  });

  it('without ingest.okta.org the replayed use has no org, and the org-scoped ticket cannot cover it (what replay did before)', async () => {
    const alerts = await verdict(null, 'example.okta.com');
    expect(alerts.find((a) => a.type === 'breakglass.unauthorized')).toMatchObject({ reason: 'out_of_scope' });
  });
});

describe('AWS root events invoked by an AWS service (issue 10, item 7)', () => {
  /** The aws-root identity exactly as demo/glasswatch.yml defines it, with manual revocation. */
  function rootIdentityConfig(name: string, match: unknown): string {
    const file = join(dir, name);
    writeFileSync(file, stringify({ identities: [{ id: 'aws-root', source: 'cloudtrail', match, revocation: { mode: 'manual' } }] }));
    return file;
  }
  const demoRoot = (
    parse(readFileSync(join(demo, 'glasswatch.yml'), 'utf8')) as { identities: { id: string; match: unknown }[] }
  ).identities.find((i) => i.id === 'aws-root');

  async function rootAlerts(config: string): Promise<{ type: string; eventIds: string[]; time: string }[]> {
    const alerts = join(dir, `${config.split('/').pop()}-alerts.jsonl`);
    expect(
      await main(['replay', join(demo, 'data', 'cloudtrail'), '--config', config, '--alerts-out', alerts, '--out', 'none', '--quiet']),
    ).toBe(0);
    return readFileSync(alerts, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  }

  it('the demo data holds one root event invoked by autoscaling.amazonaws.com, and the demo identity filters on invokedBy', async () => {
    const out = join(dir, 'cloudtrail-events.jsonl');
    expect(await main(['replay', join(demo, 'data', 'cloudtrail'), '--out', out, '--quiet'])).toBe(0);
    const invoked = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { raw: { userIdentity: { type: string; invokedBy?: string } } })
      .filter((e) => e.raw.userIdentity.type === 'Root' && e.raw.userIdentity.invokedBy);
    expect(invoked.map((e) => e.raw.userIdentity.invokedBy)).toEqual(['autoscaling.amazonaws.com']);
    expect(demoRoot?.match).toEqual({ 'userIdentity.type': 'Root', 'userIdentity.invokedBy': null });
  });

  it('the demo identity does not count it as a use of the root credential; the bare Root match would', async () => {
    const serviceUse = (alerts: { type: string; time: string }[]) => alerts.filter((a) => a.time.startsWith('2026-11-20T03:30'));
    const demoAlerts = await rootAlerts(rootIdentityConfig('root-demo.yml', demoRoot?.match));
    expect(serviceUse(demoAlerts)).toEqual([]);
    // The night's intrusion by a person with the root credential is still caught.
    expect(demoAlerts.some((a) => a.type === 'breakglass.unauthorized' && a.time.startsWith('2026-11-20T22:4'))).toBe(true);
    const bare = await rootAlerts(rootIdentityConfig('root-bare.yml', { 'userIdentity.type': 'Root' }));
    expect(serviceUse(bare).map((a) => a.type)).toContain('breakglass.unauthorized');
  });
});
