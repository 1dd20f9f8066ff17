import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { BusMessage } from '../../core/bus/types.js';
import { parseConfig } from '../../core/config.js';
import { silentLogger } from '../../core/log.js';
import { identityKey } from '../../core/pipeline/stage.js';
import { signedHeaders } from '../../core/signing.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { startDetectorService } from '../../detectors/service.js';
import { TicketLedger } from '../../detectors/tickets/ledger.js';
import { TicketService } from '../../detectors/tickets/service.js';
import { parseTicket } from '../../detectors/tickets/ticket.js';
import { kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';
import { bgRole, cloudtrail, okta, root } from '../support/events.js';

/**
 * The live path on the real broker: events on the events topic, tickets on the tickets
 * topic and the signed tickets endpoint, alerts on the alerts topic and a webhook.
 */
let store: Store;
let hook: { url: string; bodies: string[]; close: () => Promise<void> };

beforeAll(async () => {
  store = openStore({ kind: 'chdb', path: join(mkdtempSync(join(tmpdir(), 'gw-stream-')), 'store') });
  await migrate(store);
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let b = '';
    req.on('data', (c: Buffer) => {
      b += c;
    });
    req.on('end', () => {
      bodies.push(b);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hook = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bodies,
    close: () => new Promise((r) => server.close(() => r())),
  };
});
afterAll(async () => {
  await hook.close();
  await store.close();
});

describe('streaming detector on Kafka', () => {
  it('judges events from Kafka with tickets from Kafka and HTTP; a restart from the beginning delivers nothing twice', async () => {
    const topics = {
      events: uniqueName('events'),
      deadLetters: uniqueName('dlq'),
      alerts: uniqueName('alerts'),
      tickets: uniqueName('tickets'),
    };
    const config = parseConfig(
      {
        bus: { kind: 'kafka', brokers: kafkaTestOptions().brokers },
        topics,
        identities: [
          { id: 'aws-root', source: 'cloudtrail', match: { 'userIdentity.type': 'Root' }, revocation: { mode: 'manual' } },
          {
            id: 'aws-breakglass-role',
            source: 'cloudtrail',
            match: { 'userIdentity.arn|contains': ':assumed-role/BreakGlass' },
            revocation: { mode: 'off' },
          },
          {
            id: 'okta-emergency-admin',
            source: 'okta',
            match: { 'actor.alternateId': 'emergency-admin@example.com' },
            revocation: { mode: 'off' },
          },
        ],
        tickets: { http: { listen: '127.0.0.1:0', secret: 'tickets-secret' } },
        alerts: { webhooks: [{ url: hook.url, secret: 'alerts-secret', name: 'soc' }], kafka: { topic: topics.alerts } },
      },
      'stream.yml',
    );
    const bus = new KafkaBus(kafkaTestOptions());
    const alertsSeen: BusMessage[] = [];
    const alertSub = await bus.subscribe({
      topics: [topics.alerts],
      groupId: uniqueName('alerts-reader'),
      fromBeginning: true,
      handler: async (m) => void alertsSeen.push(m),
    });

    // A ticket accepted before the detector starts: it lives in the compacted tickets topic.
    // Records on the tickets topic are signed with the tickets secret; every detector verifies them.
    await new TicketService(new TicketLedger(), { bus, topic: topics.tickets, log: silentLogger, secret: 'tickets-secret' }).accept(
      [
        parseTicket(
          {
            id: 'CHG-1',
            identities: ['aws-breakglass-role'],
            requester: 'alice@example.com',
            approvers: ['bob@example.com'],
            status: 'approved',
            notBefore: '2026-11-20T09:00:00Z',
            notAfter: '2026-11-20T10:00:00Z',
            updatedAt: '2026-11-20T08:50:00Z',
          },
          'test',
        ),
      ],
      'test',
    );
    const admin = new Kafka({ brokers: kafkaTestOptions().brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topics.tickets, configNames: ['cleanup.policy'] }],
    });
    await admin.disconnect();
    expect(described.resources[0]!.configEntries[0]).toMatchObject({ configName: 'cleanup.policy', configValue: 'compact' });

    const service = await startDetectorService({ config, bus, store, log: silentLogger, groupId: uniqueName('detector') });
    await waitFor(() => service.build.ledger.size === 1, 'the ledger to load the tickets topic', 30_000);

    // A second ticket arrives on the signed HTTP endpoint.
    const t2 = JSON.stringify({
      id: 'CHG-2',
      identities: ['okta-emergency-admin'],
      requester: 'erin@example.com',
      approvers: ['carol@example.com'],
      status: 'approved',
      notBefore: '2026-11-20T22:00:00Z',
      notAfter: '2026-11-20T23:00:00Z',
      updatedAt: '2026-11-20T21:59:00Z',
    });
    const res = await fetch(`${service.ticketsUrl}/tickets`, {
      method: 'POST',
      body: t2,
      headers: { 'content-type': 'application/json', ...signedHeaders('tickets-secret', t2) },
    });
    expect(res.status).toBe(202);

    const events = [
      cloudtrail('2026-11-20T09:10:00Z', 'ListUsers', bgRole('ASIA1')),
      cloudtrail('2026-11-20T09:11:00Z', 'ListRoles', bgRole('ASIA1')),
      cloudtrail('2026-11-20T22:41:52Z', 'ListUsers', root('AKIAR')),
      cloudtrail('2026-11-20T22:42:10Z', 'StopLogging', root('AKIAR')),
      okta('2026-11-20T22:47:41Z', 'user.session.start', 'emergency-admin@example.com'),
      cloudtrail('2026-11-20T22:50:00Z', 'ListUsers', {
        type: 'IAMUser',
        userName: 'carol',
        accessKeyId: 'AKIAC',
        arn: 'arn:aws:iam::111122223333:user/carol',
      }),
    ];
    await bus.publish(
      topics.events,
      events.map((e) => ({ key: identityKey(e), value: JSON.stringify(e) })),
    );
    // Poison: not JSON; must be dead-lettered, consumption goes on.
    await bus.publish(topics.events, [{ key: 'x', value: '{not json' }]);

    const byType = () => alertsSeen.map((m) => JSON.parse(m.value.toString()).type as string);
    await waitFor(
      () => byType().filter((t) => t.startsWith('breakglass.') && t !== 'breakglass.activity').length >= 3,
      'verdict alerts on the alerts topic',
      60_000,
    );
    await waitFor(() => service.build.detector.totals.events === 6, 'all events consumed', 30_000);
    // The poison message may sit on a partition handled after the six events: stop only once it is dead-lettered.
    const early: BusMessage[] = [];
    const earlySub = await bus.subscribe({
      topics: [topics.deadLetters],
      groupId: uniqueName('dlq-early'),
      fromBeginning: true,
      handler: async (m) => void early.push(m),
    });
    await waitFor(() => early.length >= 1, 'the poison message to be dead-lettered', 30_000);
    await earlySub.stop();
    await service.stop();

    const verdicts = alertsSeen
      .map((m) => JSON.parse(m.value.toString()))
      .filter((a) => a.type === 'breakglass.authorized' || a.type === 'breakglass.unauthorized');
    expect(verdicts.map((a) => `${a.identity}:${a.type}:${a.ticketId ?? a.reason}`).sort()).toEqual([
      'aws-breakglass-role:breakglass.authorized:CHG-1',
      'aws-root:breakglass.unauthorized:no_ticket',
      'okta-emergency-admin:breakglass.authorized:CHG-2',
    ]);
    expect(verdicts.find((a) => a.identity === 'aws-root').reason).toBe('no_ticket');
    const delivered = hook.bodies.length;
    expect(delivered).toBe(alertsSeen.length);
    const alertCount = alertsSeen.length;

    // The manual revocation is recorded for the SOC.
    const rev = await (await store.client.query({ query: 'SELECT identity, outcome FROM revocations', format: 'JSONEachRow' })).json();
    expect(rev).toEqual([{ identity: 'aws-root', outcome: 'manual' }]);

    // Restart with a fresh consumer group: every event is consumed again, nothing is delivered again.
    const again = await startDetectorService({
      config: { ...config, sections: { ...config.sections, tickets: { secret: 'tickets-secret' } } },
      bus,
      store,
      log: silentLogger,
      groupId: uniqueName('detector'),
    });
    await waitFor(() => again.build.detector.totals.events === 6, 'the re-run to consume every event', 60_000);
    await again.stop();
    await new Promise((r) => setTimeout(r, 1500));
    expect(hook.bodies.length).toBe(delivered);
    expect(alertsSeen.length).toBe(alertCount);

    // The poison message reached the dead-letter topic with its reason.
    const dead: BusMessage[] = [];
    const deadSub = await bus.subscribe({
      topics: [topics.deadLetters],
      groupId: uniqueName('dlq-reader'),
      fromBeginning: true,
      handler: async (m) => void dead.push(m),
    });
    await waitFor(() => dead.length >= 1, 'the dead letter', 30_000);
    expect(dead[0]!.headers['x-glasswatch-dlq-reason']).toMatch(/not JSON/);
    await deadSub.stop();
    await alertSub.stop();
    await bus.close();
  }, 180_000);
});
