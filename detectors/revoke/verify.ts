import type { Fields } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import type { BreakGlassSession } from '../sessions.js';
import type { RevocationRecord } from './dispatcher.js';
import type { RevocationTarget } from './types.js';

type TargetKind = RevocationTarget['kind'];

/**
 * How long after a target answered `revoked` a successful event by the session's handles is
 * still forgiven (the change propagating), per target. AWS IAM is eventually consistent: a
 * deny policy or a deactivated key can take up to a minute to be enforced everywhere. Okta
 * clears sessions at once, but its System Log and in-flight requests lag seconds. RBAC binding
 * deletion reaches the API server's authorizer through its watch cache within seconds. A webhook
 * receiver acts on its own schedule: half a minute.
 */
export const DEFAULT_ALLOWANCE_SECONDS: Readonly<Record<TargetKind, number>> = { aws: 60, okta: 10, k8s: 10, webhook: 30 };
/** How long the handles must stay quiet (event time) before a revocation counts as verified. */
export const DEFAULT_VERIFY_WINDOW_MINUTES = 60;

export interface VerifyOptions {
  /** false: no handle is watched and no revocation is verified (`revocation.verify: false`). */
  enabled: boolean;
  allowanceMs: Readonly<Record<TargetKind, number>>;
  windowMs: number;
}

/** `revocation.verify`: `false`, or `{ allowanceSeconds: { aws, okta, k8s, webhook }, verifyWindowMinutes }`. */
export function verifyOptionsOf(revocation: Fields): VerifyOptions {
  if (revocation.value.verify === false) return { enabled: false, allowanceMs: DEFAULT_ALLOWANCE_SECONDS, windowMs: 0 };
  const v = revocation.section('verify').only(['allowanceSeconds', 'verifyWindowMinutes']);
  const a = v.section('allowanceSeconds').only(['aws', 'okta', 'k8s', 'webhook']);
  const allowanceMs = {} as Record<TargetKind, number>;
  for (const k of ['aws', 'okta', 'k8s', 'webhook'] as const)
    allowanceMs[k] = a.number(k, DEFAULT_ALLOWANCE_SECONDS[k], { min: 0, max: 3600 }) * 1000;
  const windowMs = v.number('verifyWindowMinutes', DEFAULT_VERIFY_WINDOW_MINUTES, { min: 1, max: 7 * 1440 }) * 60_000;
  const longest = Math.max(...Object.values(allowanceMs));
  // A window inside the allowance could never see an ineffective revocation: it would only ever say "verified".
  if (windowMs <= longest)
    v.fail('verifyWindowMinutes', `must be longer than the longest allowanceSeconds (${longest / 1000} s), or nothing is ever checked`);
  return { enabled: true, allowanceMs, windowMs };
}

/**
 * The handles of an event that a revocation cuts: AWS access key id, console/role session
 * (principal@creationDate) and role session name; Okta externalSessionId and user id; the
 * Kubernetes username. Kubernetes groups are not handles of their own (another member of a
 * group is not the revoked session), but the revoked user's requests count whatever group they claim.
 */
export function eventHandles(e: AuditEvent): string[] {
  const out: string[] = [];
  const sk = e.actor.sessionKey;
  if (e.source === 'cloudtrail') {
    const ui = (e.raw as { userIdentity?: { accessKeyId?: unknown; arn?: unknown; type?: unknown } }).userIdentity;
    const key = typeof ui?.accessKeyId === 'string' && ui.accessKeyId ? ui.accessKeyId : null;
    if (key) out.push(`aws:key:${key}`);
    // Without a session context the session key is the access key itself: one handle, not two.
    if (sk && sk !== key) out.push(`aws:session:${sk}`);
    // arn:aws:sts::123:assumed-role/Role/session-name: the role session name, which a new AssumeRole
    // after the revocation may reuse (kept as the whole ARN: account and role scope it).
    if (ui?.type === 'AssumedRole' && typeof ui.arn === 'string' && ui.arn.includes(':assumed-role/'))
      out.push(`aws:role-session:${ui.arn}`);
  } else if (e.source === 'okta') {
    if (sk) out.push(`okta:session:${sk}`);
    if (e.actor.id) out.push(`okta:user:${e.actor.id}`);
  } else if (e.source === 'k8s') {
    const user = (e.raw as { user?: { username?: unknown } }).user?.username;
    if (typeof user === 'string' && user) out.push(`k8s:user:${user}`);
  }
  return out;
}

/** Okta events a revoked session still writes that are not use: its own end. */
const OKTA_NOT_USE = new Set(['user.session.end', 'user.session.clear']);
/** Kubernetes requests every authenticated user may make (system:authenticated): self reviews. */
const K8S_SELF_REVIEWS = new Set(['selfsubjectaccessreviews', 'selfsubjectrulesreviews', 'selfsubjectreviews']);

/**
 * Whether a successful event is use a working revocation must have stopped. Not: AWS
 * `sts:GetCallerIdentity` (no policy can deny it), an Okta session's own end, and the Kubernetes
 * requests left to every authenticated user once the bindings are gone (discovery and other
 * non-resource URLs, self reviews).
 */
export function countsAsUse(e: AuditEvent): boolean {
  if (e.outcome !== 'success') return false;
  if (e.source === 'cloudtrail') return e.action !== 'sts.amazonaws.com:GetCallerIdentity';
  if (e.source === 'okta') return !OKTA_NOT_USE.has(e.action);
  const resource = (e.raw as { objectRef?: { resource?: unknown } }).objectRef?.resource;
  return typeof resource === 'string' && resource !== '' && !K8S_SELF_REVIEWS.has(resource);
}

/** A session's handles: its session keys and the handles of the event that turned it unauthorized. */
export function sessionHandles(session: BreakGlassSession, trigger: AuditEvent): string[] {
  const out = new Set(eventHandles(trigger));
  const prefix = trigger.source === 'cloudtrail' ? 'aws' : trigger.source;
  for (const k of session.keys) {
    const sk = k.slice(k.indexOf('\u0000') + 1);
    if (sk.startsWith('ip:')) continue;
    // CloudTrail session keys are principal@creationDate (console and role sessions) or an access key id.
    out.add(prefix === 'aws' && !sk.includes('@') ? `aws:key:${sk}` : `${prefix}:session:${sk}`);
  }
  return [...out];
}

const NONE: ReadonlyArray<{ watch: RevocationWatch; handle: string }> = Object.freeze([]);

/** `aws:key:AKIA…` → `AKIA…` (source and kind never hold a colon; values may). */
function handleValue(handle: string): string {
  return handle.slice(handle.indexOf(':', handle.indexOf(':') + 1) + 1);
}

/** One revocation whose session's handles are being watched in the events that follow. */
export interface RevocationWatch {
  revocationId: string;
  alertId: string;
  sessionId: string;
  identity: string;
  target: TargetKind;
  /** The events partition that owns the session (the changelog keeps the watch there). */
  partition: number;
  handles: string[];
  /**
   * Event time the revocation took effect from: replay, the triggering event's time
   * (deterministic); live, the target's answer. Null while the outcome is not known yet (live:
   * the revocation worker has not answered).
   */
  revokedAtMs: number | null;
  /** When the revocation was ordered: the window is counted from here until the outcome is known. */
  orderedMs: number;
  /** The outcome as the ledger recorded it; null until known. */
  record: RevocationRecord | null;
  /** The last event by a watched handle, whatever its outcome (a refused attempt shows the cut held). */
  lastEventId: string | null;
  lastEventTime: string | null;
}

/** What the watch of one revocation concluded. */
export interface Verification {
  verified: boolean;
  /** Event time of the proving event (false) or the end of the quiet window (true), ISO. */
  at: string;
  eventId: string;
  detail: string;
}

/**
 * The watched handles of the revocations of one detector, indexed for a lookup per event.
 * Bounded: a watch leaves when it concludes, or when its window ends by event time.
 */
export class RevocationWatches {
  readonly #byId = new Map<string, RevocationWatch>();
  readonly #byHandle = new Map<string, Set<string>>();
  /**
   * Per handle kind (`aws:key`, `aws:session`, `aws:role-session`, `okta:session`, `okta:user`,
   * `k8s:user`), how many handles carry each value: an event none of whose values is watched under
   * the kind `eventHandles` would give it is skipped without building its handles, and a kind with
   * no watch costs no lookup.
   */
  readonly #values = new Map<string, Map<string, number>>();
  /** No window ends before this (a lower bound): most batches skip the scan of `ended`. */
  #nextEndMs = Number.POSITIVE_INFINITY;

  constructor(readonly options: VerifyOptions) {}

  get size(): number {
    return this.#byId.size;
  }

  all(): RevocationWatch[] {
    return [...this.#byId.values()];
  }

  get(revocationId: string): RevocationWatch | undefined {
    return this.#byId.get(revocationId);
  }

  add(w: RevocationWatch): void {
    this.delete(w.revocationId);
    this.#byId.set(w.revocationId, w);
    this.#nextEndMs = Math.min(this.#nextEndMs, this.startMs(w) + this.options.windowMs);
    for (const h of w.handles) {
      let ids = this.#byHandle.get(h);
      if (!ids) {
        ids = new Set();
        this.#byHandle.set(h, ids);
        const v = handleValue(h);
        const values = this.#kindValues(h);
        values.set(v, (values.get(v) ?? 0) + 1);
      }
      ids.add(w.revocationId);
    }
  }

  delete(revocationId: string): void {
    const w = this.#byId.get(revocationId);
    if (!w) return;
    this.#byId.delete(revocationId);
    for (const h of w.handles) {
      const ids = this.#byHandle.get(h);
      ids?.delete(revocationId);
      if (ids?.size === 0) {
        this.#byHandle.delete(h);
        const v = handleValue(h);
        const values = this.#kindValues(h);
        const n = (values.get(v) ?? 1) - 1;
        if (n > 0) values.set(v, n);
        else values.delete(v);
      }
    }
  }

  /** The watches one of whose handles the event carries, with the handle (first match). */
  touched(e: AuditEvent): ReadonlyArray<{ watch: RevocationWatch; handle: string }> {
    if (this.#byId.size === 0 || !this.#mayTouch(e)) return NONE;
    const out: Array<{ watch: RevocationWatch; handle: string }> = [];
    const seen = new Set<string>();
    for (const h of eventHandles(e)) {
      const ids = this.#byHandle.get(h);
      if (!ids) continue;
      for (const id of ids) {
        if (seen.has(id)) continue;
        seen.add(id);
        out.push({ watch: this.#byId.get(id)!, handle: h });
      }
    }
    return out;
  }

  #kindValues(handle: string): Map<string, number> {
    const kind = handle.slice(0, handle.indexOf(':', handle.indexOf(':') + 1));
    let values = this.#values.get(kind);
    if (!values) {
      values = new Map();
      this.#values.set(kind, values);
    }
    return values;
  }

  /** Whether a value is watched under a handle kind (no lookup when the kind has no watch). */
  #watched(kind: string, value: unknown): boolean {
    const values = this.#values.get(kind);
    return values !== undefined && values.size > 0 && typeof value === 'string' && value !== '' && values.has(value);
  }

  /**
   * The per-event check, without allocating: is any handle `eventHandles(e)` would give watched?
   * The same handles, kind by kind, so it never says no where `touched` would find a watch.
   */
  #mayTouch(e: AuditEvent): boolean {
    const sk = e.actor.sessionKey;
    if (e.source === 'cloudtrail') {
      const ui = (e.raw as { userIdentity?: { accessKeyId?: unknown; arn?: unknown; type?: unknown } }).userIdentity;
      const key = ui?.accessKeyId;
      if (this.#watched('aws:key', key)) return true;
      if (sk !== null && sk !== key && this.#watched('aws:session', sk)) return true;
      return (
        ui?.type === 'AssumedRole' &&
        typeof ui.arn === 'string' &&
        ui.arn.includes(':assumed-role/') &&
        this.#watched('aws:role-session', ui.arn)
      );
    }
    if (e.source === 'okta') return this.#watched('okta:session', sk) || this.#watched('okta:user', e.actor.id);
    return this.#watched('k8s:user', (e.raw as { user?: { username?: unknown } }).user?.username);
  }

  allowanceMs(w: RevocationWatch): number {
    return this.options.allowanceMs[w.target] ?? this.options.allowanceMs.webhook;
  }

  /** Start of the window: the revocation's effect, or its order while the outcome is unknown. */
  startMs(w: RevocationWatch): number {
    return w.revokedAtMs ?? w.orderedMs;
  }

  /** True when a successful event at `timeMs` by a handle proves the revoked session still works. */
  proves(w: RevocationWatch, timeMs: number): boolean {
    if (w.revokedAtMs === null) return false;
    return timeMs > w.revokedAtMs + this.allowanceMs(w) && timeMs <= w.revokedAtMs + this.options.windowMs;
  }

  /** Whether some window may have ended at `watermarkMs` (cheap, synchronous: checked per batch). */
  mayHaveEnded(watermarkMs: number): boolean {
    return this.#byId.size > 0 && watermarkMs > this.#nextEndMs;
  }

  /** Watches whose quiet window ended at `watermarkMs` (the partition's latest event time). */
  ended(partition: number, watermarkMs: number): RevocationWatch[] {
    const out: RevocationWatch[] = [];
    if (watermarkMs <= this.#nextEndMs) return out;
    let next = Number.POSITIVE_INFINITY;
    for (const w of this.#byId.values()) {
      const end = this.startMs(w) + this.options.windowMs;
      if (w.partition === partition && watermarkMs > end) out.push(w);
      // Other partitions' ends, and these if the caller keeps them (outcome learnt late), stay bounds.
      next = Math.min(next, end);
    }
    this.#nextEndMs = next;
    return out;
  }

  /** Forgets the watches of partitions this member lost (the changelog has them for the new owner). */
  dropPartitions(lost: ReadonlySet<number>): void {
    for (const w of [...this.#byId.values()]) if (lost.has(w.partition)) this.delete(w.revocationId);
  }
}
