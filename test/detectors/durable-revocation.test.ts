// Revocation as its own durable stage, on the real broker with the Okta stand-in behind a proxy
// that can be taken down: the detector appends a revocation order and goes on; the revocation
// worker retries the down target until it is back (revoked once, never abandoned), a worker
// restarted mid-retry resumes without revoking twice, and an order older than the target's
// maxAge is recorded `failed` with its breakglass.revocation alert and dead-lettered.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { BusMessage } from '../../core/bus/types.js';
import { parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import { identityKey } from '../../core/pipeline/stage.js';
import { oktaStandIn } from '../../detectors/revoke/standins.js';
import { type DetectorService, startDetectorService } from '../../detectors/service.js';
import { startStages } from '../../detectors/stages/index.js';
import { deleteTopics, kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';
import { okta } from '../support/events.js';
import { toggleProxy } from '../support/toggle-proxy.js';

const LOGIN = 'emergency-admin@example.com';
const USER = `00u-${LOGIN}`;
const topicsMade: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  await deleteTopics(topicsMade);
});

async function setup(retry: Record<string, unknown>) {
  const standIn = await oktaStandIn({ token: 'okta-token', users: [USER] });
  closers.push(standIn.close);
  const proxy = await toggleProxy(Number(new URL(standIn.url).port));
  closers.push(() => proxy.close());
  const dir = mkdtempSync(join(tmpdir(), 'gw-durable-rev-'));
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
      identities: [
        {
          id: 'okta-emergency-admin',
          source: 'okta',
          match: { 'actor.alternateId': LOGIN },
          revocation: { mode: 'auto', targets: ['okta'] },
        },
      ],
      revocation: { okta: { orgUrl: proxy.url, token: 'okta-token' }, retry },
      alerts: { jsonl: file },
    },
    'durable-revocation.yml',
  );
  const bus = new KafkaBus(kafkaTestOptions());
  closers.push(() => bus.close());
  const alerts = () =>
    existsSync(file)
      ? readFileSync(file, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { id: string; type: string; revocation?: { outcome: string; target: string } })
      : [];
  const revocationsAtOkta = () =>
    standIn.requests.filter((r) => r.method === 'DELETE' && r.path.startsWith(`/api/v1/users/${encodeURIComponent(USER)}/sessions`));
  return { config, bus, topics, proxy, alerts, revocationsAtOkta, prefix: uniqueName('gw') };
}

function signIn(session: string): AuditEvent {
  return okta(new Date().toISOString(), 'user.session.start', LOGIN, { authenticationContext: { externalSessionId: session } });
}

async function detector(s: Awaited<ReturnType<typeof setup>>, workers: boolean): Promise<DetectorService> {
  const service = await startDetectorService({
    config: s.config,
    bus: s.bus,
    store: null,
    log: silentLogger,
    groupId: uniqueName('det'),
    workers,
    workerGroupPrefix: s.prefix,
  });
  closers.push(() => service.stop());
  return service;
}

describe('revocation as a durable stage on Kafka', () => {
  it('the Okta target down, then up: the session is revoked once, never abandoned; the detector never waits', async () => {
    const s = await setup({ initialDelayMs: 100, maxDelayMs: 1000 });
    await s.proxy.down();
    const service = await detector(s, true);
    const e = signIn('sess-down-up');
    const t0 = Date.now();
    await s.bus.publish(s.topics.events, [{ key: identityKey(e), value: JSON.stringify(e) }]);
    await waitFor(() => service.build.detector.totals.events === 1, 'the detector to judge the sign-in', 30_000);
    const judgedMs = Date.now() - t0;
    await waitFor(() => s.alerts().some((a) => a.type === 'breakglass.unauthorized'), 'the unauthorized alert while Okta is down', 30_000);
    const worker = service.stages!.revocation.find((w) => w.o.target === 'okta')!;
    // Longer than the 5 inline attempts that used to end in `failed`.
    await waitFor(() => worker.retries >= 6, 'the revocation worker to keep retrying', 60_000);
    expect(s.alerts().filter((a) => a.type === 'breakglass.revocation')).toEqual([]);

    await s.proxy.up();
    await waitFor(() => s.alerts().some((a) => a.type === 'breakglass.revocation'), 'the revocation outcome alert', 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    const outcomes = s.alerts().filter((a) => a.type === 'breakglass.revocation');
    expect(outcomes.map((a) => a.revocation?.outcome)).toEqual(['revoked']);
    expect(s.revocationsAtOkta()).toHaveLength(1);
    console.log(
      `FIGURE durable-revocation ${JSON.stringify({ judgedMs, retriesWhileDown: worker.retries, revokedAtOkta: s.revocationsAtOkta().length })}`,
    );
  }, 180_000);

  it('a revocation worker stopped mid-retry is resumed by the next one: revoked once', async () => {
    const s = await setup({ initialDelayMs: 100, maxDelayMs: 1000 });
    await s.proxy.down();
    await detector(s, false);
    const first = await startStages({ config: s.config, bus: s.bus, store: null, log: silentLogger, groupPrefix: s.prefix });
    const e = signIn('sess-restart');
    await s.bus.publish(s.topics.events, [{ key: identityKey(e), value: JSON.stringify(e) }]);
    const w1 = first.revocation.find((w) => w.o.target === 'okta')!;
    await waitFor(() => w1.retries >= 2, 'the first worker to be retrying', 60_000);
    await first.stop();
    expect(s.revocationsAtOkta()).toHaveLength(0);

    await s.proxy.up();
    const second = await startStages({ config: s.config, bus: s.bus, store: null, log: silentLogger, groupPrefix: s.prefix });
    closers.push(() => second.stop());
    await waitFor(() => s.alerts().some((a) => a.type === 'breakglass.revocation'), 'the second worker to revoke', 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(s.revocationsAtOkta()).toHaveLength(1);
    expect(
      s
        .alerts()
        .filter((a) => a.type === 'breakglass.revocation')
        .map((a) => a.revocation?.outcome),
    ).toEqual(['revoked']);
  }, 180_000);

  it('an order older than the target maxAge is recorded failed with its alert and dead-lettered', async () => {
    const s = await setup({ initialDelayMs: 100, maxDelayMs: 500, targets: { okta: { maxAgeMinutes: 0.05 } } });
    await s.proxy.down();
    await detector(s, true);
    const e = signIn('sess-expire');
    await s.bus.publish(s.topics.events, [{ key: identityKey(e), value: JSON.stringify(e) }]);
    await waitFor(() => s.alerts().some((a) => a.type === 'breakglass.revocation'), 'the failed revocation alert', 60_000);
    const outcome = s.alerts().find((a) => a.type === 'breakglass.revocation')!;
    expect(outcome.revocation).toMatchObject({ outcome: 'failed', target: 'okta' });
    const dead: BusMessage[] = [];
    const sub = await s.bus.subscribe({
      topics: [s.topics.deadLetters],
      groupId: uniqueName('dlq'),
      fromBeginning: true,
      handler: async (m) => void dead.push(m),
    });
    closers.push(() => sub.stop());
    await waitFor(() => dead.length >= 1, 'the dead-lettered order', 30_000);
    expect(dead[0]!.headers['x-glasswatch-dlq-reason']).toMatch(/revocation at okta failed after \d+ attempt/);
  }, 120_000);
});
