import type { AuditEvent } from '../core/event.js';
import type { Logger } from '../core/log.js';
import type { EventStage } from '../core/pipeline/stage.js';
import { GroupFlush } from '../core/store/group-flush.js';
import type { StoreWriter } from '../core/store/writer.js';
import type { SigmaEngine } from '../rules/engine/index.js';
import { ALERT_TYPES, type Alert, type AlertType, alertId } from './alerts/alert.js';
import type { AlertDispatcher } from './alerts/dispatcher.js';
import { breakGlassAlert as base, ruleAlert, sessionClosedAlert } from './alerts/event-alert.js';
import { revocationAlert, revocationModeText } from './alerts/revocation-alert.js';
import { SessionEventIds } from './alerts/session-events.js';
import type { Confirmations } from './confirm/gate.js';
import type { Identity, IdentityRegistry } from './identities.js';
import type { PeopleOptions } from './people/config.js';
import { PersonLinks } from './people/follow.js';
import type { Sighting } from './people/linker.js';
import { categoryOf, isFailedAuthentication } from './review.js';
import type { RevocationDispatcher, RevocationRecord } from './revoke/dispatcher.js';
import type { RevocationRequest } from './revoke/types.js';
import { RevocationVerifier } from './revoke/verifier.js';
import { DEFAULT_ALLOWANCE_SECONDS, DEFAULT_VERIFY_WINDOW_MINUTES, type VerifyOptions } from './revoke/verify.js';
import { alertRow, sessionRow } from './rows.js';
import { type BreakGlassSession, SessionTracker } from './sessions.js';
import type { DetectorStateSink, PartitionState, StateChange } from './state/changelog.js';
import { type PendingVerdict, PendingVerdicts } from './state/pending.js';
import { StateWrites } from './state/writes.js';
import { type Coverage, DEFAULT_NEAR_WINDOW_MINUTES, type TicketLedger, type Use } from './tickets/ledger.js';

export interface DetectorOptions {
  registry: IdentityRegistry;
  ledger: TicketLedger;
  /** Rules for activity review inside sessions (and `rule.match` outside them); null = none. */
  engine: SigmaEngine | null;
  alerts: AlertDispatcher;
  revocations: RevocationDispatcher;
  /** Alerts, sessions and tickets go to the audit store when set. */
  writer: StoreWriter | null;
  log: Logger;
  /**
   * `replay`: the events' arrival is unknown, so detection time is event time plus the
   * measured processing time; all tickets are known up front. `live`: wall clock.
   */
  clock: 'replay' | 'live';
  /**
   * How long an unauthorized verdict waits for a late approval. Live, the verdict is a pending
   * entry (in `state` when set) fired when an approval arrives or the grace ends; the detector
   * goes on with other events meanwhile. @default 0
   */
  graceSeconds?: number;
  /** Live: where open sessions and pending verdicts are kept for restarts and failover (the changelog). */
  state?: DetectorStateSink;
  /** How near an approved window must be to explain a use outside it (explanation step 3). @default 120 */
  nearWindowMinutes?: number;
  sessionIdleSeconds?: number;
  /** Raise `rule.match` alerts for rule matches outside break-glass sessions. @default true */
  ruleMatchAlerts?: boolean;
  /**
   * Keep every session in `seen` for a summary. Replay wants it; a long-running live
   * detector must not grow without bound (the store has the sessions). @default clock === 'replay'
   */
  keepSessions?: boolean;
  /**
   * Verify each `revoked` revocation from the events that follow (`revocation.verify`).
   * @default on, allowances aws 60 s, okta 10 s, k8s 10 s, webhook 30 s, window 60 min
   */
  verify?: VerifyOptions;
  /** One person across planes (`detector.people`): links, listed in unauthorized alerts, followed where asked. null/absent = off. */
  people?: PeopleOptions | null;
  /** Live: identities with `confirm:` ask their owner before revoking (detectors/confirm). */
  confirm?: Confirmations;
}

export interface DetectorTotals {
  events: number;
  breakGlassEvents: number;
  alerts: Record<AlertType, number>;
}

/**
 * The break-glass detector: for every event of a registered identity it decides, at
 * event time, whether an approved ticket covered it; groups events into sessions;
 * alerts once per session (and per attempt and reviewed activity); and cuts off
 * unauthorized sessions through the identity's revocation targets.
 */
export class BreakGlassDetector implements EventStage {
  readonly name = 'detector';
  readonly sessions: SessionTracker;
  readonly totals: DetectorTotals = {
    events: 0,
    breakGlassEvents: 0,
    alerts: Object.fromEntries(ALERT_TYPES.map((t) => [t, 0])) as Record<AlertType, number>,
  };
  /** Every session seen (latest state), for summaries and reports. */
  readonly seen = new Map<string, BreakGlassSession>();
  readonly revocationRecords: RevocationRecord[] = [];
  /** Watches the handles of revoked sessions in later events: `breakglass.revocation_ineffective` or verified. */
  readonly verifier: RevocationVerifier;
  /** Links each break-glass session to the same person's sessions in the other planes; null when off. */
  readonly people: PersonLinks | null;
  readonly #dirty = new Set<BreakGlassSession>();
  readonly #sessionEvents = new SessionEventIds();
  readonly #graceMs: number;
  readonly #nearWindowMs: number;
  readonly #keepSessions: boolean;
  readonly #onAlert: ((a: Alert) => void) | undefined;
  readonly pending = new PendingVerdicts();
  /** Changes not yet in `state`, and the events partition of each session. */
  #changes: StateChange[] = [];
  readonly #stateWrites = new StateWrites(
    () => this.options.state,
    async () => {
      const outputs = [this.options.alerts, this.options.revocations] as Array<{ settle?: () => Promise<void> }>;
      await Promise.all(outputs.map((o) => o.settle?.()));
    },
  );
  /** Concurrent partitions' flushes share one (the engine takes one insert at a time). */
  readonly #flushes = new GroupFlush(() => this.#flushOnce());
  readonly #partitionOf = new Map<string, number>();
  #partition = 0;
  /** Events, fired verdicts and assignments run one at a time: they share the sessions. */
  #serial: Promise<unknown> = Promise.resolve();
  #pendingTimer: NodeJS.Timeout | null = null;
  /** Per partition, the latest event time seen: sessions idle past the gap at it are closed (live). */
  readonly #watermark = new Map<number, number>();
  /** Per partition, the last events offset whose state the changelog had when it was assigned. */
  readonly #applied = new Map<number, bigint>();
  /** The sessions of pending verdicts: kept even if closed by event time before the grace ended. */
  readonly #heldSessions = new Map<string, BreakGlassSession>();

  constructor(
    readonly options: DetectorOptions,
    hooks: { onAlert?: (a: Alert) => void } = {},
  ) {
    this.sessions = new SessionTracker(options.sessionIdleSeconds === undefined ? {} : { idleSeconds: options.sessionIdleSeconds });
    this.#graceMs = (options.graceSeconds ?? 0) * 1000;
    this.#nearWindowMs = (options.nearWindowMinutes ?? DEFAULT_NEAR_WINDOW_MINUTES) * 60_000;
    this.#keepSessions = options.keepSessions ?? options.clock === 'replay';
    this.#onAlert = hooks.onAlert;
    this.verifier = new RevocationVerifier(
      options.verify ?? {
        enabled: true,
        allowanceMs: Object.fromEntries(
          Object.entries(DEFAULT_ALLOWANCE_SECONDS).map(([k, s]) => [k, s * 1000]),
        ) as VerifyOptions['allowanceMs'],
        windowMs: DEFAULT_VERIFY_WINDOW_MINUTES * 60_000,
      },
      {
        ledger: options.revocations.ledger,
        log: options.log,
        identity: (id) => options.registry.identities.find((i) => i.id === id),
        raise: (a) => this.#raise(a),
        change: (c) => this.#changes.push(c),
        clock: options.clock,
      },
    );
    this.people = options.people
      ? new PersonLinks(options.people, {
          revocations: options.revocations,
          identity: (id) => options.registry.get(id),
          raise: (a) => this.#raise(a),
          recorded: (records) => this.revocationRecords.push(...records),
          changed: (s) => this.#dirty.add(s),
          watch: (linked, trigger, records, policy, key, timeMs, orderedMs, from) =>
            this.verifier.watch(linked, trigger, records, policy, {
              alertId: key,
              partition: this.#partitionOf.get(from.id) ?? this.#partition,
              timeMs,
              orderedMs,
            }),
        })
      : null;
  }

  /**
   * `partition`: the events partition they came from (state is kept per partition); `offset`: the
   * position of the last of them, so an event re-delivered after a failover whose state the
   * previous owner had written already is not applied twice.
   */
  async handle(events: readonly AuditEvent[], context: { partition?: number; offset?: string; defer?: boolean } = {}): Promise<void> {
    await this.#exclusive(async () => {
      const partition = context.partition ?? 0;
      this.#partition = partition;
      const applied = this.#applied.get(partition);
      // Handled, alerted and in the changelog before the crash: only its offset commit was missing.
      if (context.offset !== undefined && applied !== undefined && BigInt(context.offset) <= applied) return;
      for (const e of events) await this.#one(e);
      // Revocations whose handles stayed quiet for the window (this partition's event time) are verified.
      const watermark = this.#watermark.get(partition);
      if (watermark !== undefined && this.verifier.watches.mayHaveEnded(watermark)) await this.verifier.conclude(partition, watermark);
      if (context.offset !== undefined && (this.#dirty.size > 0 || this.#changes.length > 0)) {
        this.#changes.push({ kind: 'applied', partition, offset: context.offset });
      }
      // Live, the service writes sessions and state once per fetched batch (`flush`), not per event.
      if (!context.defer) await this.#writeSessions();
    });
  }

  /**
   * Other detector members' person activity (`topics.people`, live with several members): this
   * member's break-glass sessions link to it, raise `breakglass.linked_session` and follow it like
   * activity seen here. Written at once, as fired verdicts are (no batch of events carries it).
   */
  async linkSightings(sightings: readonly Sighting[]): Promise<void> {
    if (!this.people || sightings.length === 0) return;
    await this.#exclusive(async () => {
      for (const s of sightings) {
        const linking = this.people!.onSighting(s, () => Date.now());
        if (linking) await linking;
      }
      await this.#writeSessions();
      await this.options.writer?.flush();
    });
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(work, work);
    this.#serial = run.catch(() => {});
    return run;
  }

  /**
   * Fires the pending verdicts whose grace ended or which an approval now covers. Called on a
   * timer while there are any (live), and by tests with a chosen clock.
   */
  async firePending(nowMs = Date.now()): Promise<number> {
    return this.#exclusive(async () => {
      let fired = 0;
      for (const p of this.pending.all()) {
        const session = this.#heldSessions.get(p.sessionId) ?? this.sessions.get(p.sessionId);
        const coverage = session ? this.#judgeAgain(p, session) : null;
        if (!session || !coverage) {
          // Not expected: the session entry is written with the pending one. Loud, since a verdict is lost.
          this.options.log.error('pending verdict without its session or identity; dropped', {
            sessionId: p.sessionId,
            identity: p.identity,
          });
          this.pending.delete(p.sessionId);
          this.#changes.push({ kind: 'pending-done', partition: p.partition, sessionId: p.sessionId });
          continue;
        }
        if (coverage.verdict !== 'authorized' && nowMs < p.dueMs) continue;
        await this.#settle(p, session, coverage);
        fired++;
      }
      await this.#writeSessions();
      await this.options.writer?.flush();
      return fired;
    });
  }

  #judgeAgain(p: PendingVerdict, session: BreakGlassSession): Coverage | null {
    const identity = this.options.registry.identities.find((i) => i.id === p.identity);
    if (!identity) return null;
    const e = p.event;
    return judgeUse(
      this.options.ledger,
      { identity: identity.id, source: e.source, timeMs: Date.parse(e.time), account: e.account, org: e.org, cluster: e.cluster },
      {
        graceSeconds: this.#graceMs / 1000,
        nearWindowMinutes: this.#nearWindowMs / 60_000,
        sessionTicketId: !p.created && session.verdict === 'authorized' ? session.ticketId : null,
      },
    );
  }

  async #settle(p: PendingVerdict, session: BreakGlassSession, coverage: Coverage): Promise<void> {
    const identity = this.options.registry.identities.find((i) => i.id === p.identity)!;
    const e = p.event;
    const timeMs = Date.parse(e.time);
    const detectedAt = () => Date.now();
    // The alert goes out before the entry is deleted: a crash in between fires it again (same alert id), never loses it.
    if (p.created) await this.#verdictOfNew(identity, session, e, coverage, timeMs, detectedAt);
    else if (coverage.verdict === 'unauthorized') await this.#turnUnauthorized(identity, session, e, coverage, timeMs, detectedAt);
    this.pending.delete(p.sessionId);
    this.#heldSessions.delete(p.sessionId);
    this.#changes.push({ kind: 'pending-done', partition: p.partition, sessionId: p.sessionId });
    session.version++;
    this.#dirty.add(session);
    if (!this.sessions.get(session.id)) {
      // Closed by event time during the grace: its last row goes to the store, then it leaves the changelog.
      await this.#writeSessions();
      this.#changes.push({ kind: 'session-closed', partition: p.partition, sessionId: session.id });
      this.#partitionOf.delete(session.id);
    }
  }

  #schedulePending(): void {
    if (this.#pendingTimer || this.options.clock !== 'live') return;
    // A poll, not a timer per verdict: it also sees approvals arriving, and costs nothing when idle.
    this.#pendingTimer = setInterval(() => {
      if (this.pending.size === 0) {
        clearInterval(this.#pendingTimer!);
        this.#pendingTimer = null;
        return;
      }
      this.firePending().catch((err: unknown) =>
        this.options.log.error('pending verdicts not fired; retried', { error: err instanceof Error ? err.message : String(err) }),
      );
    }, 250);
    this.#pendingTimer.unref();
  }

  /** Live: keeps open sessions and pending verdicts in `sink` (the changelog) from now on. */
  keepStateIn(sink: DetectorStateSink): void {
    this.options.state = sink;
  }

  /**
   * Takes the state of partitions assigned to this member, forgets that of partitions it lost.
   * Runs between events, so no event of a gained partition is judged without its sessions.
   */
  async assignPartitions(lost: ReadonlySet<number>, gained: PartitionState): Promise<void> {
    await this.#exclusive(async () => {
      if (lost.size) {
        const ids = new Set<string>();
        for (const [id, p] of this.#partitionOf) if (lost.has(p)) ids.add(id);
        this.sessions.remove(ids);
        for (const id of ids) this.#partitionOf.delete(id);
        this.pending.dropPartitions(lost);
        this.verifier.watches.dropPartitions(lost);
        for (const p of lost) {
          this.#applied.delete(p);
          this.#watermark.delete(p);
        }
        // Not written yet: the changelog has the partition's state, and its events come again.
        this.#changes = this.#changes.filter((c) => !lost.has(c.partition));
        this.#stateWrites.dropPartitions(lost);
        for (const id of [...this.#heldSessions.keys()]) if (!this.pending.has(id)) this.#heldSessions.delete(id);
      }
      for (const [p, offset] of gained.applied) this.#applied.set(p, BigInt(offset));
      this.verifier.restore(gained.watches ?? []);
      this.sessions.restore(gained.sessions);
      for (const s of gained.sessions) this.#partitionOf.set(s.id, (s as BreakGlassSession & { partition?: number }).partition ?? 0);
      for (const p of gained.pending) {
        this.pending.add(p);
        const held = gained.sessions.find((s) => s.id === p.sessionId);
        if (held) this.#heldSessions.set(p.sessionId, this.sessions.get(p.sessionId) ?? held);
        this.#partitionOf.set(p.sessionId, p.partition);
      }
      if (this.pending.size) this.#schedulePending();
    });
  }

  async #one(e: AuditEvent): Promise<void> {
    const handedAt = Date.now();
    const timeMs = Date.parse(e.time);
    if (timeMs > (this.#watermark.get(this.#partition) ?? Number.NEGATIVE_INFINITY)) this.#watermark.set(this.#partition, timeMs);
    this.totals.events++;
    const detectedAt = () => (this.options.clock === 'live' ? Date.now() : timeMs + (Date.now() - handedAt));
    // Any event, break-glass or not: a revoked handle is watched whoever the registry says it is.
    const touched = this.verifier.watches.touched(e);
    if (touched.length) await this.verifier.onEvent(e, touched, timeMs, detectedAt);
    const person = this.people?.observe(e, timeMs) ?? null;
    const identity = this.options.registry.match(e);
    const matches = this.options.engine ? this.options.engine.match(e.source, e.raw).filter((m) => m.output) : [];
    if (!identity) {
      if (this.options.ruleMatchAlerts !== false) {
        for (const m of matches) await this.#raise(ruleAlert('rule.match', m, e, null, null, detectedAt()));
      }
      const linking = person && this.people!.onActivity(person, timeMs, detectedAt);
      if (linking) await linking;
      return;
    }
    this.totals.breakGlassEvents++;
    if (isFailedAuthentication(e)) {
      await this.#raise(
        base('breakglass.attempt', alertId('breakglass.attempt', identity.id, e.source, e.id), 'high', identity, e, detectedAt(), {
          reason: e.outcomeReason ?? 'authentication_failed',
          summary: `failed sign-in as break-glass identity ${identity.id} (${e.actor.name ?? 'unknown principal'}) from ${e.sourceIp ?? 'unknown IP'}`,
        }),
      );
      return;
    }
    const { session, created } = this.sessions.assign(identity.id, e, timeMs);
    const linked = person && this.people!.onSession(identity, session, person, e, timeMs, detectedAt);
    if (linked) await linked;
    if (this.#keepSessions) this.seen.set(session.id, session);
    this.#sessionEvents.add(session.id, e.id);
    const sessionScope = () => ({ eventIds: this.#sessionEvents.forAlert(session.id, e.id), sessionEvents: session.events });
    const use = { identity: identity.id, source: e.source, timeMs, account: e.account, org: e.org, cluster: e.cluster };
    // Explanation step 1: a session authorized under a ticket is explained with that ticket.
    const judge = () =>
      judgeUse(this.options.ledger, use, {
        graceSeconds: this.#graceMs / 1000,
        nearWindowMinutes: this.#nearWindowMs / 60_000,
        sessionTicketId: !created && session.verdict === 'authorized' ? session.ticketId : null,
      });
    this.#partitionOf.set(session.id, this.#partition);
    // A session whose verdict waits for a late approval is judged once, when the grace ends.
    const held = this.pending.has(session.id);
    const coverage = judge();
    const judging = !held && (created || session.verdict === 'authorized');
    const dueMs = timeMs + this.#graceMs;
    if (judging && coverage.verdict === 'unauthorized' && this.#graceMs > 0 && this.options.clock === 'live' && dueMs > Date.now()) {
      // Live: an approval may still be on its way. The verdict waits as a pending entry (in the
      // changelog before this event's offset is committed); the partition goes on meanwhile.
      const p: PendingVerdict = { sessionId: session.id, identity: identity.id, partition: this.#partition, created, dueMs, event: e };
      this.pending.add(p);
      this.#heldSessions.set(session.id, session);
      this.#changes.push({ kind: 'pending', partition: p.partition, pending: p });
      this.#schedulePending();
    } else if (held) {
      // counted in the session below; its verdict comes from the pending entry
    } else if (created) {
      await this.#verdictOfNew(identity, session, e, coverage, timeMs, detectedAt, sessionScope());
    } else if (session.verdict === 'authorized' && coverage.verdict === 'unauthorized') {
      await this.#turnUnauthorized(identity, session, e, coverage, timeMs, detectedAt);
    }
    // Activity counts are events per category: an event matched by three rules is one command.
    const categories = new Set<ReturnType<typeof categoryOf>>();
    for (const m of matches) {
      const category = categoryOf(m);
      categories.add(category);
      const alert = ruleAlert('breakglass.activity', m, e, identity, session, detectedAt());
      Object.assign(alert, sessionScope());
      alert.category = category;
      alert.summary = `${category} activity in break-glass session of ${identity.id}: ${m.title}`;
      await this.#raise(alert);
    }
    for (const c of categories) session.activity[c]++;
    session.version++;
    this.#dirty.add(session);
    const linking = person && this.people!.onActivity(person, timeMs, detectedAt);
    if (linking) await linking;
  }

  async #verdictOfNew(
    identity: Identity,
    session: BreakGlassSession,
    e: AuditEvent,
    coverage: Coverage,
    timeMs: number,
    detectedAt: () => number,
    scope: { eventIds: string[]; sessionEvents: number } = { eventIds: [e.id], sessionEvents: session.events },
  ): Promise<void> {
    session.ticketId = coverage.ticket?.id ?? null;
    session.approvers = coverage.ticket?.approvers ?? [];
    if (coverage.verdict !== 'authorized') {
      await this.#turnUnauthorized(identity, session, e, coverage, timeMs, detectedAt);
      return;
    }
    session.verdict = 'authorized';
    const at = detectedAt();
    session.detectedAtMs = at;
    await this.#raise(
      base('breakglass.authorized', alertId('breakglass.authorized', session.id), 'informational', identity, e, at, {
        sessionId: session.id,
        ...scope,
        ticketId: coverage.ticket.id,
        summary: `break-glass identity ${identity.id} used by ${e.actor.name ?? 'unknown'} under ticket ${coverage.ticket.id} (approved by ${coverage.ticket.approvers.join(', ')})`,
      }),
    );
  }

  async #turnUnauthorized(
    identity: Identity,
    session: BreakGlassSession,
    e: AuditEvent,
    coverage: Coverage,
    timeMs: number,
    detectedAt: () => number,
  ): Promise<void> {
    session.verdict = 'unauthorized';
    session.reason = coverage.reason;
    session.unauthorizedEventId = e.id;
    // The session row says what the alert says: the same ticket, or none.
    session.ticketId = coverage.ticket?.id ?? null;
    session.approvers = coverage.ticket?.approvers ?? [];
    const at = detectedAt();
    session.detectedAtMs = at;
    const alert = base('breakglass.unauthorized', alertId('breakglass.unauthorized', session.id), 'critical', identity, e, at, {
      sessionId: session.id,
      eventIds: this.#sessionEvents.forAlert(session.id, e.id, [session.firstEventId]),
      sessionEvents: session.events,
      revocationMode: revocationModeText(this.options.revocations.policies.get(identity.id)?.mode),
      ...(this.people ? { linkedSessions: this.people.listed(session) ?? [] } : {}),
      ticketId: coverage.ticket?.id ?? null,
      reason: coverage.reason,
      summary: `UNAUTHORIZED use of break-glass identity ${identity.id} by ${e.actor.name ?? 'unknown'} from ${e.sourceIp ?? 'unknown IP'}: ${coverage.reason}${coverage.ticket ? ` (ticket ${coverage.ticket.id})` : ''}${this.options.confirm?.note(identity.id) ?? ''}`,
    });
    await this.#raise(alert);
    const raw = e.raw as { user?: { groups?: unknown } };
    const groups = Array.isArray(raw.user?.groups) ? raw.user.groups.filter((g): g is string => typeof g === 'string') : [];
    const request: RevocationRequest = {
      alert,
      session,
      identity: identity.id,
      principal: e.actor.name,
      principalId: e.actor.id,
      groups,
      reason: coverage.reason ?? 'unauthorized',
      event: e,
      idempotencyKey: '',
    };
    if (this.options.confirm?.asks(identity.id)) {
      // "Was this you?" first: the owner's "no" or the timeout comes back through revokeConfirmed.
      await this.options.confirm.ask(request, timeMs, Date.parse(alert.detectedAt));
      return;
    }
    await this.#revoke(request, timeMs, Date.parse(alert.detectedAt));
  }

  async #revoke(request: RevocationRequest, timeMs: number, orderedMs: number): Promise<void> {
    const { alert, session, event: e } = request;
    const records = await this.options.revocations.revoke(request, timeMs, orderedMs);
    this.revocationRecords.push(...records);
    // Response status: one alert per attempt, so the SOC sees what was done and what is left to do.
    for (const r of records) await this.#raise(revocationAlert(alert, r));
    this.verifier.watch(session, e, records, this.options.revocations.policies.get(request.identity), {
      alertId: alert.id,
      partition: this.#partitionOf.get(session.id) ?? this.#partition,
      timeMs,
      orderedMs,
    });
    // followLinked: the person's sessions in the other planes go too, each its own revocation record.
    const identity = this.people ? this.options.registry.get(request.identity) : undefined;
    if (identity) await this.people!.onUnauthorized(identity, session, alert, timeMs, orderedMs);
  }

  /**
   * Revokes a session whose owner answered "no" to "was this you?" or not in time (detectors/confirm):
   * the same revocation, outcome alerts and verification as at the verdict, between events.
   */
  async revokeConfirmed(request: RevocationRequest, eventTimeMs: number, detectedAtMs: number): Promise<void> {
    await this.#exclusive(async () => {
      const session = this.sessions.get(request.session.id) ?? request.session;
      await this.#revoke({ ...request, session }, eventTimeMs, detectedAtMs);
      await this.#writeSessions();
      await this.options.writer?.flush();
    });
  }

  /** Raises an alert found outside the event path (a forged ticket record) through the same outputs and store. */
  async raisePipelineAlert(alert: Alert): Promise<void> {
    await this.#raise(alert);
    await this.options.writer?.flush();
  }

  async #raise(alert: Alert): Promise<void> {
    this.options.alerts.complete(alert);
    this.totals.alerts[alert.type]++;
    this.#onAlert?.(alert);
    if (this.options.writer) await this.options.writer.add('alerts', alertRow(alert));
    await this.options.alerts.dispatch(alert);
  }

  async #writeSessions(): Promise<void> {
    await (await this.#collectSessions()).written;
  }

  /**
   * Closes idle sessions, hands the changed ones to the store writer and every state change so far
   * to the ordered changelog writes; `written` resolves once those are in the changelog.
   */
  async #collectSessions(): Promise<{ written: Promise<void> }> {
    const writer = this.options.writer;
    const state = this.options.state;
    const live = this.options.clock === 'live';
    if (live) this.sessions.closeIdle((s) => this.#watermark.get(this.#partitionOf.get(s.id) ?? -1));
    for (const s of this.sessions.takeClosed()) {
      const partition = this.#partitionOf.get(s.id);
      this.#partitionOf.delete(s.id);
      if (partition !== undefined && !this.pending.has(s.id)) this.#changes.push({ kind: 'session-closed', partition, sessionId: s.id });
      // Live, the end of a judged session is news (PagerDuty resolves its incident); replay output is unchanged.
      if (live && !this.pending.has(s.id) && s.detectedAtMs !== null)
        await this.#raise(sessionClosedAlert(s, this.sessions.idleMs, Date.now()));
    }
    for (const s of this.#dirty) {
      const partition = this.#partitionOf.get(s.id) ?? this.#partition;
      if (state) this.#changes.push({ kind: 'session', partition, session: { ...s, partition } as BreakGlassSession });
      // While its verdict is pending, the store does not show the session as judged.
      if (writer && !this.pending.has(s.id)) await writer.add('sessions', sessionRow(s));
    }
    this.#dirty.clear();
    const changes = this.#changes;
    this.#changes = [];
    return { written: this.#stateWrites.write(changes) };
  }

  /**
   * Resolves once everything handled before the call is written: session and alert rows in the
   * store, state in the changelog (after its alerts and orders are on their topics). What to
   * write is taken under the lock; the writes run outside it, so the other partitions' events
   * are judged while the store or the broker answers (before, a flush stopped all judging).
   */
  flush(): Promise<void> {
    return this.#flushes.flush();
  }

  async #flushOnce(): Promise<void> {
    const writes = await this.#exclusive(async () => {
      const { written } = await this.#collectSessions();
      // Both take what they write now; observed at once, awaited below.
      const started = [written, this.options.writer?.flush() ?? Promise.resolve()];
      for (const w of started) w.catch(() => {});
      return started;
    });
    const results = await Promise.allSettled(writes);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async close(): Promise<void> {
    if (this.#pendingTimer) clearInterval(this.#pendingTimer);
    this.#pendingTimer = null;
    await this.options.confirm?.close();
    await this.flush();
    await this.options.alerts.close();
  }
}

/**
 * The verdict on one use of a break-glass identity and the ticket that explains it, as
 * the detector gives it. `glasswatch tickets check` calls this very function, so the CLI
 * cannot disagree with replay or live.
 */
export function judgeUse(
  ledger: TicketLedger,
  use: Use,
  o: { graceSeconds?: number; nearWindowMinutes?: number; sessionTicketId?: string | null } = {},
): Coverage {
  return ledger.evaluate(use, {
    graceMs: (o.graceSeconds ?? 0) * 1000,
    nearWindowMs: (o.nearWindowMinutes ?? DEFAULT_NEAR_WINDOW_MINUTES) * 60_000,
    sessionTicketId: o.sessionTicketId ?? null,
  });
}

// The stores' rows of an alert and a session (kept importable from here).
export { alertRow, sessionRow } from './rows.js';
