/**
 * vitest globalSetup: gives the run a Kafka broker.
 *
 * - `KAFKA_BROKERS` set (e.g. `127.0.0.1:9092`, or `127.0.0.1:1` for runs that need no Kafka):
 *   used as is, nothing is started.
 * - A broker already started by `test/kafka/broker.sh start`: reused, and left running.
 * - Otherwise: `test/kafka/broker.sh start` (first run resolves the jars with Maven), and `stop` at teardown.
 *
 * The address reaches the tests two ways: `process.env.KAFKA_BROKERS` (vitest 4 forks and threads
 * are started after globalSetup and inherit its environment; checked on vitest 4.1 with pool 'forks')
 * and `inject('kafkaBrokers')` (vitest's provide/inject, independent of the pool).
 */
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
  }
}

const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'kafka', 'broker.sh');
const say = (line: string) => process.stderr.write(`[globalSetup] ${line}\n`);

/** Runs broker.sh, echoing its progress lines to stderr; resolves with its exit code and output. */
function broker(command: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [script, command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
      process.stderr.write(d);
    });
    child.on('error', (err) => resolve({ code: 127, output: `${output}${err.message}\n` }));
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.KAFKA_BROKERS;
  if (given) {
    project.provide('kafkaBrokers', given);
    return async () => {};
  }

  const status = spawnSync('bash', [script, 'status'], { encoding: 'utf8' });
  const running = /^running pid \d+ (\S+)/.exec(status.stdout ?? '');
  if (status.status === 0 && running?.[1]) {
    say(`reusing the Kafka broker already running at ${running[1]} (left running)`);
    process.env.KAFKA_BROKERS = running[1];
    project.provide('kafkaBrokers', running[1]);
    return async () => {};
  }

  const brokers = `127.0.0.1:${process.env.KAFKA_PORT ?? '9092'}`;
  say(`starting Kafka broker at ${brokers} (test/kafka/broker.sh start) ...`);
  const started = Date.now();
  const result = await broker('start');
  if (result.code !== 0) {
    const log = spawnSync('bash', [script, 'logs', '30'], { encoding: 'utf8' }).stdout ?? '';
    throw new Error(
      [
        `Kafka broker did not start (broker.sh exit ${result.code}).`,
        '--- broker.sh ---',
        result.output.trim(),
        '--- last lines of test/kafka/.kafka/kafka.out ---',
        log.trim() || '(empty)',
        '--- what next ---',
        'Run `test/kafka/broker.sh start` by hand to see the failure; `test/kafka/broker.sh reset` wipes the broker data;',
        'KAFKA_PORT=... picks another port; KAFKA_BROKERS=host:port uses a broker you run yourself,',
        'and KAFKA_BROKERS=127.0.0.1:1 runs the suites that need no Kafka without starting one.',
      ].join('\n'),
    );
  }
  say(`Kafka broker ready in ${((Date.now() - started) / 1000).toFixed(1)} s (KAFKA_BROKERS=${brokers})`);
  process.env.KAFKA_BROKERS = brokers;
  project.provide('kafkaBrokers', brokers);

  // An interrupted run (Ctrl-C) may skip the teardown: never leave a broker behind on the shared cores.
  let stopped = false;
  const stopSync = () => {
    if (!stopped) spawnSync('bash', [script, 'stop'], { stdio: 'inherit' });
    stopped = true;
  };
  process.once('exit', stopSync);

  return async () => {
    if (stopped) return;
    say('stopping the Kafka broker ...');
    const result = await broker('stop');
    stopped = true;
    process.removeListener('exit', stopSync);
    if (result.code !== 0) say(`broker.sh stop exited ${result.code}; check with test/kafka/broker.sh status`);
  };
}
