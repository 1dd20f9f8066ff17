/**
 * Alerts of the bundled demo incident, raised by a real `glasswatch replay` (CLI, detector,
 * dispatcher): the fixture of the alert schema, format and routing tests.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { main } from '../../cli/main.js';

// biome-ignore lint/suspicious/noExplicitAny: alerts read back from JSON, asserted field by field
export type DemoAlert = Record<string, any>;

const demo = new URL('../../demo', import.meta.url).pathname;

export const DEMO_IDENTITIES = [
  {
    id: 'aws-root',
    source: 'cloudtrail',
    match: { 'userIdentity.type': 'Root', 'userIdentity.invokedBy': null },
    revocation: { mode: 'manual' },
  },
  {
    id: 'aws-breakglass-role',
    source: 'cloudtrail',
    match: [{ 'userIdentity.arn|contains': ':assumed-role/BreakGlass' }],
    revocation: { mode: 'manual' },
  },
  { id: 'k8s-breakglass', source: 'k8s', match: [{ 'user.username': 'breakglass-admin' }], revocation: { mode: 'off' } },
  {
    id: 'okta-emergency-admin',
    source: 'okta',
    match: { 'actor.alternateId': 'emergency-admin@example.com' },
    revocation: { mode: 'manual' },
  },
];

/** Replays the demo day with `alerts` as the config's alerts section; returns the alerts written. */
export async function replayDemo(
  alerts: Record<string, unknown> | ((dir: string) => Record<string, unknown>),
  extra: string[] = [],
  config: Record<string, unknown> = {},
): Promise<{ alerts: DemoAlert[]; dir: string; code: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-demo-alerts-'));
  const configFile = join(dir, 'glasswatch.yml');
  writeFileSync(
    configFile,
    stringify({
      ingest: { k8s: { cluster: 'prod-eu1' }, okta: { org: 'example.okta.com' } },
      identities: DEMO_IDENTITIES,
      alerts: typeof alerts === 'function' ? alerts(dir) : alerts,
      ...config,
    }),
  );
  const out = join(dir, 'alerts.jsonl');
  // The CLI reports a bad config on stderr with exit 2: turned into an error naming the field.
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  const code = await main([
    'replay',
    join(demo, 'data'),
    '--config',
    configFile,
    '--tickets',
    join(demo, 'tickets.jsonl'),
    '--alerts-out',
    out,
    '--out',
    'none',
    '--quiet',
    ...extra,
  ]).finally(() => {
    process.stderr.write = write;
  });
  if (!existsSync(out)) throw new Error(`replay exited ${code} without alerts: ${stderr.trim()}`);
  const text = readFileSync(out, 'utf8').trim();
  return { alerts: text ? text.split('\n').map((l) => JSON.parse(l)) : [], dir, code };
}
