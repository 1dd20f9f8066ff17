/**
 * Per-collector counters rendered in the Prometheus text format (version 0.0.4). Collectors
 * report once per unit (page, batch, file chunk) — never per event — so the hot path pays one
 * method call per unit.
 *
 *   glasswatch_collector_events_total{collector="okta"} 1234
 *   glasswatch_collector_events_per_second{collector="okta"} 41.1   (last 60 s)
 *   glasswatch_collector_lag_seconds{collector="okta"} 2.3          (publish time - newest event time, last batch)
 *   glasswatch_collector_last_event_time_seconds{collector="okta"} 1763678400.1
 *   glasswatch_collector_errors_total{collector="okta",stage="receiving"} 2
 *   glasswatch_collector_dead_letters_total{collector="okta"} 0
 *   glasswatch_collector_poison_units_total{collector="okta"} 0     (units with a dead letter; each raised pipeline.poison)
 *   glasswatch_collector_skipped_total / duplicates_total / last_delivery_time_seconds
 *   glasswatch_collector_spool_bytes / spool_records / spool_max_bytes{collector="k8s"}   (receivers with a spool:
 *     bytes and requests accepted, fsynced and not yet acknowledged by Kafka; 503s start at spool_max_bytes)
 */
import type { Stage } from '../../core/errors.js';

/** What one acknowledged unit contributed. */
export interface BatchStats {
  events: number;
  deadLetters?: number;
  skipped?: number;
  /** Records dropped because their id was already delivered (hook + poller overlap, re-reads). */
  duplicates?: number;
  /** Newest event time in the unit, epoch ms; null when the unit had no events. */
  newestEventMs?: number | null;
}

const RATE_WINDOW_S = 60;

class Series {
  events = 0;
  deadLetters = 0;
  poisonUnits = 0;
  skipped = 0;
  duplicates = 0;
  errors = new Map<string, number>();
  lastEventMs: number | null = null;
  lastDeliveryMs: number | null = null;
  lagSeconds: number | null = null;
  /** Per-second event counts of the last RATE_WINDOW_S seconds: [second, count] ring. */
  readonly buckets = new Float64Array(RATE_WINDOW_S * 2);
}

/** What a receiver's spool reports, read at each scrape. */
export interface SpoolGauges {
  bytes: number;
  records: number;
  maxBytes: number;
}

export class CollectorMetrics {
  readonly #series = new Map<string, Series>();
  readonly #spools = new Map<string, () => SpoolGauges>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  #get(collector: string): Series {
    let s = this.#series.get(collector);
    if (!s) {
      s = new Series();
      this.#series.set(collector, s);
    }
    return s;
  }

  /** Registers a collector so its series show (as zeros) before its first batch. */
  register(collector: string): void {
    this.#get(collector);
  }

  /** Serves the spool gauges of `collector`, read from `read` at each scrape (never per event). */
  watchSpool(collector: string, read: () => SpoolGauges): void {
    this.#get(collector);
    this.#spools.set(collector, read);
  }

  /** Call once per acknowledged unit. */
  recordBatch(collector: string, stats: BatchStats): void {
    const s = this.#get(collector);
    const now = this.#now();
    s.events += stats.events;
    s.deadLetters += stats.deadLetters ?? 0;
    s.skipped += stats.skipped ?? 0;
    s.duplicates += stats.duplicates ?? 0;
    s.lastDeliveryMs = now;
    if (stats.newestEventMs != null && Number.isFinite(stats.newestEventMs)) {
      if (s.lastEventMs === null || stats.newestEventMs > s.lastEventMs) s.lastEventMs = stats.newestEventMs;
      s.lagSeconds = Math.max(0, (now - stats.newestEventMs) / 1000);
    }
    const second = Math.floor(now / 1000);
    const slot = (second % RATE_WINDOW_S) * 2;
    if (s.buckets[slot] !== second) {
      s.buckets[slot] = second;
      s.buckets[slot + 1] = 0;
    }
    s.buckets[slot + 1] = (s.buckets[slot + 1] ?? 0) + stats.events;
  }

  /** A unit (object, file chunk, page) that held input which could never be published: dead-lettered, then passed. */
  recordPoison(collector: string, count = 1): void {
    this.#get(collector).poisonUnits += count;
  }

  recordError(collector: string, stage: Stage, count = 1): void {
    const s = this.#get(collector);
    s.errors.set(stage, (s.errors.get(stage) ?? 0) + count);
  }

  /** Events per second over the last 60 s (or since the first batch, if that is more recent). */
  eventsPerSecond(collector: string): number {
    const s = this.#series.get(collector);
    if (!s) return 0;
    const nowSecond = Math.floor(this.#now() / 1000);
    let total = 0;
    let oldest = nowSecond;
    for (let i = 0; i < RATE_WINDOW_S; i++) {
      const second = s.buckets[i * 2] ?? 0;
      if (second > nowSecond - RATE_WINDOW_S) {
        total += s.buckets[i * 2 + 1] ?? 0;
        if (second < oldest) oldest = second;
      }
    }
    return total / Math.max(1, nowSecond - oldest + 1);
  }

  /** Read-only view for tests and the CLI summary. */
  snapshot(collector: string): Readonly<{
    events: number;
    deadLetters: number;
    poisonUnits: number;
    skipped: number;
    duplicates: number;
    errors: Record<string, number>;
    lastEventMs: number | null;
    lastDeliveryMs: number | null;
  }> {
    const s = this.#get(collector);
    return {
      events: s.events,
      deadLetters: s.deadLetters,
      poisonUnits: s.poisonUnits,
      skipped: s.skipped,
      duplicates: s.duplicates,
      errors: Object.fromEntries(s.errors),
      lastEventMs: s.lastEventMs,
      lastDeliveryMs: s.lastDeliveryMs,
    };
  }

  /** The Prometheus text exposition of every registered collector. */
  render(): string {
    const lines: string[] = [];
    const family = (name: string, type: 'counter' | 'gauge', help: string, rows: [string, number | null][]) => {
      lines.push(`# HELP glasswatch_collector_${name} ${help}`, `# TYPE glasswatch_collector_${name} ${type}`);
      for (const [labels, value] of rows) if (value !== null) lines.push(`glasswatch_collector_${name}{${labels}} ${formatNumber(value)}`);
    };
    const all = [...this.#series.entries()].map(([name, s]) => [`collector="${escapeLabel(name)}"`, s, name] as const);
    family(
      'events_total',
      'counter',
      'Events published and acknowledged by the bus.',
      all.map(([l, s]) => [l, s.events]),
    );
    family(
      'events_per_second',
      'gauge',
      'Events published per second over the last 60 s.',
      all.map(([l, , n]) => [l, this.eventsPerSecond(n)]),
    );
    family(
      'lag_seconds',
      'gauge',
      'Publish time minus the newest event time of the last batch.',
      all.map(([l, s]) => [l, s.lagSeconds]),
    );
    family(
      'last_event_time_seconds',
      'gauge',
      'Newest event time published, Unix seconds.',
      all.map(([l, s]) => [l, s.lastEventMs === null ? null : s.lastEventMs / 1000]),
    );
    family(
      'last_delivery_time_seconds',
      'gauge',
      'Time of the last acknowledged unit, Unix seconds.',
      all.map(([l, s]) => [l, s.lastDeliveryMs === null ? null : s.lastDeliveryMs / 1000]),
    );
    family(
      'dead_letters_total',
      'counter',
      'Records published to the dead-letter topic.',
      all.map(([l, s]) => [l, s.deadLetters]),
    );
    family(
      'poison_units_total',
      'counter',
      'Units (objects, file chunks, pages) with input that can never be published: dead-lettered, checkpoint moved on, pipeline.poison raised.',
      all.map(([l, s]) => [l, s.poisonUnits]),
    );
    family(
      'skipped_total',
      'counter',
      'Recognised records that are not audit events (digests, other kinds).',
      all.map(([l, s]) => [l, s.skipped]),
    );
    family(
      'duplicates_total',
      'counter',
      'Records dropped as already delivered.',
      all.map(([l, s]) => [l, s.duplicates]),
    );
    const errorRows: [string, number][] = [];
    for (const [l, s] of all) {
      if (s.errors.size === 0) errorRows.push([`${l},stage="receiving"`, 0]);
      for (const [stage, n] of s.errors) errorRows.push([`${l},stage="${escapeLabel(stage)}"`, n]);
    }
    family('errors_total', 'counter', 'Errors by pipeline stage (receiving, processing, sending).', errorRows);
    if (this.#spools.size > 0) {
      const spools = [...this.#spools].map(([name, read]) => [`collector="${escapeLabel(name)}"`, read()] as const);
      family(
        'spool_bytes',
        'gauge',
        'Bytes accepted and fsynced in the receiver spool, not yet acknowledged by Kafka.',
        spools.map(([l, g]) => [l, g.bytes]),
      );
      family(
        'spool_records',
        'gauge',
        'Requests in the receiver spool not yet acknowledged by Kafka.',
        spools.map(([l, g]) => [l, g.records]),
      );
      family(
        'spool_max_bytes',
        'gauge',
        'Spool budget (spool.maxBytes); at it the receiver answers 503.',
        spools.map(([l, g]) => [l, g.maxBytes]),
      );
    }
    return `${lines.join('\n')}\n`;
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(3);
}
