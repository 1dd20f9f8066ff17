import type { Source } from '../../core/event.js';
import { samePerson, type TicketVersion } from './ticket.js';

export const UNAUTHORIZED_REASONS = ['no_ticket', 'outside_window', 'self_approved', 'not_approved', 'revoked', 'out_of_scope'] as const;
export type UnauthorizedReason = (typeof UNAUTHORIZED_REASONS)[number];

/**
 * The verdict on one use. An unauthorized verdict carries the ticket that explains it
 * and the step of the explanation rule that chose it (see `evaluate`); `ticket` is null
 * only for `no_ticket` (step 4).
 */
export type Coverage =
  | { verdict: 'authorized'; reason: null; ticket: TicketVersion; step: null }
  | { verdict: 'unauthorized'; reason: UnauthorizedReason; ticket: TicketVersion | null; step: 1 | 2 | 3 | 4 };

/** One use of a break-glass identity, as the ledger needs to judge it. */
export interface Use {
  identity: string;
  source: Source;
  timeMs: number;
  account: string | null;
  org: string | null;
  cluster: string | null;
}

export interface EvaluateOptions {
  /** How long an approval arriving after the event still covers it. @default 0 */
  graceMs?: number;
  /** The ticket the use's session was authorized under (explanation step 1). */
  sessionTicketId?: string | null;
  /** How near an approved window must be to explain a use outside it (step 3). @default 120 minutes */
  nearWindowMs?: number;
}

export const DEFAULT_NEAR_WINDOW_MINUTES = 120;

/**
 * Step 2: among tickets whose window holds the use, the one that came closest to
 * covering it. A scope mismatch is a ticket for the right time and the wrong place;
 * self-approval lacks only the second person; revoked and closed tickets were approved
 * once; a request was never approved.
 */
const CLOSENESS: Record<Exclude<UnauthorizedReason, 'no_ticket'>, number> = {
  not_approved: 1,
  revoked: 2,
  outside_window: 2, // closed before the use: ended early, like a revocation
  self_approved: 3,
  out_of_scope: 4,
};

/** The scope dimension a source always carries; a use without it is out of a scope that sets it. */
const NATIVE_SCOPE: Record<Source, 'accounts' | 'orgs' | 'clusters'> = { cloudtrail: 'accounts', okta: 'orgs', k8s: 'clusters' };

/**
 * Every version of every ticket, queried at event time. Versions of one ticket id are
 * kept sorted by `updatedAt`; the version in force at time T is the last one updated
 * at or before T, so a ticket revoked at T covers nothing after T but still covers
 * what happened before.
 */
export class TicketLedger {
  readonly #versions = new Map<string, TicketVersion[]>();
  readonly #byIdentity = new Map<string, Set<string>>();
  readonly #listeners = new Set<(t: TicketVersion) => void>();

  get size(): number {
    return this.#versions.size;
  }

  /** Adds a version; returns false when this exact version (id + updatedAt) is already known. */
  add(t: TicketVersion): boolean {
    let list = this.#versions.get(t.id);
    if (!list) {
      list = [];
      this.#versions.set(t.id, list);
    }
    if (list.some((v) => v.updatedAtMs === t.updatedAtMs)) return false;
    let i = list.length;
    while (i > 0 && list[i - 1]!.updatedAtMs > t.updatedAtMs) i--;
    list.splice(i, 0, t);
    for (const identity of t.identities) {
      let ids = this.#byIdentity.get(identity);
      if (!ids) {
        ids = new Set();
        this.#byIdentity.set(identity, ids);
      }
      ids.add(t.id);
    }
    for (const listener of this.#listeners) listener(t);
    return true;
  }

  onChange(listener: (t: TicketVersion) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The version of a ticket in force at `timeMs`, or null when it did not exist yet. */
  versionAt(id: string, timeMs: number): TicketVersion | null {
    const list = this.#versions.get(id);
    if (!list) return null;
    let found: TicketVersion | null = null;
    for (const v of list) {
      if (v.updatedAtMs > timeMs) break;
      found = v;
    }
    return found;
  }

  latest(id: string): TicketVersion | null {
    const list = this.#versions.get(id);
    return list ? list[list.length - 1]! : null;
  }

  *tickets(): Iterable<TicketVersion> {
    for (const list of this.#versions.values()) yield* list;
  }

  /**
   * Judges one use. `graceMs` lets an approval that arrives after the event (up to that
   * long) still cover it; a revocation arriving in the grace period does not reach back
   * before its own time. When nothing covers the use, the explanation is chosen in order:
   *  1. the ticket the use's session was authorized under (`sessionTicketId`), judged as
   *     it stood at the use: `outside_window` past `notAfter` or after it was closed,
   *     `revoked` after a revocation, and so on;
   *  2. else, among the identity's ticket versions in force at the use whose window holds
   *     it, the closest (`CLOSENESS`); a ticket closed before the use is `outside_window`;
   *  3. else the identity's approved ticket whose window opens or closes nearest to the
   *     use, within `nearWindowMs`: `outside_window` (early uses too);
   *  4. else `no_ticket`, ticket null. A ticket of another identity never explains.
   */
  evaluate(use: Use, options: number | EvaluateOptions = {}): Coverage {
    const o: EvaluateOptions = typeof options === 'number' ? { graceMs: options } : options;
    const graceMs = o.graceMs ?? 0;
    const ids = [...(this.#byIdentity.get(use.identity) ?? [])].sort();
    // In force at the use, granting this identity: the only versions that can explain it.
    const inForce: TicketVersion[] = [];
    for (const id of ids) {
      const atUse = this.versionAt(id, use.timeMs);
      if (atUse?.identities.includes(use.identity)) {
        if (judge(atUse, use) === null) return { verdict: 'authorized', reason: null, ticket: atUse, step: null };
        inForce.push(atUse);
      }
      if (graceMs > 0 && atUse?.status !== 'approved') {
        for (const v of this.#versions.get(id) ?? []) {
          if (v.updatedAtMs <= use.timeMs || v.updatedAtMs > use.timeMs + graceMs || v.status !== 'approved') continue;
          if (v.identities.includes(use.identity) && judge(v, use) === null)
            return { verdict: 'authorized', reason: null, ticket: v, step: null };
        }
      }
    }

    // 1. The session's own ticket.
    if (o.sessionTicketId) {
      const own = this.versionAt(o.sessionTicketId, use.timeMs);
      const reason = own?.identities.includes(use.identity) ? judge(own, use) : null;
      if (own && reason) return { verdict: 'unauthorized', reason, ticket: own, step: 1 };
    }

    // 2. The closest ticket whose window holds the use (later decision first on a tie).
    let best: { reason: Exclude<UnauthorizedReason, 'no_ticket'>; ticket: TicketVersion } | null = null;
    for (const v of inForce) {
      if (use.timeMs < v.notBeforeMs || use.timeMs > v.notAfterMs) continue;
      const reason = judge(v, use)!;
      if (
        !best ||
        CLOSENESS[reason] > CLOSENESS[best.reason] ||
        (CLOSENESS[reason] === CLOSENESS[best.reason] && v.updatedAtMs > best.ticket.updatedAtMs)
      )
        best = { reason, ticket: v };
    }
    if (best) return { verdict: 'unauthorized', reason: best.reason, ticket: best.ticket, step: 2 };

    // 3. The nearest approved window.
    const nearMs = o.nearWindowMs ?? DEFAULT_NEAR_WINDOW_MINUTES * 60_000;
    let nearest: { distance: number; ticket: TicketVersion } | null = null;
    for (const v of inForce) {
      const window = approvedWindow(v);
      if (!window) continue;
      const distance = use.timeMs < window.from ? window.from - use.timeMs : use.timeMs - window.to;
      if (distance < 0 || distance > nearMs) continue;
      if (!nearest || distance < nearest.distance) nearest = { distance, ticket: v };
    }
    if (nearest) return { verdict: 'unauthorized', reason: 'outside_window', ticket: nearest.ticket, step: 3 };

    // 4.
    return { verdict: 'unauthorized', reason: 'no_ticket', ticket: null, step: 4 };
  }
}

/**
 * The window a valid two-person approval granted: an approved ticket's, or a closed
 * one's up to its closing. Null for anything never properly approved.
 */
function approvedWindow(v: TicketVersion): { from: number; to: number } | null {
  if (v.status !== 'approved' && v.status !== 'closed') return null;
  if (v.approvers.length === 0 || v.approvers.some((a) => samePerson(a, v.requester))) return null;
  const to = v.status === 'closed' ? Math.min(v.notAfterMs, v.updatedAtMs) : v.notAfterMs;
  return to < v.notBeforeMs ? null : { from: v.notBeforeMs, to };
}

export type TicketCheckName = 'identity' | 'status' | 'approvers' | 'two-person rule' | 'window' | 'scope';
export interface TicketCheck {
  check: TicketCheckName;
  pass: boolean;
  detail: string;
}

/**
 * Every check of one ticket version against one use, in the order the verdict applies
 * them. `judge` (the detector's verdict) and `tickets check --explain` both read this.
 */
export function ticketChecks(t: TicketVersion, use: Use): TicketCheck[] {
  const iso = (ms: number) => new Date(ms).toISOString();
  const self = t.approvers.filter((a) => samePerson(a, t.requester));
  return [
    {
      check: 'identity',
      pass: t.identities.includes(use.identity),
      detail: `grants ${t.identities.join(', ')}; the use is ${use.identity}`,
    },
    {
      check: 'status',
      pass: t.status === 'approved',
      detail:
        t.status === 'approved'
          ? 'approved'
          : `${t.status} since ${t.updatedAt}${t.status === 'closed' ? ' (closing ends the window)' : ''}`,
    },
    { check: 'approvers', pass: t.approvers.length > 0, detail: t.approvers.length ? t.approvers.join(', ') : 'no approver' },
    {
      check: 'two-person rule',
      pass: self.length === 0,
      detail: self.length ? `requester ${t.requester} approved their own ticket` : `requester ${t.requester} is not an approver`,
    },
    {
      check: 'window',
      pass: use.timeMs >= t.notBeforeMs && use.timeMs <= t.notAfterMs,
      detail: `${t.notBefore} – ${t.notAfter}; the use is at ${iso(use.timeMs)}`,
    },
    {
      check: 'scope',
      pass: !t.scope || inScope(t.scope, use),
      detail: t.scope
        ? `${JSON.stringify(t.scope)}; the use is in ${JSON.stringify({ account: use.account, org: use.org, cluster: use.cluster })}`
        : 'no scope: every account, org and cluster',
    },
  ];
}

/** Why this ticket version does not cover the use, or null when it does. */
function judge(t: TicketVersion, use: Use): Exclude<UnauthorizedReason, 'no_ticket'> | null {
  const failed = new Set(
    ticketChecks(t, use)
      .filter((c) => !c.pass)
      .map((c) => c.check),
  );
  if (failed.size === 0) return null;
  if (t.status === 'revoked') return 'revoked';
  // Closing a ticket ends its window early.
  if (t.status === 'closed') return 'outside_window';
  if (failed.has('status') || failed.has('approvers') || failed.has('identity')) return 'not_approved';
  if (failed.has('two-person rule')) return 'self_approved';
  if (failed.has('window')) return 'outside_window';
  return 'out_of_scope';
}

function inScope(scope: NonNullable<TicketVersion['scope']>, use: Use): boolean {
  const native = NATIVE_SCOPE[use.source];
  const check = (dimension: 'accounts' | 'orgs' | 'clusters', value: string | null): boolean => {
    const allowed = scope[dimension];
    if (!allowed || allowed.length === 0) return true;
    if (value === null) return dimension !== native;
    return allowed.includes(value);
  };
  return check('accounts', use.account) && check('orgs', use.org) && check('clusters', use.cluster);
}
