import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import { MemoryBus } from '../../core/bus/memory.js';
import type { BusMessage } from '../../core/bus/types.js';
import { parseConfig } from '../../core/config.js';
import { silentLogger } from '../../core/log.js';
import { identityKey } from '../../core/pipeline/stage.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { startDetectorService } from '../../detectors/service.js';
import { TicketLedger } from '../../detectors/tickets/ledger.js';
import {
  signTicketRecord,
  TICKET_KEY_HEADER,
  TICKET_SIGNATURE_HEADER,
  TicketService,
  verifyTicketRecord,
} from '../../detectors/tickets/service.js';
import { parseTicket } from '../../detectors/tickets/ticket.js';
import { kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';
import { bgRole, cloudtrail } from '../support/events.js';

/**
 * Ticket records on the Kafka tickets topic are signed by the TicketService and verified by
 * every detector (issue 9, finding 7): a record produced straight to the topic by anyone who
 * can write to Kafka is dead-lettered with the reason, raises pipeline.ticket_forged, and
 * never authorizes a use.
 */
const SECRET = 'tickets-secret';
const ticket = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  identities: ['aws-breakglass-role'],
  requester: 'alice@example.com',
  approvers: ['bob@example.com'],
  status: 'approved',
  notBefore: '2026-11-20T09:00:00Z',
  notAfter: '2026-11-20T10:00:00Z',
  updatedAt: '2026-11-20T08:50:00Z',
  ...extra,
});

describe('signed ticket records on the real broker', () => {
  it('a forged, unsigned or tampered record produced directly to the topic does not authorize a use', async () => {
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
          {
            id: 'aws-breakglass-role',
            source: 'cloudtrail',
            match: { 'userIdentity.arn|contains': ':assumed-role/BreakGlass' },
            revocation: { mode: 'off' },
          },
        ],
        tickets: { secret: SECRET },
      },
      'signing.yml',
    );
    const bus = new KafkaBus(kafkaTestOptions());
    // A genuine ticket, published (signed) by a TicketService.
    await new TicketService(new TicketLedger(), { bus, topic: topics.tickets, log: silentLogger, secret: SECRET }).accept(
      [parseTicket(ticket('CHG-OK'), 'test')],
      'test',
    );

    // The attacker writes straight to the topic with a plain Kafka client.
    const forged = ticket('FORGED', { notBefore: '2026-11-20T14:00:00Z', notAfter: '2026-11-20T15:00:00Z' });
    const record = (t: Record<string, unknown>) => ({
      key: `${t.id}@${new Date(String(t.updatedAt)).toISOString()}`,
      value: JSON.stringify(t),
    });
    const unsigned = record({ ...forged, id: 'FORGED-UNSIGNED' });
    const guessed = record({ ...forged, id: 'FORGED-GUESSED' });
    const genuine = record(ticket('CHG-TAMPER'));
    const tampered = { key: genuine.key, value: JSON.stringify({ ...ticket('CHG-TAMPER'), notAfter: '2026-11-20T23:00:00Z' }) };
    const producer = new Kafka({ brokers: kafkaTestOptions().brokers, logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    await producer.send({
      topic: topics.tickets,
      messages: [
        unsigned,
        { ...guessed, headers: signTicketRecord('a-guessed-secret', guessed.key, guessed.value) },
        { ...tampered, headers: signTicketRecord(SECRET, genuine.key, genuine.value) },
      ],
    });
    await producer.disconnect();

    const alerts: Alert[] = [];
    const service = await startDetectorService({
      config,
      bus,
      store: null,
      log: silentLogger,
      groupId: uniqueName('detector'),
      onAlert: (a) => alerts.push(a),
    });
    const dead: BusMessage[] = [];
    const deadSub = await bus.subscribe({
      topics: [topics.deadLetters],
      groupId: uniqueName('dlq-reader'),
      fromBeginning: true,
      handler: async (m) => void dead.push(m),
    });
    try {
      await waitFor(() => alerts.filter((a) => a.type === 'pipeline.ticket_forged').length === 3, 'three forged-ticket alerts', 60_000);
      await waitFor(() => dead.length === 3, 'three dead letters', 60_000);
      expect(service.build.ledger.size).toBe(1);
      expect(service.build.ledger.latest('CHG-OK')).not.toBeNull();
      for (const id of ['FORGED-UNSIGNED', 'FORGED-GUESSED', 'CHG-TAMPER']) expect(service.build.ledger.latest(id)).toBeNull();

      const forgedAlerts = alerts.filter((a) => a.type === 'pipeline.ticket_forged');
      expect(forgedAlerts.every((a) => a.severity === 'critical')).toBe(true);
      expect(forgedAlerts.map((a) => a.reason).sort()).toEqual([
        'bad signature: forged or tampered record',
        expect.stringMatching(/^signed with an unknown key id/),
        expect.stringMatching(/^unsigned/),
      ]);
      expect(dead.map((m) => m.key).sort()).toEqual([genuine.key, guessed.key, unsigned.key].sort());
      for (const m of dead) expect(m.headers['x-glasswatch-dlq-reason']).toMatch(/refused, never applied/);

      // Uses in the forged window are unauthorized; a use under the genuine ticket is authorized.
      const events = [
        cloudtrail('2026-11-20T09:30:00Z', 'ListUsers', bgRole('ASIAGENUINE')),
        cloudtrail('2026-11-20T14:30:00Z', 'ListUsers', bgRole('ASIAFORGED', '2026-11-20T14:29:00Z')),
        cloudtrail('2026-11-20T20:30:00Z', 'ListUsers', bgRole('ASIATAMPER', '2026-11-20T20:29:00Z')),
      ];
      await bus.publish(
        topics.events,
        events.map((e) => ({ key: identityKey(e), value: JSON.stringify(e) })),
      );
      const verdicts = () => alerts.filter((a) => a.type === 'breakglass.authorized' || a.type === 'breakglass.unauthorized');
      await waitFor(() => verdicts().length === 3, 'three verdicts', 60_000);
      expect(verdicts().map((a) => `${a.time}:${a.type}:${a.ticketId ?? a.reason}`)).toEqual([
        '2026-11-20T09:30:00.000Z:breakglass.authorized:CHG-OK',
        '2026-11-20T14:30:00.000Z:breakglass.unauthorized:no_ticket',
        '2026-11-20T20:30:00.000Z:breakglass.unauthorized:no_ticket',
      ]);
    } finally {
      await deadSub.stop();
      await service.stop();
      await bus.close();
    }
  }, 180_000);
});

describe('ticket record signatures', () => {
  const value = JSON.stringify(ticket('CHG-1'));
  const key = 'CHG-1@2026-11-20T08:50:00.000Z';
  const message = (headers: Record<string, string>, v = value, k = key) => ({ key: k, value: Buffer.from(v), headers });

  it('verifies with the current or a previous secret (rotation), and binds the record key', () => {
    const signed = signTicketRecord('old-secret', key, value);
    expect(signed[TICKET_KEY_HEADER]).toMatch(/^[0-9a-f]{16}$/);
    expect(signed[TICKET_SIGNATURE_HEADER]).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(verifyTicketRecord(['new-secret', 'old-secret'], message(signed))).toEqual({ ok: true });
    expect(verifyTicketRecord(['new-secret'], message(signed))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/unknown key id/),
    });
    expect(verifyTicketRecord(['old-secret'], message(signed, value, 'CHG-1@2027-01-01T00:00:00.000Z'))).toMatchObject({
      ok: false,
      reason: 'bad signature: forged or tampered record',
    });
    expect(verifyTicketRecord([], message(signed))).toMatchObject({ ok: false });
  });

  it('a TicketService without the tickets secret refuses to publish an unsigned record', async () => {
    const bus = new MemoryBus();
    const service = new TicketService(new TicketLedger(), { bus, topic: 'glasswatch.tickets', log: silentLogger });
    await expect(service.accept([parseTicket(ticket('CHG-1'), 'test')], 'test')).rejects.toThrow(/without the tickets secret/);
    expect(bus.messages('glasswatch.tickets')).toEqual([]);
    expect(service.ledger.size).toBe(0);
    await bus.close();
  });
});
