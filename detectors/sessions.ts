import { createHash } from 'node:crypto';
import type { AuditEvent } from '../core/event.js';
import type { UnauthorizedReason } from './tickets/ledger.js';

export type SessionVerdict = 'authorized' | 'unauthorized';

export interface BreakGlassSession {
  id: string;
  identity: string;
  source: AuditEvent['source'];
  /** Principal seen in the session (IAM user/role ARN, Okta login, Kubernetes user): revocation targets it. */
  principal: string | null;
  principalId: string | null;
  sourceIps: string[];
  keys: string[];
  firstEventId: string;
  startMs: number;
  endMs: number;
  events: number;
  verdict: SessionVerdict;
  reason: UnauthorizedReason | null;
  ticketId: string | null;
  approvers: string[];
  /** Event that turned the session unauthorized (its first event, or the first one after the ticket stopped covering it). */
  unauthorizedEventId: string | null;
  activity: { command: number; data: number; config: number };
  account: string | null;
  org: string | null;
  cluster: string | null;
  /** When the session's verdict alert was raised (time-to-detect = this − startMs). */
  detectedAtMs: number | null;
  /** Bumped on every change: the store keeps the highest version of a session row. */
  version: number;
  /** The human behind the session across planes (detectors/people), when `detector.people` links them. */
  personId?: string | null;
  /** The person's sessions in the other planes within the link window (break-glass ids or `act-…`). */
  linkedSessionIds?: string[];
}

export interface SessionOptions {
  /** A session ends after this long without events (event time). @default 1800 */
  idleSeconds?: number;
}

/**
 * Groups the events of one break-glass identity into sessions, by event time.
 * The key is the source's own session handle (AWS access key id, Okta
 * externalSessionId, Kubernetes user@IP); a new key from the same source IP while a
 * session of the identity is open joins that session, because a console sign-in, its
 * temporary console key and an access key created in it are one person at work.
 */
export class SessionTracker {
  readonly #idleMs: number;
  readonly #open = new Map<string, BreakGlassSession[]>();
  readonly #byKey = new Map<string, BreakGlassSession>();
  #closedCount = 0;
  #justClosed: BreakGlassSession[] = [];

  constructor(options: SessionOptions = {}) {
    this.#idleMs = (options.idleSeconds ?? 1800) * 1000;
  }

  get openCount(): number {
    let n = 0;
    for (const list of this.#open.values()) n += list.length;
    return n;
  }

  get closedCount(): number {
    return this.#closedCount;
  }

  /** Places an event in a session; `created` is true for the first event of a new session. */
  assign(identity: string, e: AuditEvent, timeMs: number): { session: BreakGlassSession; created: boolean } {
    this.#expire(identity, timeMs);
    const key = `${identity}\u0000${e.actor.sessionKey ?? `ip:${e.sourceIp ?? 'unknown'}`}`;
    let session = this.#byKey.get(key);
    if (session && timeMs - session.endMs > this.#idleMs) session = undefined;
    if (!session && e.sourceIp) {
      session = this.#open.get(identity)?.find((s) => s.sourceIps.includes(e.sourceIp!) && timeMs - s.endMs <= this.#idleMs);
    }
    if (session) {
      this.#byKey.set(key, session);
      if (!session.keys.includes(key)) session.keys.push(key);
      if (e.sourceIp && !session.sourceIps.includes(e.sourceIp)) session.sourceIps.push(e.sourceIp);
      session.events++;
      if (timeMs > session.endMs) session.endMs = timeMs;
      session.version++;
      return { session, created: false };
    }
    const created: BreakGlassSession = {
      id: `bgs-${createHash('sha256').update(`${identity}\u0000${e.source}\u0000${e.id}`).digest('hex').slice(0, 20)}`,
      identity,
      source: e.source,
      principal: e.actor.name,
      principalId: e.actor.id,
      sourceIps: e.sourceIp ? [e.sourceIp] : [],
      keys: [key],
      firstEventId: e.id,
      startMs: timeMs,
      endMs: timeMs,
      events: 1,
      verdict: 'authorized',
      reason: null,
      ticketId: null,
      approvers: [],
      unauthorizedEventId: null,
      activity: { command: 0, data: 0, config: 0 },
      account: e.account,
      org: e.org,
      cluster: e.cluster,
      detectedAtMs: null,
      version: 1,
      // Present from the start (undefined until linked) so a linked session keeps the shape every session has.
      personId: undefined,
      linkedSessionIds: undefined,
    };
    let list = this.#open.get(identity);
    if (!list) {
      list = [];
      this.#open.set(identity, list);
    }
    list.push(created);
    this.#byKey.set(key, created);
    return { session: created, created: true };
  }

  /**
   * Takes back sessions that were open when a live detector stopped, or that another member had
   * open (read from the store or the changelog); a session known already is replaced by the
   * given copy. Whether one is still open is decided by event time when its identity's next event
   * comes, never by the wall clock, so a session of old-timestamp events survives a restart.
   */
  restore(sessions: BreakGlassSession[]): void {
    this.remove(new Set(sessions.map((s) => s.id)));
    for (const s of sessions) {
      let list = this.#open.get(s.identity);
      if (!list) {
        list = [];
        this.#open.set(s.identity, list);
      }
      list.push(s);
      for (const k of s.keys) this.#byKey.set(k, s);
    }
  }

  /** An open session by id. */
  get(id: string): BreakGlassSession | undefined {
    for (const list of this.#open.values()) for (const s of list) if (s.id === id) return s;
    return undefined;
  }

  /** Forgets the given sessions (their partition moved to another member); not counted as closed. */
  remove(ids: ReadonlySet<string>): void {
    if (ids.size === 0) return;
    for (const [identity, list] of this.#open) {
      const keep = list.filter((s) => !ids.has(s.id));
      if (keep.length === list.length) continue;
      for (const s of list) if (ids.has(s.id)) for (const k of s.keys) if (this.#byKey.get(k) === s) this.#byKey.delete(k);
      if (keep.length) this.#open.set(identity, keep);
      else this.#open.delete(identity);
    }
  }

  /**
   * Closes every session idle past the gap at its partition's event-time watermark (the latest event
   * time seen there): live, a session ends although its identity sends nothing more. Event time, never
   * the wall clock: an old-timestamp stream closes its sessions only as its own time moves on.
   */
  closeIdle(watermarkOf: (s: BreakGlassSession) => number | undefined): void {
    for (const [identity, list] of this.#open) {
      const keep = list.filter((s) => {
        const wm = watermarkOf(s);
        return wm === undefined || wm - s.endMs <= this.#idleMs;
      });
      if (keep.length === list.length) continue;
      for (const s of list) {
        if (keep.includes(s)) continue;
        this.#closedCount++;
        this.#justClosed.push(s);
        for (const k of s.keys) if (this.#byKey.get(k) === s) this.#byKey.delete(k);
      }
      if (keep.length) this.#open.set(identity, keep);
      else this.#open.delete(identity);
    }
  }

  get idleMs(): number {
    return this.#idleMs;
  }

  /** Sessions closed by event time since the last call (the changelog deletes them). */
  takeClosed(): BreakGlassSession[] {
    const out = this.#justClosed;
    this.#justClosed = [];
    return out;
  }

  /** Forgets sessions idle past the gap: bounded state whatever the stream length. */
  #expire(identity: string, nowMs: number): void {
    const list = this.#open.get(identity);
    if (!list) return;
    const keep = list.filter((s) => nowMs - s.endMs <= this.#idleMs);
    if (keep.length === list.length) return;
    for (const s of list) {
      if (keep.includes(s)) continue;
      this.#closedCount++;
      this.#justClosed.push(s);
      for (const k of s.keys) if (this.#byKey.get(k) === s) this.#byKey.delete(k);
    }
    this.#open.set(identity, keep);
  }
}
