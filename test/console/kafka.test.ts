// The console on Kafka: served by `glasswatch start` (bus.kind kafka), and by `glasswatch console
// --config` as its own process following the topics over a store no other process holds.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KafkaBus } from '../../core/bus/kafka.js';
import { pipelineAlert } from '../../detectors/alerts/alert.js';
import { alertMessage } from '../../detectors/stages/alert-stage.js';
import { deleteTopics, kafkaBrokers, kafkaTestOptions, uniqueName } from '../bus/helpers.js';
import {
  auditEvent,
  bearer,
  CONSOLE_TOKEN,
  freePort,
  openStream,
  type Pipeline,
  postAudit,
  removeDir,
  startPipeline,
  waitFor,
} from './harness.js';

const root = new URL('../../', import.meta.url).pathname;

function topics() {
  const t = {
    events: uniqueName('console-events'),
    deadLetters: uniqueName('console-dlq'),
    alerts: uniqueName('console-alerts'),
    tickets: uniqueName('console-tickets'),
    revocations: uniqueName('console-revocations'),
  };
  return t;
}

function cli(args: string[], env: Record<string, string> = {}) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/support/run-cli.ts'), ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GLASSWATCH_LOG_LEVEL: 'warn', ...env },
  });
  let text = '';
  child.stderr!.on('data', (c: Buffer) => {
    text += c.toString();
  });
  child.stdout!.on('data', (c: Buffer) => {
    text += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => text, exited };
}

describe('console on Kafka', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('glasswatch start (bus kafka) serves the console: a webhook event is pushed over SSE and served from the store', async () => {
    const t = topics();
    cleanups.push(() => deleteTopics(Object.values(t)));
    const p: Pipeline = await startPipeline({ bus: { kind: 'kafka', brokers: kafkaBrokers() }, topics: t });
    cleanups.push(async () => {
      await p.stop();
      removeDir(p.dir);
    });
    const stream = await openStream(`${p.consoleUrl}/api/stream`, bearer);
    await waitFor('hello', () => stream.events.some((e) => e.event === 'hello'));
    expect(await postAudit(p.webhookUrl, [auditEvent('kafka-bg-1', { ip: '10.55.0.1' })])).toBe(200);
    const pushed = await waitFor(
      'the unauthorized alert',
      () => stream.events.find((e) => e.event === 'alert' && JSON.parse(e.data).alert.type === 'breakglass.unauthorized'),
      60_000,
    );
    await waitFor('stored', () => stream.events.some((e) => e.event === 'stored' && e.at >= pushed.at), 30_000);
    stream.close();
    const res = await fetch(`${p.consoleUrl}/api/sessions?state=open`, { headers: bearer });
    const sessions = ((await res.json()) as { sessions: { principal: string; verdict: string; source_ips: string[] }[] }).sessions;
    expect(sessions).toEqual([
      expect.objectContaining({ principal: 'breakglass-admin', verdict: 'unauthorized', source_ips: ['10.55.0.1'] }),
    ]);

    // Its chDB store is held by that process: a console process of its own says where the console is.
    const own = cli(['console', '--config', join(p.dir, 'glasswatch.yml')], { GW_TEST_CONSOLE_TOKEN: CONSOLE_TOKEN });
    expect(await own.exited).toBe(2);
    expect(own.out()).toMatch(/held by another glasswatch process|Cannot lock|lock/i);
  }, 180_000);

  it('glasswatch console --config runs as its own process: follows the alerts topic, refuses without a token, needs Kafka', async () => {
    const t = topics();
    cleanups.push(() => deleteTopics(Object.values(t)));
    const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'gw-console-own-'));
    cleanups.push(async () => removeDir(dir));
    const port = await freePort();
    const config = (bus: Record<string, unknown>) => {
      const file = join(dir, `glasswatch-${String(bus.kind)}.yml`);
      writeFileSync(
        file,
        stringify({
          store: { path: join(dir, 'store') },
          bus,
          topics: t,
          // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's environment reference, expanded by glasswatch
          console: { port, tokens: [{ name: 'soc-bob', token: '${GW_TEST_CONSOLE_TOKEN}' }] },
        }),
      );
      return file;
    };
    const env = { GW_TEST_CONSOLE_TOKEN: CONSOLE_TOKEN };
    const memory = cli(['console', '--config', config({ kind: 'memory' })], env);
    expect(await memory.exited).toBe(2);
    expect(memory.out()).toContain('bus.kind is memory');

    const kafkaConfig = config({ kind: 'kafka', brokers: kafkaBrokers() });
    const missing = cli(['console', '--config', kafkaConfig], env);
    expect(await missing.exited).toBe(2); // no store yet: never created by a reader
    expect(missing.out()).toContain('no glasswatch store');
    const migrate = cli(['store', 'migrate', '--config', kafkaConfig], env);
    expect(await migrate.exited).toBe(0);

    const own = cli(['console', '--config', kafkaConfig], env);
    cleanups.push(async () => {
      own.child.kill('SIGTERM');
      await own.exited;
    });
    await waitFor('the console to serve', () => own.out().includes(`glasswatch console: http://127.0.0.1:${port}`), 60_000);
    const url = `http://127.0.0.1:${port}`;
    expect((await fetch(`${url}/api/alerts`)).status).toBe(401);
    const stream = await openStream(`${url}/api/stream`, bearer);
    await waitFor('hello', () => stream.events.some((e) => e.event === 'hello'));
    // A detector elsewhere appends an alert to the alerts topic.
    const bus = new KafkaBus(kafkaTestOptions());
    cleanups.push(() => bus.close());
    const alert = pipelineAlert({
      type: 'pipeline.silence',
      severity: 'high',
      key: [uniqueName('silence')],
      source: 'okta',
      reason: 'no Okta event for 15 minutes',
      time: new Date().toISOString(),
      detectedAt: new Date().toISOString(),
      summary: 'okta has been silent for 15 minutes',
    });
    // Published until seen: the console's group joins the topic a moment after it serves.
    let lastPublish = 0;
    await waitFor(
      'the alert on the stream',
      async () => {
        if (Date.now() - lastPublish > 2000) {
          lastPublish = Date.now();
          await bus.publish(t.alerts, [alertMessage(alert as never)]);
        }
        return stream.events.find((e) => e.event === 'alert' && JSON.parse(e.data).alert.alert_id === alert.id);
      },
      60_000,
    );
    stream.close();
    own.child.kill('SIGTERM');
    expect(await own.exited).toBe(0);
  }, 180_000);
});
