import { ALERT_TYPES, type Alert, type AlertType, type CompleteAlert, SEVERITY_RANK, type Severity } from './alert.js';

/** Per-output filters (`minSeverity`, `types`, `identities`), like falcosidekick's minimumpriority. */
export interface RouteFilter {
  minSeverity?: Severity;
  types?: readonly AlertType[];
  /** Identity ids; alerts without an identity (rule.match, pipeline.*) pass only when this is unset. */
  identities?: readonly string[];
}

export function routeAccepts(f: RouteFilter | undefined, a: Alert): boolean {
  if (!f) return true;
  if (f.minSeverity && SEVERITY_RANK[a.severity] < SEVERITY_RANK[f.minSeverity]) return false;
  if (f.types && !f.types.includes(a.type)) return false;
  if (f.identities && !(a.identity && f.identities.includes(a.identity))) return false;
  return true;
}

export function isAlertType(v: string): v is AlertType {
  return (ALERT_TYPES as readonly string[]).includes(v);
}

/** Sent at once whatever the window: the SOC must act on these now. */
const URGENT: ReadonlySet<AlertType> = new Set([
  'breakglass.unauthorized',
  'breakglass.revocation',
  'breakglass.revocation_ineffective',
  'breakglass.linked_session',
  'breakglass.attempt',
]);

interface SessionGroup {
  lastSentMs: number;
  pending: CompleteAlert[];
}

/**
 * Groups a session's alerts for human outputs (e-mail, chat): the session's first alert and
 * urgent ones go at once, the rest in one update per window listing what happened since.
 * Time is the alert's `detectedAt`, so a replay groups exactly as live did.
 */
export class SessionGrouper {
  readonly #groups = new Map<string, SessionGroup>();
  constructor(readonly windowMs: number) {}

  /** The alerts to send now (empty: held for the next update). */
  offer(a: CompleteAlert): CompleteAlert[] {
    if (!a.sessionId) return [a];
    const t = Date.parse(a.detectedAt);
    const g = this.#groups.get(a.sessionId);
    if (!g) {
      this.#groups.set(a.sessionId, { lastSentMs: t, pending: [] });
      return [a];
    }
    if (URGENT.has(a.type)) return [a];
    // Offered again (its message handled again after a failure): held once.
    if (g.pending.some((p) => p.id === a.id)) return [];
    if (t - g.lastSentMs >= this.windowMs) {
      const batch = [...g.pending, a];
      g.pending = [];
      g.lastSentMs = t;
      return batch;
    }
    g.pending.push(a);
    return [];
  }

  /** Updates whose window has passed at `nowMs` (live timer). */
  due(nowMs: number): CompleteAlert[][] {
    const out: CompleteAlert[][] = [];
    for (const g of this.#groups.values()) {
      if (g.pending.length && nowMs - g.lastSentMs >= this.windowMs) {
        out.push(g.pending);
        g.pending = [];
        g.lastSentMs = nowMs;
      }
    }
    return out;
  }

  /** Everything still held (shutdown, end of a replay): nothing accepted is dropped. */
  drain(): CompleteAlert[][] {
    const out: CompleteAlert[][] = [];
    for (const g of this.#groups.values()) if (g.pending.length) out.push(g.pending.splice(0));
    return out;
  }

  get held(): number {
    let n = 0;
    for (const g of this.#groups.values()) n += g.pending.length;
    return n;
  }
}

export interface ThrottleSettings {
  /** After a delivered rule.match, the same rule and principal stay quiet this long. 0 = off. */
  dedupSeconds: number;
  /** Matches of the same rule and principal needed (within dedupSeconds, else an hour) before one alert. */
  threshold: number;
}

/** Panther-style dedup and threshold for `rule.match` alerts; other types always pass. */
export class RuleMatchThrottle {
  readonly #state = new Map<string, { firstMs: number; count: number; quietUntilMs: number }>();
  suppressed = 0;
  constructor(
    readonly global: ThrottleSettings = { dedupSeconds: 0, threshold: 1 },
    readonly perRule: ReadonlyMap<string, ThrottleSettings> = new Map(),
  ) {}

  admit(a: Alert): boolean {
    if (a.type !== 'rule.match') return true;
    const s = (a.ruleId && this.perRule.get(a.ruleId)) || this.global;
    if (s.dedupSeconds <= 0 && s.threshold <= 1) return true;
    const t = Date.parse(a.detectedAt);
    const key = `${a.ruleId ?? ''}\u0000${a.principal ?? ''}`;
    const windowMs = (s.dedupSeconds > 0 ? s.dedupSeconds : 3600) * 1000;
    let st = this.#state.get(key);
    if (!st || t - st.firstMs > windowMs) {
      st = { firstMs: t, count: 0, quietUntilMs: st?.quietUntilMs ?? 0 };
      this.#state.set(key, st);
    }
    st.count++;
    if (t < st.quietUntilMs || st.count < s.threshold) {
      this.suppressed++;
      return false;
    }
    st.quietUntilMs = t + s.dedupSeconds * 1000;
    st.count = 0;
    st.firstMs = t;
    if (this.#state.size > 50_000) this.#state.delete(this.#state.keys().next().value as string);
    return true;
  }
}
