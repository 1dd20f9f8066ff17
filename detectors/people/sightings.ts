import type { Bus, BusMessage } from '../../core/bus/types.js';
import { GlasswatchError } from '../../core/errors.js';
import type { AuditEvent, Source } from '../../core/event.js';
import type { Logger } from '../../core/log.js';
import { dropStaleGroup } from '../tickets/service.js';
import type { PersonActivity, Sighting } from './linker.js';

const SOURCES: ReadonlySet<string> = new Set<Source>(['cloudtrail', 'okta', 'k8s']);

export interface PersonSightingsOptions {
  bus: Bus;
  /** `topics.people`. */
  topic: string;
  /** This member's name, in each sighting it publishes (for the reader of the topic). */
  member: string;
  /** The link window: a sighting older than twice it is of no use to anyone, so the topic drops it. */
  windowMs: number;
  log: Logger;
}

/**
 * Person activity shared between detector members (live, Kafka). Events are keyed by actor, so one
 * person's Okta, AWS and Kubernetes events usually land on partitions owned by different members;
 * each member publishes the activity it sees (`publish`, once per fetched batch, before its offsets
 * commit) and reads them all (`follow`, its own temporary group from the beginning, as tickets are
 * read): the others' link its break-glass sessions across members, its own restore what a restart
 * lost. The topic is compacted by plane and handle and keeps two windows.
 *
 * Trust: a sighting can make a member follow a link (revoke a session), so the topic needs the same
 * write protection as the events topic, whose events could make the same sighting.
 */
export class PersonSightings {
  #published = 0;
  #merged = 0;

  constructor(readonly o: PersonSightingsOptions) {}

  get totals(): { published: number; merged: number } {
    return { published: this.#published, merged: this.#merged };
  }

  async ensureTopic(): Promise<void> {
    await this.o.bus.ensureTopic?.(this.o.topic, { compacted: true, retentionMs: Math.max(2 * this.o.windowMs, 3_600_000) });
  }

  /** Publishes the activity (the linker's `takeShared`); resolves once the broker has it. */
  async publish(activity: readonly PersonActivity[]): Promise<void> {
    if (activity.length === 0) return;
    await this.o.bus.publish(
      this.o.topic,
      activity.map((a) => ({ key: `${a.source}:${a.key}`, value: JSON.stringify(sightingOf(a, this.o.member)) })),
    );
    this.#published += activity.length;
  }

  /**
   * Reads every other member's sightings and hands them over in batches (`apply`: the detector links
   * them). A malformed record is dead-lettered with its reason, never applied.
   */
  async follow(
    groupId: string,
    apply: (batch: Sighting[]) => Promise<void>,
    o: { deadLetterTopic?: string } = {},
  ): Promise<{ stop(): Promise<void> }> {
    const { bus, topic } = this.o;
    await this.ensureTopic();
    if (bus.deleteGroups) await dropStaleGroup(bus.deleteGroups.bind(bus), groupId);
    let batch: Sighting[] = [];
    const subscription = await bus.subscribe({
      topics: [topic],
      groupId,
      fromBeginning: true,
      ...(o.deadLetterTopic ? { deadLetterTopic: o.deadLetterTopic } : {}),
      // Its own sightings too: read back at a start (same --instance or not), they restore the link
      // state a restart lost; read back live, they merge as nothing new.
      handler: async (m) => {
        batch.push(parseSighting(m));
      },
      afterBatch: async () => {
        if (batch.length === 0) return;
        const taken = batch;
        batch = [];
        try {
          await apply(taken);
          this.#merged += taken.length;
        } catch (err) {
          batch = [...taken, ...batch];
          throw err;
        }
      },
      afterBatchEvery: 500,
    });
    const deleteGroups = bus.deleteGroups?.bind(bus);
    return {
      stop: async () => {
        await subscription.stop();
        // Its offsets are worthless to anyone else: the next start reads the topic from the beginning.
        await deleteGroups?.([groupId]).catch((err: unknown) =>
          this.o.log.warn('temporary people consumer group not deleted', { groupId, error: (err as Error).message }),
        );
      },
    };
  }
}

export function sightingOf(a: PersonActivity, member: string): Sighting {
  return {
    v: 1,
    from: member,
    id: a.id,
    personId: a.personId,
    source: a.source,
    key: a.key,
    principal: a.principal,
    principalId: a.principalId,
    firstMs: a.firstMs,
    lastMs: a.lastMs,
    breakGlassSessionId: a.breakGlassSessionId,
    event: a.lastEvent,
  };
}

/** A record of the people topic, checked field by field (a bad one names its place and field). */
export function parseSighting(m: BusMessage): Sighting {
  const where = `${m.topic}[${m.partition}]@${m.offset}`;
  const bad = (field: string) =>
    new GlasswatchError('BG_DETECT_SIGHTING', `person sighting ${where}: ${field}`, { stage: 'processing', retriable: false });
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(m.value.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw bad('not JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad('not an object');
  if (v.v !== 1) throw bad(`v must be 1, got ${JSON.stringify(v.v)}`);
  for (const f of ['from', 'id', 'personId', 'key'] as const)
    if (typeof v[f] !== 'string' || v[f] === '') throw bad(`${f} must be a non-empty string`);
  if (typeof v.source !== 'string' || !SOURCES.has(v.source)) throw bad('source must be cloudtrail, okta or k8s');
  for (const f of ['principal', 'principalId', 'breakGlassSessionId'] as const)
    if (v[f] !== null && typeof v[f] !== 'string') throw bad(`${f} must be a string or null`);
  for (const f of ['firstMs', 'lastMs'] as const) if (!Number.isFinite(v[f])) throw bad(`${f} must be a number`);
  if ((v.firstMs as number) > (v.lastMs as number)) throw bad('firstMs is after lastMs');
  const e = v.event as AuditEvent | null;
  if (!e || typeof e !== 'object' || e.source !== v.source || typeof e.id !== 'string' || !e.actor || typeof e.actor !== 'object')
    throw bad('event must be the activity’s latest normalized event, of its plane');
  return v as unknown as Sighting;
}
