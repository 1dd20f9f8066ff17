import { hostname } from 'node:os';
import { errorMessage, GlasswatchError, withRetry } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { packageVersion } from '../../core/paths.js';
import type { Store } from '../../core/store/client.js';
import { insertRows } from '../../core/store/writer.js';
import { type Alert, type AlertContext, type CompleteAlert, completeAlert } from './alert.js';
import type { AlertOutput } from './outputs.js';
import { RuleMatchThrottle, routeAccepts, SessionGrouper } from './routing.js';

/** Remembers which alert reached which output, so a replay or a restart never delivers twice. */
export interface DeliveryLedger {
  delivered(output: string, alertId: string): Promise<boolean>;
  record(entry: DeliveryRecord): Promise<void>;
  /** The ids among `alertIds` already delivered to `output`: one lookup for a batch of alerts. */
  deliveredAmong(output: string, alertIds: readonly string[]): Promise<Set<string>>;
  /** Records a batch in one write. */
  recordMany(entries: readonly DeliveryRecord[]): Promise<void>;
}

export interface DeliveryRecord {
  alertId: string;
  output: string;
  status: 'delivered' | 'failed';
  attempts: number;
  at: string;
  messageId: string | null;
  error: string | null;
}

export class MemoryDeliveryLedger implements DeliveryLedger {
  readonly records: DeliveryRecord[] = [];
  readonly #done = new Set<string>();
  async delivered(output: string, alertId: string): Promise<boolean> {
    return this.#done.has(`${output}\u0000${alertId}`);
  }
  async record(entry: DeliveryRecord): Promise<void> {
    this.records.push(entry);
    if (entry.status === 'delivered') this.#done.add(`${entry.output}\u0000${entry.alertId}`);
  }
  async deliveredAmong(output: string, alertIds: readonly string[]): Promise<Set<string>> {
    return new Set(alertIds.filter((id) => this.#done.has(`${output}\u0000${id}`)));
  }
  async recordMany(entries: readonly DeliveryRecord[]): Promise<void> {
    for (const e of entries) await this.record(e);
  }
}

const CACHE_MAX = 100_000;

/** The delivery ledger in the audit store (`alert_deliveries`), shared by every process using that store. */
export class StoreDeliveryLedger implements DeliveryLedger {
  /** Alerts known delivered: only saves lookups, so it is bounded (emptied past CACHE_MAX) for a process that runs for months. */
  readonly #cache = new Set<string>();
  constructor(readonly store: Store) {}

  async delivered(output: string, alertId: string): Promise<boolean> {
    const key = `${output}\u0000${alertId}`;
    if (this.#cache.has(key)) return true;
    const rows = await (
      await this.store.client.query({
        query: "SELECT 1 FROM alert_deliveries WHERE output = {output:String} AND alert_id = {id:String} AND status = 'delivered' LIMIT 1",
        query_params: { output, id: alertId },
        format: 'JSONEachRow',
      })
    ).json();
    if (rows.length > 0) this.#remember(key);
    return rows.length > 0;
  }

  async record(e: DeliveryRecord): Promise<void> {
    await this.recordMany([e]);
  }

  async deliveredAmong(output: string, alertIds: readonly string[]): Promise<Set<string>> {
    const found = new Set(alertIds.filter((id) => this.#cache.has(`${output}\u0000${id}`)));
    const ask = alertIds.filter((id) => !found.has(id));
    if (ask.length === 0) return found;
    const rows = await (
      await this.store.client.query({
        query:
          "SELECT DISTINCT alert_id FROM alert_deliveries WHERE output = {output:String} AND alert_id IN {ids:Array(String)} AND status = 'delivered'",
        query_params: { output, ids: ask },
        format: 'JSONEachRow',
      })
    ).json<{ alert_id: string }>();
    for (const r of rows) {
      found.add(r.alert_id);
      this.#remember(`${output}\u0000${r.alert_id}`);
    }
    return found;
  }

  async recordMany(entries: readonly DeliveryRecord[]): Promise<void> {
    if (entries.length === 0) return;
    await insertRows(
      this.store,
      'alert_deliveries',
      entries.map((e) => ({
        alert_id: e.alertId,
        output: e.output,
        status: e.status,
        attempts: e.attempts,
        at: e.at,
        message_id: e.messageId ?? '',
        error: e.error ?? '',
      })),
    );
    for (const e of entries) if (e.status === 'delivered') this.#remember(`${e.output}\u0000${e.alertId}`);
  }

  #remember(key: string): void {
    if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
    this.#cache.add(key);
  }
}

export interface DispatchResult {
  delivered: number;
  skipped: number;
  failed: number;
}

export interface DispatcherOptions {
  /** Producer, runbooks and rule references every alert is completed with. */
  context?: AlertContext;
  /** rule.match dedup and threshold. */
  throttle?: RuleMatchThrottle;
  /** live: grouped updates are also sent by a timer once their window has passed (replay sends them as later alerts arrive and at close). */
  clock?: 'live' | 'event';
}

/** Counts of alerts an output did not get one by one: filtered out by its routing, held for a grouped update, or throttled. */
export interface RoutingTotals {
  filtered: number;
  grouped: number;
  throttled: number;
  /** Messages sent to human outputs (e-mail, chat): single alerts and grouped updates. */
  messages: Record<string, number>;
}

export function defaultProducer(instance?: string): AlertContext['producer'] {
  return { name: 'glasswatch', version: packageVersion(), instance: instance ?? hostname() };
}

/**
 * Sends each alert to every output once. Retriable failures are retried with backoff;
 * a delivery that still fails is recorded as failed (with the error) and reported,
 * never dropped silently, and is retried on the next dispatch of the same alert.
 */
export class AlertDispatcher {
  readonly totals: DispatchResult = { delivered: 0, skipped: 0, failed: 0 };
  readonly routingTotals: RoutingTotals = { filtered: 0, grouped: 0, throttled: 0, messages: {} };
  readonly context: AlertContext;
  readonly throttle: RuleMatchThrottle;
  readonly #groupers = new Map<AlertOutput, SessionGrouper>();
  readonly #timer: NodeJS.Timeout | null = null;

  constructor(
    readonly outputs: AlertOutput[],
    readonly ledger: DeliveryLedger,
    readonly log: Logger,
    readonly retry: { retries?: number; initialDelayMs?: number } = {},
    options: DispatcherOptions = {},
  ) {
    this.context = options.context ?? { producer: defaultProducer() };
    this.throttle = options.throttle ?? new RuleMatchThrottle();
    for (const o of outputs) {
      const window = o.routing?.groupWindowSeconds ?? 60;
      if (o.sendGroup && window > 0) this.#groupers.set(o, new SessionGrouper(window * 1000));
    }
    if (options.clock === 'live' && this.#groupers.size) {
      this.#timer = setInterval(() => void this.flushDue(Date.now()), 1000);
      this.#timer.unref();
    }
  }

  /** Fills the schema 2.0 fields (producer, severityId, runbook, references, …) in place. */
  complete(alert: Alert): CompleteAlert {
    return completeAlert(alert, this.context);
  }

  async dispatch(alert: Alert): Promise<DispatchResult> {
    const a = this.complete(alert);
    const result: DispatchResult = { delivered: 0, skipped: 0, failed: 0 };
    if (!this.throttle.admit(a)) {
      this.routingTotals.throttled++;
      return result;
    }
    await Promise.all(
      this.outputs.map(async (output) => {
        if (!routeAccepts(output.routing?.filter, a)) {
          this.routingTotals.filtered++;
          return;
        }
        const grouper = this.#groupers.get(output);
        const batch = grouper ? grouper.offer(a) : [a];
        if (batch.length === 0) this.routingTotals.grouped++;
        else await this.#deliver(output, batch, result);
      }),
    );
    this.#count(result);
    return result;
  }

  /** Sends the grouped updates whose window has passed. */
  async flushDue(nowMs: number): Promise<DispatchResult> {
    const result: DispatchResult = { delivered: 0, skipped: 0, failed: 0 };
    for (const [output, g] of this.#groupers) for (const batch of g.due(nowMs)) await this.#deliver(output, batch, result);
    this.#count(result);
    return result;
  }

  #count(result: DispatchResult): void {
    this.totals.delivered += result.delivered;
    this.totals.skipped += result.skipped;
    this.totals.failed += result.failed;
  }

  /** One message: a single alert, or a grouped update of several alerts of one session. */
  async #deliver(output: AlertOutput, all: CompleteAlert[], result: DispatchResult): Promise<void> {
    const alerts: CompleteAlert[] = [];
    for (const a of all) {
      if (await this.ledger.delivered(output.name, a.id)) result.skipped++;
      else alerts.push(a);
    }
    const first = alerts[0];
    if (!first) return;
    let attempts = 0;
    try {
      const messageId = await withRetry(
        async () => {
          attempts++;
          return alerts.length === 1 || !output.sendGroup ? output.send(first) : output.sendGroup(alerts);
        },
        { retries: this.retry.retries ?? 4, initialDelayMs: this.retry.initialDelayMs ?? 250 },
      );
      if (output.sendGroup) this.routingTotals.messages[output.name] = (this.routingTotals.messages[output.name] ?? 0) + 1;
      for (const a of alerts) {
        await this.ledger.record({
          alertId: a.id,
          output: output.name,
          status: 'delivered',
          attempts,
          at: new Date().toISOString(),
          messageId,
          error: null,
        });
        result.delivered++;
      }
    } catch (err) {
      this.log.error('alert delivery failed', {
        output: output.name,
        alertId: first.id,
        alerts: alerts.length,
        attempts,
        error: errorMessage(err),
        code: err instanceof GlasswatchError ? err.code : undefined,
      });
      for (const a of alerts) {
        result.failed++;
        await this.ledger.record({
          alertId: a.id,
          output: output.name,
          status: 'failed',
          attempts,
          at: new Date().toISOString(),
          messageId: null,
          error: errorMessage(err),
        });
      }
    }
  }

  /** Sends every held update first: nothing accepted is dropped at shutdown or at the end of a replay. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    const result: DispatchResult = { delivered: 0, skipped: 0, failed: 0 };
    for (const [output, g] of this.#groupers) for (const batch of g.drain()) await this.#deliver(output, batch, result);
    this.#count(result);
    for (const o of this.outputs) await o.close?.();
  }
}
