import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Bus, BusMessage } from '../../core/bus/types.js';
import { GlasswatchError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Store } from '../../core/store/client.js';
import { insertRows } from '../../core/store/writer.js';
import { type Alert, pipelineAlert } from '../alerts/alert.js';
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
      /** The tickets secret: signs every record this service publishes, verifies every record it follows. */
      secret?: string | null;
      /** Secrets still accepted when verifying (rotation): records signed before the switch stay valid. */
      previousSecrets?: readonly string[];
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
      const secret = this.deps.secret;
      // Every detector refuses unsigned records: publishing one would authorize nothing and alert the SOC.
      if (!secret)
        throw new GlasswatchError(
          'BG_DETECT_TICKET_UNSIGNED',
          `tickets cannot be published to ${this.deps.topic} without the tickets secret`,
          {
            stage: 'config',
            hint: 'set tickets.secret (or tickets.http.secret) in the config',
          },
        );
      await this.deps.bus.ensureTopic?.(this.deps.topic, { compacted: true });
      await this.deps.bus.publish(
        this.deps.topic,
        fresh.map((v) => {
          const key = `${v.id}@${v.updatedAt}`;
          const value = JSON.stringify(ticketRecord(v));
          return { key, value, headers: { 'glasswatch-ticket-origin': origin, ...signTicketRecord(secret, key, value) } };
        }),
      );
    }
    let added = 0;
    for (const v of fresh) if (this.ledger.add(v)) added++;
    this.deps.log.info('tickets accepted', { origin, received: versions.length, added });
    return added;
  }

  /**
   * Rebuilds the ledger from the tickets topic (streaming mode start-up), then follows it.
   * Every record is verified before it is applied: an unsigned, forged or tampered record
   * (or one signed with an unknown key) is never applied; `onForged` is told (the detector
   * raises `pipeline.ticket_forged`) and the record goes to `deadLetterTopic` with the reason.
   */
  async follow(
    groupId: string,
    o: {
      deadLetterTopic?: string;
      onForged?: (m: BusMessage, reason: string) => Promise<void>;
      /**
       * The group is this instance's own (every detector reads every ticket version): it is
       * deleted at a clean stop, so restarts leave no stale groups on the broker.
       */
      temporary?: boolean;
    } = {},
  ): Promise<{ stop(): Promise<void> }> {
    const { bus, topic } = this.deps;
    if (!bus || !topic) throw new Error('TicketService.follow needs a bus and a topic');
    const secrets = [this.deps.secret, ...(this.deps.previousSecrets ?? [])].filter((s): s is string => !!s);
    if (secrets.length === 0)
      this.deps.log.warn('no tickets secret: every record of the tickets topic will be refused as unverifiable', { topic });
    await bus.ensureTopic?.(topic, { compacted: true });
    if (o.temporary && bus.deleteGroups) await dropStaleGroup(bus.deleteGroups.bind(bus), groupId);
    const subscription = await bus.subscribe({
      topics: [topic],
      groupId,
      fromBeginning: true,
      ...(o.deadLetterTopic ? { deadLetterTopic: o.deadLetterTopic } : {}),
      handler: async (m) => {
        const where = `${m.topic}[${m.partition}]@${m.offset}`;
        const check = verifyTicketRecord(secrets, m);
        if (!check.ok) {
          this.deps.log.error('ticket record refused: not signed with the tickets secret', { where, reason: check.reason });
          await o.onForged?.(m, check.reason);
          throw new GlasswatchError('BG_DETECT_TICKET_FORGED', `ticket record ${where} refused, never applied: ${check.reason}`, {
            stage: 'receiving',
            retriable: false,
          });
        }
        this.ledger.add(parseTicket(JSON.parse(m.value.toString('utf8')), where, this.parseOptions));
      },
    });
    if (!o.temporary || !bus.deleteGroups) return subscription;
    const deleteGroups = bus.deleteGroups.bind(bus);
    return {
      stop: async () => {
        await subscription.stop();
        // Its offsets are worthless to anyone else: the next start re-reads the topic from the beginning.
        await deleteGroups([groupId]).catch((err: unknown) =>
          this.deps.log.warn('temporary tickets consumer group not deleted', { groupId, error: (err as Error).message }),
        );
      },
    };
  }
}

/** Headers of a signed ticket record on the topic. */
export const TICKET_SIGNATURE_HEADER = 'x-glasswatch-ticket-signature';
export const TICKET_KEY_HEADER = 'x-glasswatch-ticket-key';

/**
 * Names a secret without revealing it, so a detector knows which of its secrets (current,
 * previous) to verify with during a rotation.
 */
export function ticketKeyId(secret: string): string {
  return createHash('sha256').update(`glasswatch-ticket-key\u0000${secret}`).digest('hex').slice(0, 16);
}

/** HMAC-SHA256 over the record key and value: a signed value cannot be replayed under another key. */
export function signTicketRecord(secret: string, key: string, value: string | Buffer): Record<string, string> {
  const mac = createHmac('sha256', secret).update(key).update('\n').update(value).digest('hex');
  return { [TICKET_KEY_HEADER]: ticketKeyId(secret), [TICKET_SIGNATURE_HEADER]: `v1=${mac}` };
}

export type RecordCheck = { ok: true } | { ok: false; reason: string };

export function verifyTicketRecord(secrets: readonly string[], m: Pick<BusMessage, 'key' | 'value' | 'headers'>): RecordCheck {
  const given = m.headers[TICKET_SIGNATURE_HEADER];
  if (!given) return { ok: false, reason: 'unsigned: no x-glasswatch-ticket-signature header' };
  if (secrets.length === 0) return { ok: false, reason: 'no tickets secret configured to verify the signature' };
  const keyId = m.headers[TICKET_KEY_HEADER];
  const secret = secrets.find((s) => ticketKeyId(s) === keyId);
  if (!secret) return { ok: false, reason: `signed with an unknown key id ${JSON.stringify(String(keyId).slice(0, 32))}` };
  const expected = Buffer.from(signTicketRecord(secret, m.key ?? '', m.value)[TICKET_SIGNATURE_HEADER]!);
  const actual = Buffer.from(given);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual))
    return { ok: false, reason: 'bad signature: forged or tampered record' };
  return { ok: true };
}

/** The alert a refused ticket record raises: someone who can produce to Kafka tried to authorize a use. */
export function forgedTicketAlert(m: BusMessage, reason: string, deadLetterTopic: string | null): Alert {
  const where = `${m.topic}[${m.partition}]@${m.offset}`;
  return pipelineAlert({
    type: 'pipeline.ticket_forged',
    severity: 'critical',
    key: [m.topic, String(m.partition), m.offset],
    reason,
    time: new Date(m.timestamp).toISOString(),
    detectedAt: new Date().toISOString(),
    summary: `ticket record ${where} (key ${JSON.stringify((m.key ?? '').slice(0, 120))}) refused and never applied: ${reason}; anyone who produced it can write to the tickets topic${deadLetterTopic ? `; dead-lettered to ${deadLetterTopic}` : ''}`,
  });
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

/**
 * A kill -9 leaves an instance's own group behind with committed offsets: `fromBeginning` does not
 * apply to a group that has offsets, so a restart under the same instance id would resume mid-topic
 * and its ledger would miss every earlier ticket. The group is deleted before it is joined. If it
 * still has members, another live process uses the same instance id and would split the topic with
 * this one: refused.
 */
export async function dropStaleGroup(deleteGroups: (ids: string[]) => Promise<void>, groupId: string): Promise<void> {
  try {
    await deleteGroups([groupId]);
  } catch (err) {
    const groups = ((err as { cause?: { groups?: { error?: { type?: string } }[] } }).cause?.groups ?? []).map((g) => g.error?.type);
    if (groups.length > 0 && groups.every((t) => t === 'GROUP_ID_NOT_FOUND')) return;
    if (groups.includes('NON_EMPTY_GROUP')) {
      throw new GlasswatchError(
        'BG_DETECT_INSTANCE_IN_USE',
        `consumer group ${groupId} has live members: another detector runs with the same instance id`,
        {
          stage: 'config',
          hint: 'give every detector process its own --instance (or GLASSWATCH_INSTANCE)',
        },
      );
    }
    throw err;
  }
}
