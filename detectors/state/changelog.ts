import type { Bus, BusMessage, OutgoingMessage, Subscription } from '../../core/bus/types.js';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { RevocationWatch } from '../revoke/verify.js';
import type { BreakGlassSession } from '../sessions.js';
import { dropStaleGroup } from '../tickets/service.js';
import type { PendingVerdict } from './pending.js';

/** One change of detector state, for the partition of the events it came from. */
export type StateChange =
  | { kind: 'session'; partition: number; session: BreakGlassSession }
  | { kind: 'session-closed'; partition: number; sessionId: string }
  | { kind: 'pending'; partition: number; pending: PendingVerdict }
  | { kind: 'pending-done'; partition: number; sessionId: string }
  /** A revocation whose session's handles are watched (detectors/revoke/verify.ts), and its end. */
  | { kind: 'watch'; partition: number; watch: RevocationWatch }
  | { kind: 'watch-done'; partition: number; revocationId: string }
  /** The events offset whose state changes these are: a re-delivered event up to it is not applied again. */
  | { kind: 'applied'; partition: number; offset: string };

const APPLIED = 'applied/';
/** Revocation watches share the pending changelog, under their own key prefix. */
const WATCH = 'watch/';

/** Where the detector's state goes: the changelog topics (Kafka or memory bus). */
export interface DetectorStateSink {
  write(changes: readonly StateChange[]): Promise<void>;
}

export interface PartitionState {
  sessions: BreakGlassSession[];
  pending: PendingVerdict[];
  /** Per partition, the last events offset whose state is in the changelog. */
  applied: Map<number, string>;
  /** Revocations being verified from later logs (absent: none). */
  watches?: RevocationWatch[];
}

export interface ChangelogOptions {
  bus: Bus;
  /** The detector's input: the changelogs get its partition count. */
  eventsTopic: string;
  /** The detector's consumer group: changelogs are `<group>-sessions-changelog` and `<group>-pending-changelog`. */
  group: string;
  /** This member's own reader group (it reads every partition: a warm standby copy). */
  readerGroup: string;
  log: Logger;
  /** Longest wait for the standby copy to reach the changelog's end on an assignment. @default 60000 */
  restoreTimeoutMs?: number;
}

/**
 * Detector state in compacted changelog topics, after Kafka Streams' state stores: every change
 * of an open session or a pending verdict is appended, keyed by session id, to the changelog
 * partition with the number of the events partition it came from (co-partitioned), before the
 * event's offset is committed; a closed session or a fired verdict is a tombstone.
 *
 * Every member reads all changelog partitions into a standby copy (Kafka Streams'
 * `num.standby.replicas`, which kafkajs cannot do otherwise: it has no manual `assign()`). On
 * an assignment, `restore` waits until the copy has reached the changelog's end offsets read
 * at that moment, which include every write the previous owner had acknowledged, and hands the
 * detector exactly the assigned partitions' state.
 */
export class DetectorChangelog implements DetectorStateSink {
  readonly sessionsTopic: string;
  readonly pendingTopic: string;
  readonly #o: ChangelogOptions;
  /** topic → partition → session id → latest entry */
  readonly #copy = new Map<string, Map<number, Map<string, unknown>>>();
  /** `topic/partition` → next offset the copy has */
  readonly #position = new Map<string, bigint>();
  #reader: Subscription | null = null;

  constructor(o: ChangelogOptions) {
    this.#o = o;
    this.sessionsTopic = `${o.group}-sessions-changelog`;
    this.pendingTopic = `${o.group}-pending-changelog`;
  }

  async start(): Promise<void> {
    const { bus } = this.#o;
    for (const t of [this.sessionsTopic, this.pendingTopic]) {
      await bus.ensureTopic?.(t, { compacted: true, copartitionedWith: this.#o.eventsTopic });
      this.#copy.set(t, new Map());
    }
    // The reader is this instance's own group, read from the beginning each start: a group left with
    // offsets by a kill -9 is deleted first (and one with live members means a duplicate instance id).
    if (bus.deleteGroups) await dropStaleGroup(bus.deleteGroups.bind(bus), this.#o.readerGroup);
    this.#reader = await bus.subscribe({
      topics: [this.sessionsTopic, this.pendingTopic],
      groupId: this.#o.readerGroup,
      fromBeginning: true,
      handler: async (m) => this.#apply(m),
    });
  }

  #apply(m: BusMessage): void {
    this.#position.set(`${m.topic}/${m.partition}`, BigInt(m.offset) + 1n);
    if (m.key === null) return;
    const byPartition = this.#copy.get(m.topic);
    if (!byPartition) return;
    const entries = byPartition.get(m.partition) ?? new Map<string, unknown>();
    byPartition.set(m.partition, entries);
    if (m.value.length === 0) {
      entries.delete(m.key);
      return;
    }
    try {
      entries.set(m.key, m.key.startsWith(APPLIED) ? m.value.toString('utf8') : JSON.parse(m.value.toString('utf8')));
    } catch (err) {
      // Only this detector writes here; a damaged entry must not be taken for a closed session silently.
      this.#o.log.error('detector changelog entry is not JSON; the entry is ignored', {
        topic: m.topic,
        partition: m.partition,
        offset: m.offset,
        error: errorMessage(err),
      });
    }
  }

  async write(changes: readonly StateChange[]): Promise<void> {
    const sessions: OutgoingMessage[] = [];
    const pending: OutgoingMessage[] = [];
    for (const c of changes) {
      if (c.kind === 'session') sessions.push({ key: c.session.id, partition: c.partition, value: JSON.stringify(c.session) });
      else if (c.kind === 'session-closed') sessions.push({ key: c.sessionId, partition: c.partition, value: '', tombstone: true });
      else if (c.kind === 'applied') sessions.push({ key: `${APPLIED}${c.partition}`, partition: c.partition, value: c.offset });
      else if (c.kind === 'pending') pending.push({ key: c.pending.sessionId, partition: c.partition, value: JSON.stringify(c.pending) });
      else if (c.kind === 'watch')
        pending.push({ key: `${WATCH}${c.watch.revocationId}`, partition: c.partition, value: JSON.stringify(c.watch) });
      else if (c.kind === 'watch-done')
        pending.push({ key: `${WATCH}${c.revocationId}`, partition: c.partition, value: '', tombstone: true });
      else pending.push({ key: c.sessionId, partition: c.partition, value: '', tombstone: true });
    }
    // Pending verdicts first: the applied offset goes with the sessions, so a crash between the two
    // writes re-applies the event (same session id, same pending key) rather than skipping a verdict.
    if (pending.length) await this.#o.bus.publish(this.pendingTopic, pending);
    if (sessions.length) await this.#o.bus.publish(this.sessionsTopic, sessions);
  }

  /** The state of the given partitions, once the standby copy holds everything written to them so far. */
  async restore(partitions: readonly number[]): Promise<PartitionState> {
    const { bus } = this.#o;
    if (!bus.endOffsets) throw new GlasswatchError('BG_DETECT_STATE', 'the bus cannot report end offsets', { stage: 'processing' });
    const wanted: Array<[string, bigint]> = [];
    for (const topic of [this.sessionsTopic, this.pendingTopic]) {
      const ends = await bus.endOffsets(topic);
      for (const p of partitions) {
        const end = BigInt(ends.get(p) ?? '0');
        if (end > 0n) wanted.push([`${topic}/${p}`, end]);
      }
    }
    const timeoutMs = this.#o.restoreTimeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    const behind = () => wanted.filter(([k, end]) => (this.#position.get(k) ?? 0n) < end);
    while (behind().length > 0) {
      if (Date.now() > deadline) {
        // Fail closed: judging without the previous owner's sessions would alert them again.
        throw new GlasswatchError('BG_DETECT_STATE', `detector state not restored within ${timeoutMs} ms`, {
          stage: 'processing',
          retriable: true,
          context: { behind: behind().map(([k]) => k) },
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const take = <T>(topic: string, keep: (key: string) => boolean = (k) => !k.startsWith(APPLIED) && !k.startsWith(WATCH)) =>
      partitions.flatMap((p) => [...(this.#copy.get(topic)?.get(p) ?? [])].filter(([k]) => keep(k)).map(([, v]) => v as T));
    const applied = new Map<number, string>();
    for (const p of partitions) {
      const offset = this.#copy.get(this.sessionsTopic)?.get(p)?.get(`${APPLIED}${p}`);
      if (typeof offset === 'string') applied.set(p, offset);
    }
    return {
      sessions: take<BreakGlassSession>(this.sessionsTopic),
      pending: take<PendingVerdict>(this.pendingTopic),
      applied,
      watches: take<RevocationWatch>(this.pendingTopic, (k) => k.startsWith(WATCH)),
    };
  }

  async stop(): Promise<void> {
    if (!this.#reader) return;
    await this.#reader.stop();
    this.#reader = null;
    // Its offsets are worthless to anyone: the next start reads the changelogs from the beginning.
    await this.#o.bus
      .deleteGroups?.([this.#o.readerGroup])
      .catch((err: unknown) =>
        this.#o.log.warn('detector state reader group not deleted', { groupId: this.#o.readerGroup, error: errorMessage(err) }),
      );
  }
}
