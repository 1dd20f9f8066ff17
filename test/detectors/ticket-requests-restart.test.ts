// A restarted detector reads the whole tickets topic again (real broker) and raises none of the
// request, approval and overdue alerts it raised before; a ticket version arriving after the
// restart is alerted at once. Observed at a real local webhook, with rows in a real chDB store.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import { type GlasswatchConfig, parseConfig } from '../../core/config.js';
import { silentLogger } from '../../core/log.js';
import { migrate, openStore } from '../../core/store/index.js';
import { type DetectorService, startDetectorService } from '../../detectors/service.js';
import { deleteTopics, kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';
import { hook, postTicket, TICKETS_SECRET, ticket } from './ticket-requests-support.js';

const topicsMade: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  await deleteTopics(topicsMade);
});

describe('request alerts across a detector restart (Kafka tickets topic)', () => {
  it('replaying the tickets topic re-raises nothing; a new version after the restart is alerted', async () => {
    const store = openStore({ kind: 'chdb', path: join(mkdtempSync(join(tmpdir(), 'gw-treq-restart-')), 'store') });
    closers.push(() => store.close());
    await migrate(store);
    const soc = await hook();
    closers.push(() => soc.close());
    const topics = {
      events: uniqueName('events'),
      deadLetters: uniqueName('dlq'),
      alerts: uniqueName('alerts'),
      tickets: uniqueName('tickets'),
      revocations: uniqueName('revocations'),
    };
    topicsMade.push(...Object.values(topics));
    const config: GlasswatchConfig = parseConfig(
      {
        bus: { kind: 'kafka', brokers: kafkaTestOptions().brokers },
        topics,
        identities: [{ id: 'okta-admin', source: 'okta', match: { 'actor.alternateId': 'breakglass@example.com' } }],
        tickets: { secret: TICKETS_SECRET, approvalSlaMinutes: 0.05, http: { listen: '127.0.0.1:0', secret: TICKETS_SECRET } },
        alerts: { webhooks: [{ url: soc.url, secret: 'hook-secret', name: 'soc' }], delivery: { initialDelayMs: 100, maxDelayMs: 1000 } },
      },
      'restart.yml',
    );
    const start = async (instance: string): Promise<DetectorService> => {
      const bus = new KafkaBus(kafkaTestOptions());
      const service = await startDetectorService({ config, bus, store, log: silentLogger, instanceId: instance });
      return {
        ...service,
        stop: async () => {
          await service.stop();
          await bus.close();
        },
      };
    };
    const types = () => soc.bodies.map((b) => `${b.type} ${b.ticketId}`).sort();
    const now = Date.now();
    const withIdentity = { identities: ['okta-admin'] };

    const first = await start(uniqueName('one'));
    expect(await postTicket(first.ticketsUrl!, ticket('CHG-1', 'requested', now - 2000, withIdentity))).toBe(202);
    expect(await postTicket(first.ticketsUrl!, ticket('CHG-1', 'approved', now - 1000, withIdentity))).toBe(202);
    expect(await postTicket(first.ticketsUrl!, ticket('CHG-2', 'requested', now - 10_000, withIdentity))).toBe(202);
    const before = [
      'breakglass.requested CHG-1',
      'breakglass.approved CHG-1',
      'breakglass.requested CHG-2',
      'breakglass.approval_overdue CHG-2',
    ];
    await waitFor(() => soc.bodies.length >= 4, 'four alerts at the webhook', 30_000);
    expect(types()).toEqual(before.sort());
    await first.stop();

    const second = await start(uniqueName('two'));
    closers.push(() => second.stop());
    // The restarted ledger has every version back from the topic; several overdue sweeps (every 1 s) pass.
    await waitFor(
      () => second.build.ledger.latest('CHG-1')?.status === 'approved' && second.build.ledger.latest('CHG-2') !== null,
      'ledger rebuilt',
    );
    await new Promise((r) => setTimeout(r, 3000));
    await second.requests.settle(true);
    expect(second.requests.totals).toEqual({ 'breakglass.requested': 0, 'breakglass.approved': 0, 'breakglass.approval_overdue': 0 });
    expect(types()).toEqual(before.sort());

    // Still live after the restart: a new request is alerted, once.
    expect(await postTicket(second.ticketsUrl!, ticket('CHG-3', 'requested', Date.now(), withIdentity))).toBe(202);
    await waitFor(() => soc.bodies.length >= 5, 'the new request at the webhook', 30_000);
    expect(types()).toEqual([...before, 'breakglass.requested CHG-3'].sort());
    const ids = soc.bodies.map((b) => b.id);
    expect(new Set(ids).size).toBe(ids.length);
    const rows = await (
      await store.client.query({
        query: "SELECT count() AS n, uniqExact(alert_id) AS ids FROM alerts WHERE type LIKE 'breakglass.%'",
        format: 'JSONEachRow',
      })
    ).json<{ n: string | number; ids: string | number }>();
    expect([Number(rows[0]!.n), Number(rows[0]!.ids)]).toEqual([5, 5]);
  }, 120_000);
});
