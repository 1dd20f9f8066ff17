import { describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import { silentLogger } from '../../core/log.js';
import { TicketLedger } from '../../detectors/tickets/ledger.js';
import { TicketService } from '../../detectors/tickets/service.js';
import { parseTicket } from '../../detectors/tickets/ticket.js';
import { kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';

/**
 * A detector's tickets follower has its own group, named by its instance id, and must read the
 * whole tickets topic at every start. After a kill -9 the group survives with committed offsets:
 * a restart with the same instance id resumed mid-topic and its ledger missed every earlier
 * ticket (authorized uses judged unauthorized, their sessions revoked).
 */
const SECRET = 'tickets-secret';
const ticket = (id: string, updatedAt: string) =>
  parseTicket(
    {
      id,
      identities: ['aws-breakglass-role'],
      requester: 'alice@example.com',
      approvers: ['bob@example.com'],
      status: 'approved',
      notBefore: '2026-11-20T09:00:00Z',
      notAfter: '2026-11-20T10:00:00Z',
      updatedAt,
    },
    'test',
  );

describe('tickets follower after a crash', () => {
  it('a restart with the same instance id rebuilds the whole ledger, not only what came after the crash', async () => {
    const topic = uniqueName('tickets');
    const group = uniqueName('detector-tickets-instance-a');
    const bus = new KafkaBus(kafkaTestOptions());
    try {
      const publisher = new TicketService(new TicketLedger(), { bus, topic, log: silentLogger, secret: SECRET });
      await publisher.accept([ticket('CHG-1', '2026-11-20T08:00:00Z'), ticket('CHG-2', '2026-11-20T08:10:00Z')], 'test');

      // The first run reads both tickets and commits its offsets; then the process dies without a clean stop.
      const crashed = new KafkaBus(kafkaTestOptions());
      const first = new TicketLedger();
      await new TicketService(first, { bus: crashed, topic, log: silentLogger, secret: SECRET }).follow(group, { temporary: true });
      await waitFor(() => first.versionAt('CHG-2', Date.parse('2026-11-20T08:10:00Z')) !== null, 'first run read both');
      // Closing the bus stops its consumers (offsets committed) but not the follower's clean stop: the group stays, as after a crash.
      await crashed.close();

      const restarted = new TicketLedger();
      const follower = await new TicketService(restarted, { bus, topic, log: silentLogger, secret: SECRET }).follow(group, {
        temporary: true,
      });
      await publisher.accept([ticket('CHG-3', '2026-11-20T08:20:00Z')], 'test');
      await waitFor(() => restarted.versionAt('CHG-3', Date.parse('2026-11-20T08:20:00Z')) !== null, 'restart read CHG-3');
      expect(restarted.versionAt('CHG-1', Date.parse('2026-11-20T08:00:00Z'))?.id).toBe('CHG-1');
      expect(restarted.versionAt('CHG-2', Date.parse('2026-11-20T08:10:00Z'))?.id).toBe('CHG-2');
      await follower.stop();
    } finally {
      await bus.close();
    }
  }, 120_000);
});
