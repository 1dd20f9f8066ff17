import type { Bus } from '../../core/bus/types.js';
import type { Logger } from '../../core/log.js';
import type { Store } from '../../core/store/client.js';
import { insertRows } from '../../core/store/writer.js';
import type { TicketLedger } from './ledger.js';
import { type ParseTicketOptions, parseTicket, TicketError, type TicketVersion, ticketRecord } from './ticket.js';

/**
 * Where accepted tickets go: the in-memory ledger the detector reads, the audit
 * store (`tickets`, every version), and — in streaming mode — a compacted Kafka topic
 * keyed by `id@updatedAt`, so every version survives compaction and a restarted
 * detector rebuilds the same ledger by reading the topic from the start.
 */
export class TicketService {
  constructor(
    readonly ledger: TicketLedger,
    readonly deps: {
      store?: Store | null;
      bus?: Bus | null;
      topic?: string;
      log: Logger;
      /** The identity ids of the config; a ticket naming another is refused (fail closed, whoever calls). */
      identities?: readonly string[];
    },
  ) {}

  /** Parse options every entry point (endpoint, files, topic) validates with. */
  get parseOptions(): ParseTicketOptions {
    return this.deps.identities ? { identities: this.deps.identities } : {};
  }

  /** Accepts validated ticket versions; returns how many were new. */
  async accept(versions: TicketVersion[], origin: string): Promise<number> {
    const known = this.deps.identities;
    if (known) {
      const problems = versions.flatMap((v) =>
        v.identities
          .filter((i) => !known.includes(i))
          .map(
            (i) => `${origin} (ticket ${v.id}): identities: "${i}" is not an identity of the config (known: ${known.join(', ') || 'none'})`,
          ),
      );
      if (problems.length) throw new TicketError(origin, problems);
    }
    const fresh = versions.filter((v) => this.ledger.versionAt(v.id, v.updatedAtMs)?.updatedAtMs !== v.updatedAtMs);
    if (fresh.length === 0) return 0;
    // Durable first, then visible to the detector: a crash never leaves a verdict based on a ticket nobody stored.
    if (this.deps.store)
      await insertRows(
        this.deps.store,
        'tickets',
        fresh.map((v) => ticketRow(v, origin)),
      );
    if (this.deps.bus && this.deps.topic) {
      await this.deps.bus.ensureTopic?.(this.deps.topic, { compacted: true });
      await this.deps.bus.publish(
        this.deps.topic,
        fresh.map((v) => ({
          key: `${v.id}@${v.updatedAt}`,
          value: JSON.stringify(ticketRecord(v)),
          headers: { 'glasswatch-ticket-origin': origin },
        })),
      );
    }
    let added = 0;
    for (const v of fresh) if (this.ledger.add(v)) added++;
    this.deps.log.info('tickets accepted', { origin, received: versions.length, added });
    return added;
  }

  /** Rebuilds the ledger from the tickets topic (streaming mode start-up), then follows it. */
  async follow(groupId: string): Promise<{ stop(): Promise<void> }> {
    const { bus, topic } = this.deps;
    if (!bus || !topic) throw new Error('TicketService.follow needs a bus and a topic');
    await bus.ensureTopic?.(topic, { compacted: true });
    return bus.subscribe({
      topics: [topic],
      groupId,
      fromBeginning: true,
      handler: async (m) => {
        this.ledger.add(parseTicket(JSON.parse(m.value.toString('utf8')), `${m.topic}@${m.partition}:${m.offset}`));
      },
    });
  }
}

export function ticketRow(v: TicketVersion, origin: string): Record<string, unknown> {
  const t = ticketRecord(v);
  return {
    ticket_id: t.id,
    updated_at: t.updatedAt,
    identities: t.identities,
    requester: t.requester,
    approvers: t.approvers,
    status: t.status,
    not_before: t.notBefore,
    not_after: t.notAfter,
    scope_accounts: t.scope?.accounts ?? [],
    scope_orgs: t.scope?.orgs ?? [],
    scope_clusters: t.scope?.clusters ?? [],
    reason: t.reason ?? '',
    origin,
  };
}
