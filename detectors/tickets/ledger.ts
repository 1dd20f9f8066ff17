import type { Source } from '../../core/event.js';
import { samePerson, type TicketVersion } from './ticket.js';

export const UNAUTHORIZED_REASONS = ['no_ticket', 'outside_window', 'self_approved', 'not_approved', 'revoked', 'out_of_scope'] as const;
export type UnauthorizedReason = (typeof UNAUTHORIZED_REASONS)[number];

export type Coverage =
  | { verdict: 'authorized'; reason: null; ticket: TicketVersion }
  | { verdict: 'unauthorized'; reason: UnauthorizedReason; ticket: TicketVersion | null };

/** One use of a break-glass identity, as the ledger needs to judge it. */
export interface Use {
  identity: string;
  source: Source;
  timeMs: number;
  account: string | null;
  org: string | null;
  cluster: string | null;
}

/**
 * When several tickets list the identity and none covers the use, the one that came
 * closest to covering it explains the verdict: an approved, two-person ticket whose
 * window has passed says more than a ticket still waiting for approval.
 */
const CLOSENESS: Record<Exclude<UnauthorizedReason, 'no_ticket'>, number> = {
  not_approved: 1,
  revoked: 2,
  self_approved: 3,
  outside_window: 4,
  out_of_scope: 5,
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
   * Judges one use. `graceMs` lets an approval that arrives after the event (up to
   * that long) still cover it; a revocation arriving in the grace period does not
   * reach back before its own time.
   */
  evaluate(use: Use, graceMs = 0): Coverage {
    const ids = this.#byIdentity.get(use.identity);
    let best: { reason: Exclude<UnauthorizedReason, 'no_ticket'>; ticket: TicketVersion } | null = null;
    if (ids) {
      for (const id of [...ids].sort()) {
        const candidates: TicketVersion[] = [];
        const atUse = this.versionAt(id, use.timeMs);
        if (atUse) candidates.push(atUse);
        if (graceMs > 0 && atUse?.status !== 'approved') {
          for (const v of this.#versions.get(id) ?? []) {
            if (v.updatedAtMs > use.timeMs && v.updatedAtMs <= use.timeMs + graceMs && v.status === 'approved') candidates.push(v);
          }
        }
        for (const v of candidates) {
          if (!v.identities.includes(use.identity)) continue;
          const reason = judge(v, use);
          if (reason === null) return { verdict: 'authorized', reason: null, ticket: v };
          if (!best || CLOSENESS[reason] > CLOSENESS[best.reason]) best = { reason, ticket: v };
        }
      }
    }
    return best
      ? { verdict: 'unauthorized', reason: best.reason, ticket: best.ticket }
      : { verdict: 'unauthorized', reason: 'no_ticket', ticket: null };
  }
}

/** Why this ticket version does not cover the use, or null when it does. */
function judge(t: TicketVersion, use: Use): Exclude<UnauthorizedReason, 'no_ticket'> | null {
  if (t.status === 'revoked') return 'revoked';
  // Closing a ticket ends its window early.
  if (t.status === 'closed') return 'outside_window';
  if (t.status !== 'approved') return 'not_approved';
  if (t.approvers.length === 0) return 'not_approved';
  if (t.approvers.some((a) => samePerson(a, t.requester))) return 'self_approved';
  if (use.timeMs < t.notBeforeMs || use.timeMs > t.notAfterMs) return 'outside_window';
  if (t.scope && !inScope(t.scope, use)) return 'out_of_scope';
  return null;
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
