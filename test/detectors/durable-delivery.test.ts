// Alert delivery as its own durable stage, on the real broker with real local HTTP servers: the
// detector only appends alerts to the alerts topic; one delivery worker per output retries a down
// SOC webhook until it is back (0 undelivered, 0 duplicates), the other outputs and the detector
// do not wait for it, a worker stopped mid-retry is resumed by the next one, and an alert older
// than the output's maxAge is dead-lettered with a pipeline.delivery_failed alert.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { BusMessage } from '../../core/bus/types.js';
import { parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import { identityKey } from '../../core/pipeline/stage.js';
import { type DetectorService, startDetectorService } from '../../detectors/service.js';
import { startStages } from '../../detectors/stages/index.js';
import { deleteTopics, kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';
import { cloudtrail, root } from '../support/events.js';
import { type ToggleProxy, toggleProxy } from '../support/toggle-proxy.js';

interface Soc {
  port: number;
  /** Alert ids in arrival order (one per request: the idempotency key). */
  ids: string[];
  close(): Promise<void>;
}

async function socWebhook(): Promise<Soc> {
  const ids: string[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      ids.push(String(req.headers['idempotency-key']));
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    ids,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const topicsMade: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  await deleteTopics(topicsMade);
});

function setup(hookUrl: string, extra: { delivery?: Record<string, unknown>; jsonl?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'gw-durable-'));
  const topics = {
    events: uniqueName('events'),
    deadLetters: uniqueName('dlq'),
    alerts: uniqueName('alerts'),
    tickets: uniqueName('tickets'),
    revocations: uniqueName('revocations'),
  };
  topicsMade.push(...Object.values(topics));
  const file = join(dir, 'alerts.jsonl');
  const config = parseConfig(
    {
      bus: { kind: 'kafka', brokers: kafkaTestOptions().brokers },
      topics,
      identities: [{ id: 'aws-root', source: 'cloudtrail', match: { 'userIdentity.type': 'Root' }, revocation: { mode: 'manual' } }],
      alerts: {
        webhooks: [{ url: hookUrl, secret: 'alerts-secret', name: 'soc' }],
        ...(extra.jsonl === false ? {} : { jsonl: file }),
        delivery: extra.delivery ?? { initialDelayMs: 100, maxDelayMs: 1000 },
      },
    },
    'durable.yml',
  );
  const bus = new KafkaBus(kafkaTestOptions());
  closers.push(() => bus.close());
  return { config, bus, topics, file, prefix: uniqueName('gw') };
}

/** One root session per event (own key and address): each is an unauthorized alert plus a manual-revocation alert. */
function rootSessions(n: number, tag: string): AuditEvent[] {
  return Array.from({ length: n }, (_, i) =>
    cloudtrail(new Date().toISOString(), 'ListUsers', root(`AKIA${tag}${i}`), { sourceIPAddress: `203.0.${tag.length}.${i + 1}` }),
  );
}

function fileIds(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { id: string }).id);
}

/** Times every `detector.handle` call (ms): the detection delay the detector itself adds. */
function timeHandle(service: DetectorService): number[] {
  const d = service.build.detector;
  const times: number[] = [];
  const handle = d.handle.bind(d);
  d.handle = async (...args: Parameters<typeof handle>) => {
    const t = performance.now();
    await handle(...args);
    times.push(performance.now() - t);
  };
  return times;
}

/** Waits until `value()` is positive and has not changed for a second (every alert of the judged events written). */
async function settled(value: () => number): Promise<void> {
  let last = -1;
  let since = Date.now();
  await waitFor(
    () => {
      const v = value();
      if (v !== last) {
        last = v;
        since = Date.now();
      }
      return v > 0 && Date.now() - since >= 1000;
    },
    'a settled count',
    60_000,
  );
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

async function outage(outageMs: number) {
  const soc = await socWebhook();
  closers.push(soc.close);
  const proxy: ToggleProxy = await toggleProxy(soc.port);
  closers.push(() => proxy.close());
  const { config, bus, topics, file, prefix } = setup(proxy.url);
  const service = await startDetectorService({
    config,
    bus,
    store: null,
    log: silentLogger,
    groupId: uniqueName('det'),
    workerGroupPrefix: prefix,
  });
  closers.push(() => service.stop());
  const times = timeHandle(service);
  const publish = (events: AuditEvent[]) =>
    bus.publish(
      topics.events,
      events.map((e) => ({ key: identityKey(e), value: JSON.stringify(e) })),
    );

  // Webhook up: the baseline.
  await publish(rootSessions(5, 'up'));
  await waitFor(() => service.build.detector.totals.events === 5, 'the detector to judge the first events', 60_000);
  await settled(() => fileIds(file).length);
  await waitFor(() => new Set(soc.ids).size >= fileIds(file).length, 'alerts delivered while the webhook is up', 60_000);
  const upTimes = times.splice(0);
  // Both phases raise the same alerts per session (unauthorized, manual revocation, activity).
  const upCount = fileIds(file).length;

  // Webhook down: the detector goes on at the same pace and the file output gets every alert.
  await proxy.down();
  const downAt = Date.now();
  const before = new Set(soc.ids);
  await publish(rootSessions(5, 'down'));
  await waitFor(() => service.build.detector.totals.events === 10, 'the detector to judge every event while the webhook is down', 60_000);
  await waitFor(() => fileIds(file).length >= 2 * upCount, 'the file output to get every alert while the webhook is down', 60_000);
  const downTimes = times.splice(0);
  const duringOutage = fileIds(file).filter((id) => !before.has(id));
  expect(duringOutage.length).toBe(upCount);
  expect(soc.ids.filter((id) => !before.has(id))).toEqual([]);
  const socWorker = service.stages!.delivery.find((w) => w.name === 'soc')!;
  await waitFor(() => socWorker.stats.retries > 0, 'the soc worker to be retrying', 30_000);

  await new Promise((r) => setTimeout(r, Math.max(0, outageMs - (Date.now() - downAt))));
  await proxy.up();
  const expected = new Set(fileIds(file));
  await waitFor(() => [...expected].every((id) => soc.ids.includes(id)), 'every alert at the SOC once the webhook is back', 60_000);
  await new Promise((r) => setTimeout(r, 1500));
  await service.stop();

  const counts = new Map<string, number>();
  for (const id of soc.ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  const duplicates = [...counts.values()].filter((n) => n > 1).length;
  const undelivered = [...expected].filter((id) => !counts.has(id)).length;
  const figure = {
    outageSeconds: outageMs / 1000,
    alerts: expected.size,
    undelivered,
    duplicates,
    retries: socWorker.stats.retries,
    deadLettered: socWorker.stats.deadLettered,
    handleMsUp: { mean: +mean(upTimes).toFixed(2), max: +Math.max(...upTimes).toFixed(2) },
    handleMsDown: { mean: +mean(downTimes).toFixed(2), max: +Math.max(...downTimes).toFixed(2) },
  };
  console.log(`FIGURE durable-delivery ${JSON.stringify(figure)}`);
  expect(undelivered).toBe(0);
  expect(duplicates).toBe(0);
  expect(soc.ids.length).toBe(expected.size);
  expect(socWorker.stats.deadLettered).toBe(0);
  // Detection delay unchanged: no handle call waits on the webhook (inline, each failing alert cost ~3.5 s).
  expect(Math.max(...downTimes)).toBeLessThan(1000);
  expect(mean(downTimes)).toBeLessThan(Math.max(50, mean(upTimes) * 3 + 20));
}

describe('alert delivery as a durable stage on Kafka', () => {
  it('a SOC webhook down for 8 s: every alert delivered once when it is back, the detector and the file output never wait', async () => {
    await outage(8000);
  }, 180_000);

  it("a SOC webhook down for the issue's 60 s: 0 undelivered, 0 duplicates, detection delay unchanged", async () => {
    await outage(60_000);
  }, 300_000);

  it('a delivery worker stopped mid-retry is resumed by the next one: each alert delivered once', async () => {
    const soc = await socWebhook();
    closers.push(soc.close);
    const proxy = await toggleProxy(soc.port);
    closers.push(() => proxy.close());
    const { config, bus, topics, file, prefix } = setup(proxy.url);
    // The detector alone (as `glasswatch detect`); delivery runs as its own stage (as `glasswatch deliver`).
    const service = await startDetectorService({ config, bus, store: null, log: silentLogger, groupId: uniqueName('det'), workers: false });
    closers.push(() => service.stop());
    await proxy.down();
    const events = rootSessions(4, 'restart');
    await bus.publish(
      topics.events,
      events.map((e) => ({ key: identityKey(e), value: JSON.stringify(e) })),
    );
    const first = await startStages({ config, bus, store: null, log: silentLogger, groupPrefix: prefix, revoke: false });
    const soc1 = first.delivery.find((w) => w.name === 'soc')!;
    await waitFor(() => fileIds(file).length >= 8, 'the file output to get every alert', 60_000);
    await waitFor(() => soc1.stats.retries >= 2, 'the first worker to be retrying', 30_000);
    await first.stop();
    expect(soc.ids).toEqual([]);

    await proxy.up();
    const second = await startStages({ config, bus, store: null, log: silentLogger, groupPrefix: prefix, revoke: false });
    closers.push(() => second.stop());
    const expected = new Set(fileIds(file));
    await waitFor(() => [...expected].every((id) => soc.ids.includes(id)), 'the second worker to deliver every alert', 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(soc.ids.length).toBe(expected.size);
    // The file output is not delivered twice either: the first worker committed it.
    expect(fileIds(file).length).toBe(expected.size);
  }, 180_000);

  it('an alert older than its output maxAge is dead-lettered with a pipeline.delivery_failed alert on the other outputs', async () => {
    const soc = await socWebhook();
    closers.push(soc.close);
    const proxy = await toggleProxy(soc.port);
    closers.push(() => proxy.close());
    await proxy.down();
    // 3 s of usefulness for the SOC webhook, the default (a day) for the file.
    const { config, bus, topics, file, prefix } = setup(proxy.url, {
      delivery: { initialDelayMs: 100, maxDelayMs: 500, outputs: { soc: { maxAgeMinutes: 0.05 } } },
    });
    const service = await startDetectorService({
      config,
      bus,
      store: null,
      log: silentLogger,
      groupId: uniqueName('det'),
      workerGroupPrefix: prefix,
    });
    closers.push(() => service.stop());
    const [e] = rootSessions(1, 'expire');
    await bus.publish(topics.events, [{ key: identityKey(e!), value: JSON.stringify(e) }]);
    const lines = () =>
      existsSync(file)
        ? readFileSync(file, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as { id: string; type: string; severity: string; summary: string })
        : [];
    const count = (failed: boolean) => lines().filter((a) => (a.type === 'pipeline.delivery_failed') === failed).length;
    await waitFor(() => count(false) >= 2 && count(true) === count(false), 'a delivery_failed alert in the file for each alert', 60_000);
    const failed = lines().filter((a) => a.type === 'pipeline.delivery_failed');
    const originals = lines().filter((a) => a.type !== 'pipeline.delivery_failed');
    expect(failed).toHaveLength(originals.length);
    for (const f of failed) expect(f.summary).toMatch(/was NOT delivered to soc within/);
    expect(failed.find((f) => f.summary.includes('breakglass.unauthorized'))?.severity).toBe('critical');

    const dead: BusMessage[] = [];
    const sub = await bus.subscribe({
      topics: [topics.deadLetters],
      groupId: uniqueName('dlq'),
      fromBeginning: true,
      handler: async (m) => void dead.push(m),
    });
    closers.push(() => sub.stop());
    await waitFor(() => dead.length >= originals.length, 'the dead letters of the undelivered alerts', 30_000);
    expect(dead.every((m) => /soc: not delivered after \d+ attempt/.test(m.headers['x-glasswatch-dlq-reason'] ?? ''))).toBe(true);
    // Once back, the SOC gets the delivery_failed alerts (nothing raised about them in turn).
    await proxy.up();
    await waitFor(() => soc.ids.length >= failed.length, 'the delivery_failed alerts at the SOC once it is back', 60_000);
    expect(new Set(soc.ids)).toEqual(new Set(failed.map((f) => f.id)));
  }, 180_000);
  it('glasswatch deliver killed (SIGKILL) mid-retry: the next process resumes, each alert delivered once', async () => {
    // A SOC that answers 503 until told otherwise: every attempt is counted, only 2xx deliveries are.
    let failing = true;
    let attempts = 0;
    const delivered: string[] = [];
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        attempts++;
        if (failing) {
          res.statusCode = 503;
          return res.end();
        }
        delivered.push(String(req.headers['idempotency-key']));
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => server.close(() => r(undefined))));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const dir = mkdtempSync(join(tmpdir(), 'gw-deliver-kill-'));
    const topics = {
      events: uniqueName('events'),
      deadLetters: uniqueName('dlq'),
      alerts: uniqueName('alerts'),
      tickets: uniqueName('tickets'),
      revocations: uniqueName('revocations'),
    };
    topicsMade.push(...Object.values(topics));
    const raw = {
      bus: { kind: 'kafka', brokers: kafkaTestOptions().brokers },
      store: { path: join(dir, 'store') },
      topics,
      identities: [{ id: 'aws-root', source: 'cloudtrail', match: { 'userIdentity.type': 'Root' }, revocation: { mode: 'manual' } }],
      alerts: { webhooks: [{ url, secret: 'alerts-secret', name: 'soc' }], delivery: { initialDelayMs: 100, maxDelayMs: 1000 } },
    };
    const file = join(dir, 'glasswatch.yml');
    writeFileSync(file, JSON.stringify(raw));
    const bus = new KafkaBus(kafkaTestOptions());
    closers.push(() => bus.close());
    const service = await startDetectorService({
      config: parseConfig(raw, file),
      bus,
      store: null,
      log: silentLogger,
      groupId: uniqueName('det'),
      workers: false,
    });
    closers.push(() => service.stop());
    const events = rootSessions(3, 'kill');
    await bus.publish(
      topics.events,
      events.map((e) => ({ key: identityKey(e), value: JSON.stringify(e) })),
    );
    await waitFor(() => service.build.detector.totals.events === 3, 'the detector to judge the events', 60_000);
    const appended = () => service.build.detector.options.alerts.totals.delivered;
    await settled(appended);

    const root = new URL('../../', import.meta.url).pathname;
    const deliver = () =>
      spawn(process.execPath, ['--import', 'tsx', join(root, 'test/support/run-cli.ts'), 'deliver', '--config', file], {
        cwd: root,
        stdio: 'ignore',
      });
    const first = deliver();
    await waitFor(() => attempts >= 3, 'glasswatch deliver to be retrying the 503s', 90_000);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('close', r));
    expect(delivered).toEqual([]);

    failing = false;
    const second = deliver();
    closers.push(async () => {
      second.kill('SIGTERM');
      await new Promise((r) => second.once('close', r));
    });
    await waitFor(() => new Set(delivered).size >= appended(), 'the second process to deliver every alert', 120_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(delivered.length).toBe(appended());
    expect(new Set(delivered).size).toBe(delivered.length);
  }, 240_000);
});
