import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KafkaBus } from '../../core/bus/kafka.js';
import { LocalSystemLog, syntheticOktaEvent } from '../../ingest/okta/local-systemlog.js';
import { kafkaBrokers, kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';

/**
 * A real crash: `glasswatch collect okta` runs as its own process against a local stand-in
 * of the System Log API, is killed with SIGKILL mid-run, and is started again. Every event
 * reaches Kafka; at most the one page that was acknowledged but not yet checkpointed is sent
 * twice.
 */
const root = new URL('../../', import.meta.url).pathname;
const PAGE = 200;
const TOTAL = 3000;
const T0 = Date.parse('2026-11-20T00:00:00Z');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

function collect(config: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/support/run-cli.ts'), 'collect', 'okta', '--config', config], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', () => {});
  children.push(child);
  return child;
}

describe('glasswatch collect okta, killed and restarted', () => {
  it('loses nothing and re-sends at most the unacknowledged page', async () => {
    const okta = await new LocalSystemLog({ authorization: 'SSWS kill-test-token' }).start();
    okta.add(Array.from({ length: TOTAL }, (_, i) => syntheticOktaEvent(i, T0 + i * 1000)));
    const dir = mkdtempSync(join(tmpdir(), 'gw-kill-'));
    const topics = {
      events: uniqueName('kill-events'),
      deadLetters: uniqueName('kill-dlq'),
      alerts: uniqueName('kill-alerts'),
      tickets: uniqueName('kill-tickets'),
    };
    const config = join(dir, 'glasswatch.yml');
    writeFileSync(
      config,
      stringify({
        bus: { kind: 'kafka', brokers: kafkaBrokers() },
        topics,
        collectors: {
          checkpointDir: join(dir, 'checkpoints'),
          alertsTopic: topics.alerts,
          okta: {
            orgUrl: okta.url,
            token: 'kill-test-token',
            since: new Date(T0 - 60_000).toISOString(),
            limit: PAGE,
            pollIntervalSeconds: 0.2,
          },
        },
      }),
    );
    const served = () => okta.requests.filter((r) => r.status === 200 && r.events > 0).length;

    const first = collect(config);
    await waitFor(() => served() >= 5, 'five pages served to the first run', 60_000);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const pagesBeforeKill = served();
    expect(pagesBeforeKill).toBeLessThan(TOTAL / PAGE);
    expect(existsSync(join(dir, 'checkpoints'))).toBe(true);

    const second = collect(config);
    const bus = new KafkaBus(kafkaTestOptions());
    const seen: string[] = [];
    const sub = await bus.subscribe({
      topics: [topics.events],
      groupId: uniqueName('kill-reader'),
      fromBeginning: true,
      handler: async (m) => void seen.push((JSON.parse(m.value.toString()) as { id: string }).id),
    });
    try {
      await waitFor(() => new Set(seen).size >= TOTAL, `all ${TOTAL} events on Kafka`, 90_000);
      // let anything in flight arrive before counting duplicates
      await new Promise((r) => setTimeout(r, 1500));
      second.kill('SIGTERM');
      await new Promise((r) => second.once('exit', r));
      const duplicates = seen.length - new Set(seen).size;
      expect(new Set(seen).size).toBe(TOTAL);
      expect(duplicates === 0 || duplicates === PAGE).toBe(true);
      // the restart resumed from the checkpoint: it did not start over from `since`
      const sinceRequests = okta.requests.filter((r) => r.url.includes('since='));
      expect(sinceRequests).toHaveLength(1);
    } finally {
      await sub.stop();
      await bus.close();
      await okta.close();
    }
  }, 180_000);
});
