import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KafkaBus } from '../../core/bus/kafka.js';
import { silentLogger } from '../../core/log.js';
import { type Alert, completeAlert } from '../../detectors/alerts/alert.js';
import { alertMessage } from '../../detectors/stages/alert-stage.js';
import { deleteTopics, kafkaBrokers, uniqueName } from '../bus/helpers.js';

/**
 * A chat output groups a session's activity into one update per window. The held alerts' offsets
 * are committed when they are held, so a `glasswatch deliver` killed with SIGKILL inside the window
 * used to lose them. Now they are kept on the worker's held topic first and sent after the restart.
 */
const root = new URL('../../', import.meta.url).pathname;
const topicsToDelete: string[] = [];
afterAll(() => deleteTopics(topicsToDelete));

function deliver(config: string): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/support/run-cli.ts'), 'deliver', '--config', config], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (c: Buffer) => {
    text += c;
  });
  child.stderr!.on('data', (c: Buffer) => {
    text += c;
  });
  return { child, out: () => text, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('grouped chat updates survive a kill -9 inside the group window', () => {
  it('every held alert reaches the chat once after the restart', { timeout: 300_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-held-'));
    const run = uniqueName('held');
    const topics = { events: `${run}-events`, deadLetters: `${run}-dlq`, alerts: `${run}-alerts`, tickets: `${run}-tickets` };
    topicsToDelete.push(...Object.values(topics));
    const bodies: string[] = [];
    const chat = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => {
        text += c;
      });
      req.on('end', () => {
        bodies.push(text);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => chat.listen(0, '127.0.0.1', r));
    const config = join(dir, 'gw.yml');
    writeFileSync(
      config,
      stringify({
        store: { path: join(dir, 'store') },
        bus: { kind: 'kafka', brokers: kafkaBrokers(), clientId: 'glasswatch-held-test' },
        topics,
        alerts: {
          webhooks: [
            {
              url: `http://127.0.0.1:${(chat.address() as AddressInfo).port}/chat`,
              secret: 'chat-secret',
              name: 'chat',
              format: 'slack',
              groupWindowSeconds: 900,
            },
          ],
          delivery: { initialDelayMs: 100, maxDelayMs: 1000 },
        },
      }),
    );
    const now = Date.now();
    const alert = (n: number, type: Alert['type'], token: string): Alert =>
      completeAlert(
        {
          id: `${run}-a${n}`,
          type,
          severity: type === 'breakglass.unauthorized' ? 'critical' : 'medium',
          identity: 'k8s-breakglass',
          source: 'k8s',
          eventIds: [`${run}-e${n}`],
          ticketId: null,
          reason: null,
          category: type === 'breakglass.activity' ? 'command' : null,
          ruleId: null,
          ruleTitle: null,
          ruleAuthor: null,
          sessionId: `${run}-session`,
          principal: 'breakglass-admin',
          sourceIp: '203.0.113.7',
          time: new Date(now).toISOString(),
          detectedAt: new Date(now + n * 1000).toISOString(),
          summary: token,
        } as Alert,
        { producer: { name: 'glasswatch', version: 'test', instance: 'test' } },
      );
    const unauthorized = alert(0, 'breakglass.unauthorized', `${run}-TOKEN-unauthorized`);
    const held = [1, 2, 3].map((n) => alert(n, 'breakglass.activity', `${run}-TOKEN-activity-${n}`));
    const bus = new KafkaBus({ brokers: kafkaBrokers(), clientId: 'held-test', logger: silentLogger });
    let proc = deliver(config);
    try {
      await bus.publish(
        topics.alerts,
        [unauthorized, ...held].map((a) => alertMessage(a as Parameters<typeof alertMessage>[0])),
      );
      const count = (token: string) => bodies.filter((b) => b.includes(token)).length;
      // Generous: a process start on a loaded 2-core machine can take tens of seconds.
      const deadline = Date.now() + 180_000;
      while (count(unauthorized.summary) < 1 && Date.now() < deadline) await sleep(100);
      expect(count(unauthorized.summary), proc.out()).toBe(1);
      // The three activity alerts are held for the session's next update: wait until the worker kept them.
      const admin = new Kafka({ clientId: 'held-admin', brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      const heldTopic = `glasswatch-deliver-chat.${topics.events}-held`;
      topicsToDelete.push(heldTopic);
      const heldCount = async () => {
        try {
          return (await admin.fetchTopicOffsets(heldTopic)).reduce((n, o) => n + Number(o.high), 0);
        } catch {
          return 0;
        }
      };
      // The held topic is this run's own (the worker group carries the events-topic suffix): it starts empty.
      while ((await heldCount()) < 3 && Date.now() < deadline) await sleep(100);
      const kept = await heldCount();
      await admin.disconnect();
      expect(kept, `held alerts on ${heldTopic}\n${proc.out()}`).toBe(3);
      expect(held.every((a) => count(a.summary) === 0)).toBe(true);
      proc.child.kill('SIGKILL');
      await proc.exited;
      proc = deliver(config);
      while (held.some((a) => count(a.summary) < 1) && Date.now() < deadline) await sleep(100);
      for (const a of held) expect(count(a.summary), `${a.summary}\n${proc.out()}`).toBe(1);
      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
      // Nothing twice, also not after a clean stop and one more start (the held topic has the tombstones).
      proc = deliver(config);
      await sleep(6000);
      proc.child.kill('SIGTERM');
      await proc.exited;
      expect([unauthorized, ...held].map((a) => count(a.summary))).toEqual([1, 1, 1, 1]);
    } finally {
      proc.child.kill('SIGKILL');
      await bus.close();
      chat.close();
    }
  });
});
