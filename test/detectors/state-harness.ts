/** Detector members as child processes on the real broker, for the failover and grace tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { kafkaBrokers, kafkaTestOptions, uniqueName } from '../bus/helpers.js';

export type MemberAlert = Alert & { member: string };

/** An activity rule for every IAM call: its alerts show that each event was judged, and by whom. */
const EVERY_IAM_CALL = `title: Every IAM call (test)
id: 5d0b0f6e-3f9c-4d6f-9d55-1f0b3f1c0a11
status: test
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventSource: iam.amazonaws.com
    condition: selection
level: low
`;

export interface Harness {
  dir: string;
  topics: { events: string; deadLetters: string; alerts: string; tickets: string };
  group: string;
  alertsFile: string;
  start(instance: string): Promise<ChildProcess>;
  alerts(): MemberAlert[];
  stopAll(): void;
}

export function harness(detector: Record<string, unknown> = {}, identities?: unknown[]): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'gw-state-'));
  const rules = join(dir, 'rules');
  mkdirSync(rules);
  writeFileSync(join(rules, 'every-iam-call.yml'), EVERY_IAM_CALL);
  const topics = {
    events: uniqueName('events'),
    deadLetters: uniqueName('dlq'),
    alerts: uniqueName('alerts'),
    tickets: uniqueName('tickets'),
  };
  const config = {
    bus: { kind: 'kafka', brokers: kafkaBrokers() },
    topics,
    identities: identities ?? [
      { id: 'bg-users', source: 'cloudtrail', match: { 'userIdentity.arn|contains': ':user/bg-' }, revocation: { mode: 'off' } },
    ],
    detector: { builtinRules: false, rules: [rules], ...detector },
    tickets: { secret: 'tickets-secret' },
  };
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(config));
  const alertsFile = join(dir, 'alerts.jsonl');
  const group = uniqueName('detector');
  const children = new Set<ChildProcess>();
  let prepared = false;
  return {
    dir,
    topics,
    group,
    alertsFile,
    start: async (instance) => {
      // Topics made once, here: members creating them concurrently race in the broker's metadata.
      if (!prepared) {
        const bus = new KafkaBus(kafkaTestOptions());
        for (const t of Object.values(topics)) await bus.ensureTopic(t, { compacted: t === topics.tickets });
        await bus.close();
        prepared = true;
      }
      return new Promise<ChildProcess>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', join(import.meta.dirname, 'state-member.ts'), configFile, alertsFile, group, instance],
          {
            cwd: join(import.meta.dirname, '..', '..'),
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        children.add(child);
        let err = '';
        child.stderr!.on('data', (d: Buffer) => {
          err += d.toString();
        });
        child.stdout!.on('data', (d: Buffer) => {
          if (d.toString().includes('ready')) resolve(child);
        });
        child.on('exit', (code, signal) => {
          children.delete(child);
          reject(new Error(`member ${instance} exited (${code ?? signal}) before ready: ${err.slice(-2000)}`));
        });
      });
    },
    alerts: () => {
      if (!existsSync(alertsFile)) return [];
      // Only complete lines: a member may be appending the last one right now.
      const text = readFileSync(alertsFile, 'utf8');
      return text
        .slice(0, text.lastIndexOf('\n') + 1)
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as MemberAlert);
    },
    stopAll: () => {
      for (const c of children) c.kill('SIGKILL');
    },
  };
}

/** Unauthorized verdicts per principal: each must be exactly one session, alerted once. */
export function verdictsByPrincipal(alerts: readonly MemberAlert[]): Map<string, { sessions: Set<string>; raised: number }> {
  const out = new Map<string, { sessions: Set<string>; raised: number }>();
  for (const a of alerts) {
    if (a.type !== 'breakglass.unauthorized' && a.type !== 'breakglass.authorized') continue;
    const key = a.principal ?? '?';
    const v = out.get(key) ?? { sessions: new Set<string>(), raised: 0 };
    out.set(key, v);
    v.sessions.add(a.sessionId ?? '?');
    v.raised++;
  }
  return out;
}
