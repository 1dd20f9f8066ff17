/**
 * The detector's Prometheus metrics (text format 0.0.4), served on the same `/metrics` as the
 * collectors' (`glasswatch start`) or on its own listener (`glasswatch detect`):
 *
 *   glasswatch_detector_events_total 1234                           (events judged)
 *   glasswatch_detector_break_glass_events_total 56                 (events of a break-glass identity)
 *   glasswatch_detector_open_sessions{identity="aws-root",verdict="unauthorized"} 1
 *   glasswatch_detector_alerts_total{type="breakglass.unauthorized",severity="critical"} 3
 *   glasswatch_detector_detection_latency_seconds_bucket{le="1"} 12  (event time → alert raised)
 *   glasswatch_detector_revocations_total{target="okta",outcome="revoked"} 2   (this process's revocation workers)
 *   glasswatch_detector_revocation_watches 3                        (revoked sessions whose handles are watched)
 *   glasswatch_detector_revocation_verifications_total{result="ineffective"} 1
 *   glasswatch_detector_ticket_requests_waiting{identity="aws-root"} 1
 *   glasswatch_detector_ticket_request_oldest_wait_seconds{identity="aws-root"} 420
 *
 * Nothing here runs per event: alerts are counted as they are raised (a few per session), and
 * everything else is read from the detector's own state when Prometheus scrapes. Label values are
 * bounded: identities come from the config, types, severities, verdicts, targets and outcomes
 * are enumerations.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../core/log.js';
import { type RunningServer, sendText, startServer } from '../ingest/collector/http.js';
import { ALERT_TYPES, type Alert, type Severity } from './alerts/alert.js';
import type { BreakGlassSession, SessionVerdict } from './sessions.js';

/** Seconds from the triggering event to the alert: sub-second live, minutes when a source delivers late. */
export const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600] as const;
const SEVERITIES: readonly Severity[] = ['informational', 'low', 'medium', 'high', 'critical'];
const VERDICTS: readonly SessionVerdict[] = ['authorized', 'unauthorized'];
/** Alerts about a use of an identity: their `time` is the triggering event's. */
const EVENT_ALERTS = new Set([
  'breakglass.unauthorized',
  'breakglass.authorized',
  'breakglass.attempt',
  'breakglass.activity',
  'rule.match',
]);
/** Forgotten sessions are pruned from the watch list once it holds this many (no unbounded growth without scrapes). */
const PRUNE_AT = 4096;

/** What the metrics read at scrape time; each part may be attached after the metrics exist. */
export interface DetectorMetricSources {
  /** Event counters of the detector. */
  totals?: () => { events: number; breakGlassEvents: number };
  /** An open session by id (the detector's session tracker), undefined once it closed or moved away. */
  openSession?: (id: string) => BreakGlassSession | undefined;
  /** Requests waiting for approval per identity. */
  waiting?: () => ReadonlyMap<string, { count: number; oldestSeconds: number }>;
  /** Revocation outcome counts of this process's revocation workers. */
  revocations?: () => Iterable<{ target: string; totals: Readonly<Record<string, number>> }>;
  /** Revocations verified from later logs: watches open now, and concluded ones by result. */
  verification?: () => { watching: number; verified: number; ineffective: number; unknown: number };
}

export class DetectorMetrics {
  readonly #identities: readonly string[];
  readonly #now: () => number;
  #sources: DetectorMetricSources = {};
  readonly #alerts = new Map<string, number>();
  readonly #latency = new Float64Array(LATENCY_BUCKETS.length + 1);
  #latencySum = 0;
  #latencyCount = 0;
  /** Sessions that had a verdict here (or were taken over at start): the ones that may still be open. */
  readonly #watched = new Set<string>();

  /** `identities`: the identity ids of the config (the only identity label values). */
  constructor(identities: readonly string[], now: () => number = Date.now) {
    this.#identities = identities;
    this.#now = now;
  }

  attach(sources: DetectorMetricSources): void {
    this.#sources = { ...this.#sources, ...sources };
  }

  /** Sessions continued from before a restart, so they count as open before their next alert. */
  watchSessions(ids: Iterable<string>): void {
    for (const id of ids) this.#watched.add(id);
  }

  /** Counts one raised alert (called from the detector's alert hook: a few per session, never per event). */
  observeAlert(a: Alert): void {
    const key = `${a.type}\u0000${a.severity}`;
    this.#alerts.set(key, (this.#alerts.get(key) ?? 0) + 1);
    if (a.sessionId && (a.type === 'breakglass.authorized' || a.type === 'breakglass.unauthorized')) {
      this.#watched.add(a.sessionId);
      if (this.#watched.size >= PRUNE_AT) this.#prune();
    }
    if (!EVENT_ALERTS.has(a.type)) return;
    const seconds = (Date.parse(a.detectedAt) - Date.parse(a.time)) / 1000;
    if (!Number.isFinite(seconds)) return;
    const s = Math.max(0, seconds);
    let i = 0;
    while (i < LATENCY_BUCKETS.length && s > LATENCY_BUCKETS[i]!) i++;
    this.#latency[i]!++;
    this.#latencySum += s;
    this.#latencyCount++;
  }

  #prune(): void {
    const open = this.#sources.openSession;
    if (!open) return;
    for (const id of this.#watched) if (!open(id)) this.#watched.delete(id);
  }

  /** Open sessions by identity and verdict, read from the tracker now. */
  openSessions(): Map<string, Record<SessionVerdict, number>> {
    const out = new Map<string, Record<SessionVerdict, number>>();
    for (const id of this.#identities) out.set(id, { authorized: 0, unauthorized: 0 });
    const open = this.#sources.openSession;
    if (!open) return out;
    for (const sid of this.#watched) {
      const s = open(sid);
      if (!s) {
        this.#watched.delete(sid);
        continue;
      }
      const counts = out.get(s.identity);
      if (counts) counts[s.verdict]++;
    }
    return out;
  }

  render(): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string) =>
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    const totals = this.#sources.totals?.();
    metric('glasswatch_detector_events_total', 'counter', 'Events the detector judged.');
    lines.push(`glasswatch_detector_events_total ${totals?.events ?? 0}`);
    metric('glasswatch_detector_break_glass_events_total', 'counter', 'Events of a break-glass identity.');
    lines.push(`glasswatch_detector_break_glass_events_total ${totals?.breakGlassEvents ?? 0}`);

    metric('glasswatch_detector_open_sessions', 'gauge', 'Open break-glass sessions by identity and verdict.');
    for (const [identity, counts] of this.openSessions())
      for (const verdict of VERDICTS)
        lines.push(`glasswatch_detector_open_sessions{identity="${label(identity)}",verdict="${verdict}"} ${counts[verdict]}`);

    metric('glasswatch_detector_alerts_total', 'counter', 'Alerts raised by this detector, by type and severity.');
    for (const type of ALERT_TYPES)
      for (const severity of SEVERITIES) {
        const n = this.#alerts.get(`${type}\u0000${severity}`);
        if (n) lines.push(`glasswatch_detector_alerts_total{type="${type}",severity="${severity}"} ${n}`);
      }

    metric('glasswatch_detector_detection_latency_seconds', 'histogram', 'From the triggering event time to the alert being raised.');
    let cumulative = 0;
    LATENCY_BUCKETS.forEach((le, i) => {
      cumulative += this.#latency[i]!;
      lines.push(`glasswatch_detector_detection_latency_seconds_bucket{le="${le}"} ${cumulative}`);
    });
    lines.push(`glasswatch_detector_detection_latency_seconds_bucket{le="+Inf"} ${this.#latencyCount}`);
    lines.push(`glasswatch_detector_detection_latency_seconds_sum ${round(this.#latencySum)}`);
    lines.push(`glasswatch_detector_detection_latency_seconds_count ${this.#latencyCount}`);

    metric(
      'glasswatch_detector_revocations_total',
      'counter',
      "Revocation attempts finished by this process's revocation workers, by target and outcome.",
    );
    for (const w of this.#sources.revocations?.() ?? [])
      for (const [outcome, n] of Object.entries(w.totals))
        lines.push(`glasswatch_detector_revocations_total{target="${label(w.target)}",outcome="${label(outcome)}"} ${n}`);

    const v = this.#sources.verification?.();
    if (v) {
      metric('glasswatch_detector_revocation_watches', 'gauge', 'Revoked sessions whose handles are watched in later events now.');
      lines.push(`glasswatch_detector_revocation_watches ${v.watching}`);
      metric(
        'glasswatch_detector_revocation_verifications_total',
        'counter',
        'Revocations verified from later logs: verified (quiet for the window), ineffective, unknown (no outcome in time).',
      );
      for (const result of ['verified', 'ineffective', 'unknown'] as const)
        lines.push(`glasswatch_detector_revocation_verifications_total{result="${result}"} ${v[result]}`);
    }

    const waiting = this.#sources.waiting?.() ?? new Map();
    metric('glasswatch_detector_ticket_requests_waiting', 'gauge', 'Ticket requests waiting for approval, by identity.');
    for (const id of this.#identities)
      lines.push(`glasswatch_detector_ticket_requests_waiting{identity="${label(id)}"} ${waiting.get(id)?.count ?? 0}`);
    metric(
      'glasswatch_detector_ticket_request_oldest_wait_seconds',
      'gauge',
      'How long the oldest waiting request of the identity has waited.',
    );
    for (const id of this.#identities)
      lines.push(
        `glasswatch_detector_ticket_request_oldest_wait_seconds{identity="${label(id)}"} ${round(waiting.get(id)?.oldestSeconds ?? 0)}`,
      );
    metric('glasswatch_detector_scrape_time_seconds', 'gauge', 'When these values were read (Unix time).');
    lines.push(`glasswatch_detector_scrape_time_seconds ${round(this.#now() / 1000)}`);
    return `${lines.join('\n')}\n`;
  }
}

/** Prometheus label value escaping: backslash, double quote, line feed. */
function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/** Anything that renders Prometheus text: the collector and detector metrics of one process. */
export interface MetricsText {
  render(): string;
}

/**
 * One `/metrics` + `/healthz` listener for every metrics set of the process (collectors first,
 * the detector added once it runs). 127.0.0.1 by default, like the collectors' listener.
 */
export class ProcessMetrics {
  readonly #sets: MetricsText[] = [];
  add(set: MetricsText): void {
    this.#sets.push(set);
  }
  with(set: MetricsText): this {
    this.add(set);
    return this;
  }
  render(): string {
    return this.#sets.map((s) => s.render()).join('');
  }
  handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics')
      sendText(res, 200, this.render(), { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    else if (req.method === 'GET' && path === '/healthz') sendText(res, 200, 'ok\n');
    else sendText(res, 404, 'not found\n');
  }
  listen(options: { host?: string; port: number; logger?: Logger }): Promise<RunningServer> {
    return startServer({ ...options, handler: (req, res) => this.handle(req, res) });
  }
}
