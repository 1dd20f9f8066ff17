import { createHash } from 'node:crypto';
import type { AuditEvent, Source } from '../../core/event.js';
import type { LinkedSession } from '../alerts/alert.js';
import type { BreakGlassSession } from '../sessions.js';
import type { PeopleOptions } from './config.js';
import { PersonMapper } from './person.js';

/** One person's recent activity in one plane, under one session handle (break-glass or not). */
export interface PersonActivity {
  /** `act-…` (hash of plane and handle); the break-glass session's id when it is one (`breakGlassSessionId`). */
  id: string;
  personId: string;
  source: Source;
  key: string;
  principal: string | null;
  principalId: string | null;
  firstMs: number;
  lastMs: number;
  /** The latest event: a followed revocation reads the plane's own principal from it. */
  lastEvent: AuditEvent;
  breakGlassSessionId: string | null;
  /** Checked for late links already (once, when it began: later sessions link to it themselves, in `linksOf`). */
  checked: boolean;
  /** The lastMs other detector members were last told (sharing on), or NOT_TOLD, THEIRS or QUEUED. */
  sharedMs: number;
}

/**
 * One activity as another detector member saw it (`topics.people`): with several members, the
 * planes of one person are usually on partitions of different members (events are keyed by actor).
 */
export type Sighting = Pick<
  PersonActivity,
  'id' | 'personId' | 'source' | 'key' | 'principal' | 'principalId' | 'firstMs' | 'lastMs' | 'breakGlassSessionId'
> & {
  v: 1;
  /** The member that saw it. */
  from: string;
  /** Its latest event: a followed revocation reads the plane's principal, groups and keys from it. */
  event: AuditEvent;
};

const NONE: readonly BreakGlassSession[] = Object.freeze([]);
/** sharedMs states besides a time: not told yet; another member's to tell; in the outbox. */
const NOT_TOLD = -1;
const THEIRS = -2;
const QUEUED = -3;

export function linkedSessionOf(a: PersonActivity): LinkedSession {
  return {
    sessionId: a.breakGlassSessionId ?? a.id,
    personId: a.personId,
    source: a.source,
    principal: a.principal,
    firstTime: new Date(a.firstMs).toISOString(),
    lastTime: new Date(a.lastMs).toISOString(),
    breakGlass: a.breakGlassSessionId !== null,
  };
}

/**
 * Links the sessions of one human across Okta, AWS and Kubernetes (detectors/people/person.ts says
 * how an event maps to a person). Every event of a known person updates that person's activity in
 * its plane; a break-glass session gets the person's id and links to the person's activity in the
 * other planes within `windowMs` (event time) of it, both what came before (`linksOf`, when it is
 * judged) and what comes while it lasts (`lateLinks`). Bounded: activity and break-glass sessions
 * leave `windowMs` after their last event (event time). With several detector members (`share`),
 * each publishes the activity it sees and merges the others' (`merge`): a member links its own
 * break-glass sessions to the person's activity wherever it was seen.
 */
export class PersonLinker {
  readonly mapper: PersonMapper;
  /** Per plane, handle → activity (no key string built per event). */
  readonly #byKey: Record<Source, Map<string, PersonActivity>> = { cloudtrail: new Map(), okta: new Map(), k8s: new Map() };
  readonly #byPerson = new Map<string, PersonActivity[]>();
  /** Break-glass sessions of each person, for the activity that comes after their verdict. */
  readonly #breakGlass = new Map<string, BreakGlassSession[]>();
  readonly #attached = new WeakSet<BreakGlassSession>();
  #watermarkMs = Number.NEGATIVE_INFINITY;
  #nextSweepMs = Number.NEGATIVE_INFINITY;
  /** Activity to tell the other members about (sharing on): new, or gone on for a quarter window since told. */
  #outbox: PersonActivity[] | null = null;

  constructor(
    readonly options: PeopleOptions,
    /** Told when a break-glass session leaves (quiet for a window): its caller's state about it can go too. */
    readonly onForget: (s: BreakGlassSession) => void = () => {},
  ) {
    this.mapper = new PersonMapper(options);
  }

  /** From now on, the activity this process sees is kept for `takeShared` (several detector members). */
  share(): void {
    this.#outbox ??= [];
  }

  /** The activity to publish since the last call, each once. */
  takeShared(): PersonActivity[] {
    const out = this.#outbox ?? [];
    if (out.length) this.#outbox = [];
    for (const a of out) a.sharedMs = a.lastMs;
    return out;
  }

  /** Activity `takeShared` gave out whose publishing failed: told again with the next. */
  requeue(activity: readonly PersonActivity[]): void {
    for (const a of activity) {
      if (a.sharedMs === THEIRS) continue;
      a.sharedMs = NOT_TOLD;
      this.#shareIfDue(a);
    }
  }

  #shareIfDue(a: PersonActivity): void {
    // Bounded: an activity is told when it begins and then at most four times a window, not per event.
    if (this.#outbox && a.sharedMs !== THEIRS && (a.sharedMs < 0 || a.lastMs - a.sharedMs >= this.options.windowMs / 4)) {
      if (a.sharedMs !== QUEUED) this.#outbox.push(a);
      a.sharedMs = QUEUED;
    }
  }

  /**
   * Another member's activity: known from now on as if seen here, so this member's break-glass
   * sessions link to it (`linksOf` at their verdict, `lateLinks` now). Null when it tells nothing new.
   */
  merge(s: Sighting): PersonActivity | null {
    if (s.lastMs > this.#watermarkMs) this.#watermarkMs = s.lastMs;
    if (this.#watermarkMs >= this.#nextSweepMs) this.#sweep();
    if (s.lastMs < this.#watermarkMs - this.options.windowMs) return null;
    const byKey = this.#byKey[s.source];
    let a = byKey.get(s.key);
    if (a && a.personId === s.personId) {
      let changed = false;
      if (s.lastMs > a.lastMs) {
        a.lastMs = s.lastMs;
        a.lastEvent = s.event;
        changed = true;
      }
      if (s.firstMs < a.firstMs) {
        a.firstMs = s.firstMs;
        changed = true;
      }
      a.breakGlassSessionId ??= s.breakGlassSessionId;
      return changed ? a : null;
    }
    // The handle is someone else's activity here now: an older sighting never replaces it.
    if (a && a.lastMs >= s.lastMs) return null;
    a = {
      id: s.id,
      personId: s.personId,
      source: s.source,
      key: s.key,
      principal: s.principal,
      principalId: s.principalId,
      firstMs: s.firstMs,
      lastMs: s.lastMs,
      lastEvent: s.event,
      breakGlassSessionId: s.breakGlassSessionId,
      checked: false,
      // Another member's to tell: never published again from here.
      sharedMs: THEIRS,
    };
    byKey.set(s.key, a);
    this.#personList(s.personId).push(a);
    return a;
  }

  #personList(personId: string): PersonActivity[] {
    let list = this.#byPerson.get(personId);
    if (!list) {
      list = [];
      this.#byPerson.set(personId, list);
    }
    return list;
  }

  get size(): number {
    return this.#byKey.cloudtrail.size + this.#byKey.okta.size + this.#byKey.k8s.size;
  }

  /** Records the event as its person's activity; null when no person is known for it. */
  observe(e: AuditEvent, timeMs: number): PersonActivity | null {
    if (timeMs > this.#watermarkMs) this.#watermarkMs = timeMs;
    if (this.#watermarkMs >= this.#nextSweepMs) this.#sweep();
    const personId = this.mapper.of(e, timeMs);
    if (personId === null) return null;
    const key = this.mapper.key;
    const byKey = this.#byKey[e.source];
    let a = byKey.get(key);
    if (a && a.personId === personId && timeMs - a.lastMs <= this.options.windowMs) {
      // Another member's until now (a partition moved here): this member tells its news from now on.
      if (a.sharedMs === THEIRS) a.sharedMs = a.lastMs;
      if (timeMs > a.lastMs) {
        a.lastMs = timeMs;
        a.lastEvent = e;
        if (this.#outbox) this.#shareIfDue(a);
      }
      if (timeMs < a.firstMs) a.firstMs = timeMs;
      return a;
    }
    a = {
      id: `act-${createHash('sha256').update(`${e.source}\u0000${key}\u0000${e.id}`).digest('hex').slice(0, 20)}`,
      personId,
      source: e.source,
      key,
      principal: e.actor.name,
      principalId: e.actor.id,
      firstMs: timeMs,
      lastMs: timeMs,
      lastEvent: e,
      breakGlassSessionId: null,
      checked: false,
      sharedMs: NOT_TOLD,
    };
    byKey.set(key, a);
    this.#personList(personId).push(a);
    if (this.#outbox) this.#shareIfDue(a);
    return a;
  }

  /** The break-glass session is this activity's: it takes the person's id and is linked from now on; true the first time. */
  attach(session: BreakGlassSession, a: PersonActivity): boolean {
    if (a.breakGlassSessionId === null) {
      a.breakGlassSessionId = session.id;
      // The other members name it by the break-glass session from now on.
      if (this.#outbox && a.sharedMs >= 0) {
        a.sharedMs = NOT_TOLD;
        this.#shareIfDue(a);
      }
    }
    // Known to this linker already; a session taken back from the changelog (a restart, a failover) has
    // its personId but is registered again here.
    if (this.#attached.has(session)) return false;
    this.#attached.add(session);
    session.personId ??= a.personId;
    session.linkedSessionIds ??= [];
    const personId = session.personId;
    let list = this.#breakGlass.get(personId);
    if (!list) {
      list = [];
      this.#breakGlass.set(personId, list);
    }
    list.push(session);
    return true;
  }

  #near(s: BreakGlassSession, a: PersonActivity): boolean {
    const w = this.options.windowMs;
    return a.lastMs >= s.startMs - w && a.firstMs <= s.endMs + w;
  }

  /** The activity the session is linked to, as known now. */
  linked(session: BreakGlassSession): PersonActivity[] {
    const ids = session.linkedSessionIds;
    if (!session.personId || !ids?.length) return [];
    const seen = new Set<string>();
    return (this.#byPerson.get(session.personId) ?? []).filter((a) => {
      const id = a.breakGlassSessionId ?? a.id;
      if (!ids.includes(id) || seen.has(id)) return false;
      seen.add(id);
      return true;
    });
  }

  /** The person's activity in the other planes within the window of the session, not linked yet; marks it linked. */
  linksOf(session: BreakGlassSession): PersonActivity[] {
    if (!session.personId) return [];
    const out: PersonActivity[] = [];
    for (const a of this.#byPerson.get(session.personId) ?? []) {
      if (a.source === session.source || !this.#near(session, a)) continue;
      if (this.#link(session, a)) out.push(a);
    }
    return out;
  }

  /**
   * The break-glass sessions (other planes) this new or continued activity links to, not linked yet.
   * One map lookup when the person has no break-glass session: the cost of linking per event.
   */
  lateLinks(a: PersonActivity): readonly BreakGlassSession[] {
    // Once per activity, when it begins: a break-glass session that begins later links to it in `linksOf`.
    // (Missed: a session quiet for longer than the window that then comes back; sessionIdleSeconds below
    // windowMinutes, the default, closes such a session first.)
    if (a.checked) return NONE;
    a.checked = true;
    const list = this.#breakGlass.get(a.personId);
    if (!list) return NONE;
    let out: BreakGlassSession[] | null = null;
    for (const s of list) {
      if (s.source === a.source || !this.#near(s, a) || !this.#link(s, a)) continue;
      if (!out) out = [];
      out.push(s);
    }
    return out ?? NONE;
  }

  #link(s: BreakGlassSession, a: PersonActivity): boolean {
    const id = a.breakGlassSessionId ?? a.id;
    if (!s.linkedSessionIds) s.linkedSessionIds = [];
    if (s.linkedSessionIds.includes(id)) return false;
    s.linkedSessionIds.push(id);
    return true;
  }

  /** Forgets activity and break-glass sessions quiet for a whole window (event time), at most twice a window. */
  #sweep(): void {
    const w = this.options.windowMs;
    const horizon = this.#watermarkMs - w;
    this.#nextSweepMs = this.#watermarkMs + Math.max(w / 2, 10_000);
    for (const byKey of Object.values(this.#byKey)) for (const [k, a] of byKey) if (a.lastMs < horizon) byKey.delete(k);
    for (const [p, list] of this.#byPerson) {
      const keep = list.filter((a) => a.lastMs >= horizon);
      if (keep.length) this.#byPerson.set(p, keep);
      else this.#byPerson.delete(p);
    }
    for (const [p, list] of this.#breakGlass) {
      const keep = list.filter((s) => s.endMs >= horizon);
      for (const s of list) if (s.endMs < horizon) this.onForget(s);
      if (keep.length) this.#breakGlass.set(p, keep);
      else this.#breakGlass.delete(p);
    }
    this.mapper.forget(horizon);
  }
}
