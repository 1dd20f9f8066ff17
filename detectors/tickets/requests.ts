import { Fields, type GlasswatchConfig } from '../../core/config.js';
import { errorMessage } from '../../core/errors.js';
import type { Source } from '../../core/event.js';
import type { Logger } from '../../core/log.js';
import type { Store } from '../../core/store/client.js';
import { type Alert, type AlertType, pipelineAlert, type Severity, type TicketRequestFacts } from '../alerts/alert.js';
import type { TicketLedger } from './ledger.js';
import { samePerson, type TicketVersion } from './ticket.js';

/**
 * A version (or an overdue moment) older than this when first seen is history, not news: a detector
 * that reads the whole tickets topic at start (or is deployed over months of tickets) does not
 * page the SOC about requests approved long ago. Anything younger is alerted, once.
 */
export const REQUEST_HISTORY_MS = 24 * 3600_000;

/** `tickets.approvalSlaMinutes`: how long a request may wait for approval before it is overdue; null = no SLA. */
export function approvalSlaOf(config: GlasswatchConfig): number | null {
  const t = Fields.of(config.file, 'tickets', config.sections.tickets);
  if (t.value.approvalSlaMinutes === undefined || t.value.approvalSlaMinutes === null) return null;
  // Fractions are allowed (0.5 = 30 s) so a drill can run in seconds; a week at most.
  const v = t.number('approvalSlaMinutes', 0, { min: 0, max: 10_080 });
  if (v <= 0) t.fail('approvalSlaMinutes', 'must be more than 0 minutes (leave it out for no approval SLA)');
  return v;
}

export interface TicketRequestAlertsOptions {
  ledger: TicketLedger;
  /** The detector's alert path (store row, alerts stage, outputs). */
  raise: (a: Alert) => Promise<void>;
  /** Where earlier raises are looked up (alerts) and the newest ticket versions are (tickets). */
  store: Store | null;
  log: Logger;
  slaMinutes: number | null;
  /** The source of an identity of the config, for the alert's `source`. */
  sourceOf?: (identity: string) => Source | null;
  now?: () => number;
  /** How often waiting requests are checked against the SLA. @default min(60 s, SLA / 4), at least 1 s */
  sweepMs?: number;
  /**
   * Versions (and overdue moments) older than this are history and raise nothing; null alerts every
   * version (a replay of a past day into a fresh store, `demo --serve`). @default REQUEST_HISTORY_MS
   */
  historyMs?: number | null;
}

/**
 * Raises `breakglass.requested` and `breakglass.approved` for new ticket versions, and
 * `breakglass.approval_overdue` for a request still waiting after the approval SLA. Every alert id
 * is derived from the ticket id and version (and identity), and a raise is skipped when the store
 * already holds that alert: a restart that reads the tickets topic again, or a second detector
 * instance, raises nothing twice (and the delivery ledger deduplicates what races through).
 */
export class TicketRequestAlerts {
  readonly #o: TicketRequestAlertsOptions;
  readonly #now: () => number;
  readonly #historyMs: number;
  readonly #raised = new Set<string>();
  #queue: TicketVersion[] = [];
  #work: Promise<void> = Promise.resolve();
  #unsubscribe: (() => void) | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** Alerts raised by this process, by type. */
  readonly totals: Record<'breakglass.requested' | 'breakglass.approved' | 'breakglass.approval_overdue', number> = {
    'breakglass.requested': 0,
    'breakglass.approved': 0,
    'breakglass.approval_overdue': 0,
  };

  constructor(o: TicketRequestAlertsOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#historyMs = o.historyMs === undefined ? REQUEST_HISTORY_MS : (o.historyMs ?? Number.POSITIVE_INFINITY);
  }

  start(): void {
    this.#unsubscribe = this.#o.ledger.onChange((v) => {
      if (v.status !== 'requested' && v.status !== 'approved') return;
      this.#queue.push(v);
      this.#schedule();
    });
    const sla = this.#o.slaMinutes;
    if (sla !== null) {
      const every = this.#o.sweepMs ?? Math.max(1000, Math.min(60_000, (sla * 60_000) / 4));
      this.#timer = setInterval(() => this.#schedule(true), every);
      this.#timer.unref();
    }
  }

  /** Resolves once every version seen so far (and a sweep, if asked) has been handled. */
  settle(sweep = false): Promise<void> {
    this.#schedule(sweep);
    return this.#work;
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    if (this.#timer) clearInterval(this.#timer);
    await this.#work;
  }

  /** Requests waiting for approval now, per identity: count and the oldest wait (for /metrics). */
  waiting(nowMs = this.#now()): Map<string, { count: number; oldestSeconds: number }> {
    const out = new Map<string, { count: number; oldestSeconds: number }>();
    for (const v of latestVersions(this.#o.ledger)) {
      if (v.status !== 'requested') continue;
      const waited = Math.max(0, (nowMs - waitStart(this.#o.ledger, v)) / 1000);
      for (const identity of v.identities) {
        const w = out.get(identity) ?? { count: 0, oldestSeconds: 0 };
        w.count++;
        w.oldestSeconds = Math.max(w.oldestSeconds, waited);
        out.set(identity, w);
      }
    }
    return out;
  }

  #schedule(sweep = false): void {
    // One pass at a time, in order: the store lookups of a pass see the raises of the previous one.
    this.#work = this.#work.then(() =>
      this.#pass(sweep).catch((err: unknown) => {
        // The versions stay queued and are tried again at the next version or sweep: never dropped quietly.
        this.#o.log.error('ticket request alerts not raised; retrying at the next sweep', { error: errorMessage(err) });
      }),
    );
  }

  async #pass(sweep: boolean): Promise<void> {
    const versions = this.#queue.slice();
    const now = this.#now();
    const alerts = versions.flatMap((v) => this.#alertsOf(v, now));
    if (sweep) alerts.push(...(await this.#overdue(now)));
    const fresh = await this.#unraised(alerts);
    for (const a of fresh) {
      await this.#o.raise(a);
      this.#raised.add(a.id);
      this.totals[a.type as keyof typeof this.totals]++;
    }
    // Only now: a failed raise keeps its versions for the next pass.
    this.#queue = this.#queue.slice(versions.length);
    if (fresh.length) this.#o.log.info('ticket request alerts raised', { alerts: fresh.length });
  }

  #alertsOf(v: TicketVersion, now: number): Alert[] {
    if (now - v.updatedAtMs > this.#historyMs) return [];
    const ledger = this.#o.ledger;
    if (v.status === 'requested') {
      const facts = this.#facts(v, waitStart(ledger, v), null);
      const window = `${v.notBefore} to ${v.notAfter}`;
      return v.identities.map((identity) =>
        this.#alert('breakglass.requested', 'medium', v, identity, v.updatedAt, now, facts, {
          summary: `${v.requester} requested break-glass access to ${identity} from ${window} (ticket ${v.id})${v.reason ? `: ${v.reason}` : ''}`,
        }),
      );
    }
    const requested = firstRequestBefore(ledger, v);
    const facts = this.#facts(v, requested, v.updatedAtMs);
    const who = v.approvers.length ? v.approvers.join(', ') : 'nobody named';
    const self = v.approvers.some((a) => samePerson(a, v.requester)) ? ' (self-approved: it authorizes nothing)' : '';
    const after = facts.waitSeconds === null ? '' : ` ${formatWait(facts.waitSeconds)} after the request`;
    return v.identities.map((identity) =>
      this.#alert('breakglass.approved', 'medium', v, identity, v.updatedAt, now, facts, {
        summary: `ticket ${v.id}: break-glass access to ${identity} for ${v.requester} approved by ${who}${after}${self}, window ${v.notBefore} to ${v.notAfter}`,
      }),
    );
  }

  /** Waiting requests past the SLA, each raised once per ticket and wait (id + first requested version). */
  async #overdue(now: number): Promise<Alert[]> {
    const sla = this.#o.slaMinutes;
    if (sla === null) return [];
    const slaMs = sla * 60_000;
    const late = [...latestVersions(this.#o.ledger)]
      .filter((v) => v.status === 'requested')
      .map((v) => ({ v, since: waitStart(this.#o.ledger, v) }))
      .filter(({ since }) => now - since > slaMs && now - (since + slaMs) <= this.#historyMs);
    if (late.length === 0) return [];
    // The ledger may lag the store (a detector still reading the tickets topic at start): a ticket the
    // store already knows as approved, rejected or closed is not waiting.
    const settled = await this.#settledInStore(late.map(({ v }) => v.id));
    return late
      .filter(({ v }) => !settled.has(v.id))
      .flatMap(({ v, since }) => {
        const facts = this.#facts(v, since, null, now);
        const since_ = new Date(since).toISOString();
        return v.identities.map((identity) =>
          this.#alert('breakglass.approval_overdue', 'high', v, identity, since_, now, facts, {
            summary: `ticket ${v.id}: ${v.requester}'s request for break-glass access to ${identity} has waited ${formatWait(facts.waitSeconds ?? 0)} for approval (SLA ${sla} min); approvers: ${v.approvers.join(', ') || 'none named'}`,
          }),
        );
      });
  }

  async #settledInStore(ids: string[]): Promise<Set<string>> {
    const store = this.#o.store;
    if (!store) return new Set();
    const rows = await (
      await store.client.query({
        query:
          'SELECT ticket_id, argMax(status, updated_at) AS status FROM tickets WHERE ticket_id IN {ids:Array(String)} GROUP BY ticket_id',
        query_params: { ids },
        format: 'JSONEachRow',
      })
    ).json<{ ticket_id: string; status: string }>();
    return new Set(rows.filter((r) => r.status !== 'requested').map((r) => r.ticket_id));
  }

  async #unraised(alerts: Alert[]): Promise<Alert[]> {
    const unique = [...new Map(alerts.filter((a) => !this.#raised.has(a.id)).map((a) => [a.id, a])).values()];
    const store = this.#o.store;
    if (!store || unique.length === 0) return unique;
    const rows = await (
      await store.client.query({
        query: 'SELECT DISTINCT alert_id FROM alerts WHERE alert_id IN {ids:Array(String)}',
        query_params: { ids: unique.map((a) => a.id) },
        format: 'JSONEachRow',
      })
    ).json<{ alert_id: string }>();
    for (const r of rows) this.#raised.add(r.alert_id);
    return unique.filter((a) => !this.#raised.has(a.id));
  }

  #facts(v: TicketVersion, requestedMs: number | null, approvedMs: number | null, nowMs?: number): TicketRequestFacts {
    const end = approvedMs ?? nowMs ?? null;
    return {
      requester: v.requester,
      approvers: [...v.approvers],
      reason: v.reason ?? null,
      notBefore: v.notBefore,
      notAfter: v.notAfter,
      requestedAt: requestedMs === null ? null : new Date(requestedMs).toISOString(),
      approvedAt: approvedMs === null ? null : new Date(approvedMs).toISOString(),
      waitSeconds: requestedMs === null || end === null ? null : Math.max(0, Math.round((end - requestedMs) / 1000)),
      slaMinutes: this.#o.slaMinutes,
    };
  }

  #alert(
    type: AlertType,
    severity: Severity,
    v: TicketVersion,
    identity: string,
    time: string,
    now: number,
    request: TicketRequestFacts,
    o: { summary: string },
  ): Alert {
    // Overdue is keyed by the wait (its first requested version), the others by the version itself.
    const version = type === 'breakglass.approval_overdue' ? (request.requestedAt ?? v.updatedAt) : v.updatedAt;
    // A pipeline alert (no event, no session) about a ticket: the same id as before, type + ticket + version + identity.
    return {
      ...pipelineAlert({
        type,
        severity,
        key: [v.id, version, identity],
        source: this.#o.sourceOf?.(identity) ?? null,
        reason: v.reason ?? '',
        time,
        detectedAt: new Date(now).toISOString(),
        summary: o.summary,
      }),
      identity,
      ticketId: v.id,
      reason: v.reason ?? null,
      action: type.replace('breakglass.', 'ticket.'),
      request,
    };
  }
}

/** The newest version of every ticket. */
function* latestVersions(ledger: TicketLedger): Iterable<TicketVersion> {
  const ids = new Set<string>();
  for (const v of ledger.tickets()) ids.add(v.id);
  for (const id of ids) {
    const v = ledger.latest(id);
    if (v) yield v;
  }
}

/** The version just before `v` of the same ticket, or null. */
const previous = (ledger: TicketLedger, v: TicketVersion) => ledger.versionAt(v.id, v.updatedAtMs - 1);

/** When the wait that `v` (a requested version) belongs to began: the first of its run of requested versions. */
function waitStart(ledger: TicketLedger, v: TicketVersion): number {
  let start = v;
  for (let p = previous(ledger, v); p && p.status === 'requested'; p = previous(ledger, p)) start = p;
  return start.updatedAtMs;
}

/** The request an approval answers: the first requested version after the previous approval, or null. */
function firstRequestBefore(ledger: TicketLedger, v: TicketVersion): number | null {
  let found: number | null = null;
  for (let p = previous(ledger, v); p && p.status !== 'approved'; p = previous(ledger, p))
    if (p.status === 'requested') found = p.updatedAtMs;
  return found;
}

function formatWait(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
