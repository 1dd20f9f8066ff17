import type { ServerResponse } from 'node:http';
import type { Bus, BusMessage, Subscription } from '../core/bus/types.js';
import type { TopicsConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { Store } from '../core/store/client.js';
import type { Alert } from '../detectors/alerts/alert.js';
import { alertRow } from '../detectors/detector.js';
import type { CollectorMetrics } from '../ingest/collector/metrics.js';
import { COLLECTOR_DLQ_HEADERS } from '../ingest/collector/publisher.js';
import { sessionsFingerprint, storedRows } from './queries.js';

/** One change pushed to every connected browser and SSE client. */
export type Change =
  | { kind: 'alert'; alert: Record<string, unknown> }
  | { kind: 'sessions' }
  /** The rows behind the alerts pushed so far are in the store: views render again. */
  | { kind: 'stored' }
  | { kind: 'tickets' }
  | { kind: 'triage'; alert_id: string; state: string; actor: string }
  | { kind: 'health' };

/** SSE clients kept at most: each holds a socket. */
const MAX_CLIENTS = 200;

/** Fans changes out to server-sent-event streams; a slow client is dropped rather than buffered without bound. */
export class SseHub {
  readonly #clients = new Set<ServerResponse>();
  readonly #heartbeat: NodeJS.Timeout;
  sent = 0;

  constructor() {
    // A comment line every 15 s keeps proxies from closing an idle stream.
    this.#heartbeat = setInterval(() => this.#write(': keep-alive\n\n'), 15_000);
    this.#heartbeat.unref();
  }

  get clients(): number {
    return this.#clients.size;
  }

  add(res: ServerResponse): boolean {
    if (this.#clients.size >= MAX_CLIENTS) return false;
    this.#clients.add(res);
    res.on('close', () => this.#clients.delete(res));
    return true;
  }

  publish(change: Change): void {
    this.#write(`event: ${change.kind}\ndata: ${JSON.stringify(change)}\n\n`);
  }

  #write(text: string): void {
    for (const res of this.#clients) {
      // More than 1 MiB unread: the client is not keeping up; it reconnects and reloads the view.
      if (res.writableLength > 1 << 20) {
        res.destroy();
        this.#clients.delete(res);
        continue;
      }
      res.write(text);
      this.sent++;
    }
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }
}

interface SourceStats {
  events: number;
  deadLetters: number;
  lastEventMs: number | null;
  lagSeconds: number | null;
  /** [second, count] ring over the last RATE_WINDOW seconds. */
  buckets: Float64Array;
}

const RATE_WINDOW = 10;

export interface HealthSnapshot {
  sources: {
    source: string;
    events: number;
    events_per_second: number;
    last_event: string | null;
    lag_seconds: number | null;
    dead_letters: number;
  }[];
  detector: { events: number; events_per_second: number } | null;
  sse_clients: number;
  /** From an alert's append to the alerts topic to its push to the browsers. */
  alert_push_ms: { p50: number | null; p99: number | null; n: number };
}

function percentiles(values: number[]): { p50: number | null; p99: number | null; n: number } {
  if (values.length === 0) return { p50: null, p99: null, n: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return { p50: at(0.5), p99: at(0.99), n: sorted.length };
}

export interface LiveFeedOptions {
  bus: Bus;
  topics: TopicsConfig;
  store: Store;
  log: Logger;
  hub: SseHub;
  /** Consumer groups of this console instance (read from the end, deleted at stop). */
  groupPrefix: string;
  /** Seconds of event time after which a session without events is closed (detector.sessionIdleSeconds). */
  sessionIdleSeconds: number;
  /** The collectors of this process (`glasswatch start`): their own lag and dead-letter counts. */
  collectorMetrics?: CollectorMetrics;
  /** Events judged so far by this process's detector (`glasswatch start`). */
  detectorEvents?: () => number;
}

/**
 * The console's view of the live pipeline, from the bus topics the pipeline already publishes:
 * alerts (pushed at once, the alert itself in the message), events (per-source rates and lag;
 * a changed open-session fingerprint in the store pushes `sessions`), tickets and dead letters.
 * Read-only: it never commits anything a pipeline stage depends on (its groups are its own).
 */
export class LiveFeed {
  readonly #o: LiveFeedOptions;
  readonly #subs: Subscription[] = [];
  readonly #sources = new Map<string, SourceStats>();
  #newestEventMs: number | null = null;
  #newestSeenAtMs = 0;
  #sessionsDirty = false;
  #fingerprint = '';
  #timer: NodeJS.Timeout | null = null;
  #detectorSamples: [number, number][] = [];
  readonly #pending = new Map<string, { row: Record<string, unknown>; sinceMs: number }>();
  /** Milliseconds from an alert's append to its topic to its push, the last 1,000 (Health shows p50/p99). */
  readonly #pushDelays: number[] = [];
  #pendingCheck: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(o: LiveFeedOptions) {
    this.#o = o;
  }

  /**
   * "Now" for open sessions: the wall clock live; while old events are replayed (the demo), the
   * newest event time seen, advanced by the wall time since. Sessions are closed by event time.
   */
  clockMs(): number {
    const now = Date.now();
    if (this.#newestEventMs === null) return now;
    return Math.min(now, this.#newestEventMs + (now - this.#newestSeenAtMs));
  }

  /** Sessions with an event within the idle timeout of `clockMs()`. */
  openSinceMs(): number {
    return this.clockMs() - this.#o.sessionIdleSeconds * 1000;
  }

  async start(): Promise<void> {
    const { bus, topics, groupPrefix } = this.#o;
    // Only what happens from now on. Asked to start at the end, the in-process bus takes "the end"
    // again at every wake-up until the group's first commit (so it would skip the very messages that
    // woke it): there the console reads from the beginning and skips what was published before it started.
    const memory = bus.kind === 'memory';
    const startedMs = Date.now();
    const sub = (topic: string, handler: (m: BusMessage) => void) =>
      bus.subscribe({
        topics: [topic],
        groupId: `${groupPrefix}-${topic}`,
        fromBeginning: memory,
        maxAttempts: 1,
        handler: async (m) => {
          if (memory && m.timestamp < startedMs) return;
          handler(m);
        },
      });
    this.#subs.push(await sub(topics.alerts, (m) => this.#onAlert(m)));
    this.#subs.push(await sub(topics.events, (m) => this.#onEvent(m)));
    this.#subs.push(await sub(topics.tickets, () => this.#o.hub.publish({ kind: 'tickets' })));
    this.#subs.push(await sub(topics.deadLetters, (m) => this.#onDeadLetter(m)));
    // Session rows change only in the store: look at most every 500 ms, and only when events arrived.
    this.#timer = setInterval(() => void this.#checkSessions(), 500);
    this.#timer.unref();
  }

  #onAlert(m: BusMessage): void {
    let alert: Alert;
    try {
      alert = JSON.parse(m.value.toString('utf8')) as Alert;
    } catch {
      return;
    }
    if (!alert || typeof alert.id !== 'string' || typeof alert.type !== 'string') return;
    const row = { ...alertRow(alert), triage_state: 'open' };
    // At once: the message carries the alert, and console.js shows it before the store has its row.
    this.#o.hub.publish({ kind: 'alert', alert: row });
    this.#pushDelays.push(Date.now() - m.timestamp);
    if (this.#pushDelays.length > 1000) this.#pushDelays.shift();
    this.#pending.set(alert.id, { row, sinceMs: Date.now() });
    this.#sessionsDirty = true;
    if (!this.#pendingCheck) this.#pendingCheck = setTimeout(() => void this.#releaseStored(), 0);
  }

  /**
   * An alert can reach its topic a moment before the detector's rows (alert, session) are in the
   * store: once both are stored (looked up every 25 ms, one query for every alert waiting; 3 s at
   * most) `stored` tells the browsers to render their view again from the store.
   */
  async #releaseStored(): Promise<void> {
    try {
      const waiting = [...this.#pending.values()];
      if (waiting.length === 0) return;
      const stored = await storedRows(
        this.#o.store,
        waiting.map((w) => String(w.row.alert_id)),
        waiting.map((w) => String(w.row.session_id)).filter((id) => id !== ''),
      );
      const now = Date.now();
      let released = 0;
      for (const w of waiting) {
        const ready =
          stored.alerts.has(String(w.row.alert_id)) && (w.row.session_id === '' || stored.sessions.has(String(w.row.session_id)));
        if (!ready && now - w.sinceMs < 3000) continue;
        this.#pending.delete(String(w.row.alert_id));
        released++;
      }
      if (released > 0) this.#o.hub.publish({ kind: 'stored' });
    } catch (err) {
      this.#o.log.warn('console: looking up stored alerts failed', { error: (err as Error).message });
    } finally {
      this.#pendingCheck = this.#pending.size > 0 && !this.#stopped ? setTimeout(() => void this.#releaseStored(), 25) : null;
    }
  }

  #stats(source: string): SourceStats {
    let s = this.#sources.get(source);
    if (!s) {
      s = { events: 0, deadLetters: 0, lastEventMs: null, lagSeconds: null, buckets: new Float64Array(RATE_WINDOW * 2) };
      this.#sources.set(source, s);
    }
    return s;
  }

  #onEvent(m: BusMessage): void {
    let e: { source?: unknown; time?: unknown };
    try {
      e = JSON.parse(m.value.toString('utf8')) as typeof e;
    } catch {
      return;
    }
    const source = typeof e.source === 'string' ? e.source : 'unknown';
    const timeMs = typeof e.time === 'string' ? Date.parse(e.time) : Number.NaN;
    const s = this.#stats(source);
    const now = Date.now();
    s.events++;
    if (Number.isFinite(timeMs)) {
      if (s.lastEventMs === null || timeMs > s.lastEventMs) s.lastEventMs = timeMs;
      s.lagSeconds = Math.max(0, (now - timeMs) / 1000);
      if (this.#newestEventMs === null || timeMs > this.#newestEventMs) {
        this.#newestEventMs = timeMs;
        this.#newestSeenAtMs = now;
      }
    }
    const second = Math.floor(now / 1000);
    const slot = (second % RATE_WINDOW) * 2;
    if (s.buckets[slot] !== second) {
      s.buckets[slot] = second;
      s.buckets[slot + 1] = 0;
    }
    s.buckets[slot + 1] = (s.buckets[slot + 1] ?? 0) + 1;
    this.#sessionsDirty = true;
  }

  #onDeadLetter(m: BusMessage): void {
    const source = m.headers[COLLECTOR_DLQ_HEADERS.source] || 'unknown';
    this.#stats(source).deadLetters++;
    this.#o.hub.publish({ kind: 'health' });
  }

  async #checkSessions(): Promise<void> {
    this.#sampleDetector();
    if (!this.#sessionsDirty || this.#o.hub.clients === 0) return;
    this.#sessionsDirty = false;
    try {
      const f = await sessionsFingerprint(this.#o.store, this.openSinceMs());
      if (f !== this.#fingerprint) {
        this.#fingerprint = f;
        this.#o.hub.publish({ kind: 'sessions' });
      }
    } catch (err) {
      this.#sessionsDirty = true;
      this.#o.log.warn('console: session check failed', { error: (err as Error).message });
    }
  }

  #sampleDetector(): void {
    const read = this.#o.detectorEvents;
    if (!read) return;
    this.#detectorSamples.push([Date.now(), read()]);
    if (this.#detectorSamples.length > 21) this.#detectorSamples.shift();
  }

  health(): HealthSnapshot {
    const nowSecond = Math.floor(Date.now() / 1000);
    const metrics = this.#o.collectorMetrics;
    const sources = [...this.#sources.entries()].sort(([a], [b]) => a.localeCompare(b));
    const samples = this.#detectorSamples;
    const first = samples[0];
    const last = samples[samples.length - 1];
    return {
      sources: sources.map(([source, s]) => {
        let n = 0;
        for (let i = 0; i < RATE_WINDOW; i++) if ((s.buckets[i * 2] ?? 0) > nowSecond - RATE_WINDOW) n += s.buckets[i * 2 + 1] ?? 0;
        const collector = metrics?.snapshot(source);
        return {
          source,
          events: s.events,
          events_per_second: Math.round((n / RATE_WINDOW) * 10) / 10,
          last_event: s.lastEventMs === null ? null : new Date(s.lastEventMs).toISOString(),
          lag_seconds: s.lagSeconds === null ? null : Math.round(s.lagSeconds * 10) / 10,
          dead_letters: Math.max(s.deadLetters, collector?.deadLetters ?? 0),
        };
      }),
      detector:
        this.#o.detectorEvents && first && last
          ? {
              events: last[1],
              events_per_second: last[0] > first[0] ? Math.round(((last[1] - first[1]) / ((last[0] - first[0]) / 1000)) * 10) / 10 : 0,
            }
          : null,
      sse_clients: this.#o.hub.clients,
      alert_push_ms: percentiles(this.#pushDelays),
    };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#pendingCheck) clearTimeout(this.#pendingCheck);
    for (const s of this.#subs.splice(0)) await s.stop();
    const groups = [this.#o.topics.alerts, this.#o.topics.events, this.#o.topics.tickets, this.#o.topics.deadLetters].map(
      (t) => `${this.#o.groupPrefix}-${t}`,
    );
    await this.#o.bus.deleteGroups?.(groups).catch(() => undefined);
  }
}
