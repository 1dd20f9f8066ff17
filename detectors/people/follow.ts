import type { AuditEvent, Source } from '../../core/event.js';
import { type Alert, alertId } from '../alerts/alert.js';
import { breakGlassAlert } from '../alerts/event-alert.js';
import { revocationAlert } from '../alerts/revocation-alert.js';
import type { Identity } from '../identities.js';
import { type RevocationDispatcher, type RevocationPolicy, type RevocationRecord, targetsOf } from '../revoke/dispatcher.js';
import type { RevocationRequest, RevocationTarget } from '../revoke/types.js';
import type { BreakGlassSession } from '../sessions.js';
import { linkedSessionAlert } from './alert.js';
import type { PeopleOptions } from './config.js';
import { linkedSessionOf, type PersonActivity, PersonLinker, type Sighting } from './linker.js';

const TARGET_OF: Record<Source, RevocationTarget['kind']> = { okta: 'okta', cloudtrail: 'aws', k8s: 'k8s' };

export interface PersonLinksHooks {
  revocations: RevocationDispatcher;
  identity: (id: string) => Identity | undefined;
  raise: (a: Alert) => Promise<void>;
  /** Revocation records made here (replay keeps them for its summary). */
  recorded: (records: readonly RevocationRecord[]) => void;
  /** A session whose links changed: its row is written again. */
  changed: (s: BreakGlassSession) => void;
  /** Watches a followed revocation's linked session in the later logs (RevocationVerifier.watch). */
  watch: (
    linked: BreakGlassSession,
    trigger: AuditEvent,
    records: readonly RevocationRecord[],
    policy: RevocationPolicy,
    key: string,
    timeMs: number,
    orderedMs: number,
    /** The break-glass session followed from (its partition owns the watch). */
    from: BreakGlassSession,
  ) => void;
}

/** Linking totals for summaries and the bench. */
export interface LinkTotals {
  /** Links made (one per break-glass session and linked session). */
  linked: number;
  /** Revocations ordered by following a link. */
  followed: number;
}

/**
 * The detector's side of one person across planes: it feeds every event to the `PersonLinker`,
 * gives break-glass sessions their person and links, lists the links in the unauthorized alert,
 * and, for identities with `revocation.followLinked`, revokes each linked session through the
 * revocation dispatcher (the durable revocation stage, live) as its own revocation record, naming
 * the session it followed from. A link found after the verdict is followed when it is found.
 */
export class PersonLinks {
  readonly linker: PersonLinker;
  readonly totals: LinkTotals = { linked: 0, followed: 0 };
  /** Unauthorized alerts of sessions whose identity follows links, for links found later. */
  readonly #unauthorized = new Map<string, Alert>();

  constructor(
    options: PeopleOptions,
    readonly hooks: PersonLinksHooks,
  ) {
    this.linker = new PersonLinker(options, (s) => this.#unauthorized.delete(s.id));
  }

  observe(e: AuditEvent, timeMs: number): PersonActivity | null {
    return this.linker.observe(e, timeMs);
  }

  /**
   * A break-glass session's event: the session takes the person, and a session new to this process its
   * links so far. A session taken back already unauthorized (a restart, a failover) whose identity
   * follows links gets its alert again (same id, rebuilt from this event) and its new links followed.
   */
  onSession(
    identity: Identity,
    session: BreakGlassSession,
    a: PersonActivity,
    e: AuditEvent,
    timeMs: number,
    detectedAtMs: () => number,
  ): Promise<void> | undefined {
    if (!this.linker.attach(session, a)) return undefined;
    const links = this.linker.linksOf(session);
    this.totals.linked += links.length;
    const restored = session.verdict === 'unauthorized' && session.detectedAtMs !== null && !this.#unauthorized.has(session.id);
    if (!restored || !identity.revocation.followLinked) return undefined;
    const alert = breakGlassAlert(
      'breakglass.unauthorized',
      alertId('breakglass.unauthorized', session.id),
      'critical',
      identity,
      e,
      detectedAtMs(),
      {
        sessionId: session.id,
        reason: session.reason,
        ticketId: session.ticketId,
        summary: `UNAUTHORIZED use of break-glass identity ${identity.id} (session ${session.id}, taken back after a restart)`,
      },
    );
    this.#unauthorized.set(session.id, alert);
    return links.length ? this.#followAll(identity, session, alert, links, timeMs, detectedAtMs()) : undefined;
  }

  async #followAll(
    identity: Identity,
    session: BreakGlassSession,
    alert: Alert,
    links: readonly PersonActivity[],
    timeMs: number,
    detectedAtMs: number,
  ): Promise<void> {
    for (const a of links) await this.#follow(identity, session, alert, a, timeMs, detectedAtMs);
  }

  /** The links an unauthorized alert lists: the person's sessions in the other planes, known now. */
  listed(session: BreakGlassSession): Alert['linkedSessions'] {
    if (!session.personId) return undefined;
    // Links made since the session began (an authorized session turning unauthorized) are counted in.
    this.totals.linked += this.linker.linksOf(session).length;
    return this.linker.linked(session).map(linkedSessionOf);
  }

  /** After the unauthorized alert: follows every link now, and remembers the alert for later links. */
  async onUnauthorized(identity: Identity, session: BreakGlassSession, alert: Alert, timeMs: number, detectedAtMs: number): Promise<void> {
    if (!identity.revocation.followLinked || !session.personId) return;
    this.#unauthorized.set(session.id, alert);
    await this.#followAll(identity, session, alert, this.linker.linked(session), timeMs, detectedAtMs);
  }

  /** Another detector member's activity (`topics.people`): linked to this member's break-glass sessions like its own. */
  onSighting(s: Sighting, detectedAtMs: () => number): Promise<void> | undefined {
    const a = this.linker.merge(s);
    return a ? this.onActivity(a, s.lastMs, detectedAtMs) : undefined;
  }

  /**
   * An event of a known person: links it to the person's break-glass sessions in other planes,
   * following where asked. Undefined (no promise) when nothing is new: the common case, per event.
   */
  onActivity(a: PersonActivity, timeMs: number, detectedAtMs: () => number): Promise<void> | undefined {
    const sessions = this.linker.lateLinks(a);
    return sessions.length === 0 ? undefined : this.#lateLinks(a, sessions, timeMs, detectedAtMs);
  }

  async #lateLinks(a: PersonActivity, sessions: readonly BreakGlassSession[], timeMs: number, detectedAtMs: () => number): Promise<void> {
    for (const s of sessions) {
      this.totals.linked++;
      s.version++;
      this.hooks.changed(s);
      // Authorized sessions' links are kept on the row; an unauthorized one's are news for the SOC.
      if (s.verdict !== 'unauthorized' || s.detectedAtMs === null) continue;
      const identity = this.hooks.identity(s.identity);
      if (!identity) continue;
      const alert = this.#unauthorized.get(s.id);
      // Following, but the session's revocation not ordered yet (its owner asked "was this you?"): that order takes this link too.
      const following = !identity.revocation.followLinked ? 'no' : alert ? 'now' : 'later';
      await this.hooks.raise(linkedSessionAlert(identity, s, a, a.lastEvent, { following, detectedAtMs: detectedAtMs() }));
      if (alert && following === 'now') await this.#follow(identity, s, alert, a, timeMs, detectedAtMs());
    }
  }

  async #follow(
    identity: Identity,
    from: BreakGlassSession,
    alert: Alert,
    a: PersonActivity,
    timeMs: number,
    detectedAtMs: number,
  ): Promise<void> {
    const e = a.lastEvent;
    const raw = e.raw as { user?: { groups?: unknown } };
    const groups = Array.isArray(raw.user?.groups) ? raw.user.groups.filter((g): g is string => typeof g === 'string') : [];
    const session = linkedShell(a, identity.id);
    const request: RevocationRequest = {
      alert,
      session,
      identity: identity.id,
      principal: a.principal,
      principalId: a.principalId,
      groups,
      reason: `linked to unauthorized session ${from.id} of ${identity.id} (same person: ${a.personId})`,
      event: e,
      idempotencyKey: '',
      followedFrom: from.id,
      followTarget: TARGET_OF[a.source],
    };
    const records = await this.hooks.revocations.revoke(request, timeMs, detectedAtMs);
    this.totals.followed++;
    this.hooks.recorded(records);
    for (const r of records) await this.hooks.raise(revocationAlert(alert, r));
    // Verified from the later logs like any revocation: the linked session's handles are watched. Live,
    // the order's id is `<alert id>:follow:<linked session>:<target>`, the watch's "alert id" + target.
    const policy = this.hooks.revocations.policies.get(identity.id);
    const targets = policy ? targetsOf(policy, request) : [];
    this.hooks.watch(session, e, records, { mode: 'auto', targets }, `${alert.id}:follow:${session.id}`, timeMs, detectedAtMs, from);
  }
}

/** The linked session as a revocation request carries it (its own id, plane and principal). */
function linkedShell(a: PersonActivity, identity: string): BreakGlassSession {
  const e = a.lastEvent;
  return {
    id: a.breakGlassSessionId ?? a.id,
    identity,
    source: a.source,
    principal: a.principal,
    principalId: a.principalId,
    sourceIps: e.sourceIp ? [e.sourceIp] : [],
    keys: shellKeys(a, identity),
    firstEventId: e.id,
    startMs: a.firstMs,
    endMs: a.lastMs,
    events: 0,
    verdict: 'unauthorized',
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
    personId: a.personId,
  };
}

/**
 * The linked session's handles as session keys (`identity\0key`, what verification reads): the
 * plane's session key, and for `AssumeRoleWithSAML` the access key id it issued (every call made with
 * those credentials carries it).
 */
function shellKeys(a: PersonActivity, identity: string): string[] {
  const e = a.lastEvent;
  const out: string[] = [];
  if (e.actor.sessionKey) out.push(`${identity}\u0000${e.actor.sessionKey}`);
  const issued = (e.raw as { responseElements?: { credentials?: { accessKeyId?: unknown } } | null }).responseElements?.credentials
    ?.accessKeyId;
  if (e.source === 'cloudtrail' && typeof issued === 'string' && issued) out.push(`${identity}\u0000${issued}`);
  return out;
}
