import { errorMessage, GlasswatchError, withRetry } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Store } from '../../core/store/client.js';
import { insertRows } from '../../core/store/writer.js';
import type { Alert } from './alert.js';
import type { AlertOutput } from './outputs.js';

/** Remembers which alert reached which output, so a replay or a restart never delivers twice. */
export interface DeliveryLedger {
  delivered(output: string, alertId: string): Promise<boolean>;
  record(entry: DeliveryRecord): Promise<void>;
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
}

/** The delivery ledger in the audit store (`alert_deliveries`), shared by every process using that store. */
export class StoreDeliveryLedger implements DeliveryLedger {
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
    if (rows.length > 0) this.#cache.add(key);
    return rows.length > 0;
  }

  async record(e: DeliveryRecord): Promise<void> {
    await insertRows(this.store, 'alert_deliveries', [
      {
        alert_id: e.alertId,
        output: e.output,
        status: e.status,
        attempts: e.attempts,
        at: e.at,
        message_id: e.messageId ?? '',
        error: e.error ?? '',
      },
    ]);
    if (e.status === 'delivered') this.#cache.add(`${e.output}\u0000${e.alertId}`);
  }
}

export interface DispatchResult {
  delivered: number;
  skipped: number;
  failed: number;
}

/**
 * Sends each alert to every output once. Retriable failures are retried with backoff;
 * a delivery that still fails is recorded as failed (with the error) and reported,
 * never dropped silently, and is retried on the next dispatch of the same alert.
 */
export class AlertDispatcher {
  readonly totals: DispatchResult = { delivered: 0, skipped: 0, failed: 0 };

  constructor(
    readonly outputs: AlertOutput[],
    readonly ledger: DeliveryLedger,
    readonly log: Logger,
    readonly retry: { retries?: number; initialDelayMs?: number } = {},
  ) {}

  async dispatch(alert: Alert): Promise<DispatchResult> {
    const result: DispatchResult = { delivered: 0, skipped: 0, failed: 0 };
    await Promise.all(
      this.outputs.map(async (output) => {
        if (await this.ledger.delivered(output.name, alert.id)) {
          result.skipped++;
          return;
        }
        let attempts = 0;
        try {
          const messageId = await withRetry(
            async () => {
              attempts++;
              return output.send(alert);
            },
            { retries: this.retry.retries ?? 4, initialDelayMs: this.retry.initialDelayMs ?? 250 },
          );
          await this.ledger.record({
            alertId: alert.id,
            output: output.name,
            status: 'delivered',
            attempts,
            at: new Date().toISOString(),
            messageId,
            error: null,
          });
          result.delivered++;
        } catch (err) {
          result.failed++;
          this.log.error('alert delivery failed', {
            output: output.name,
            alertId: alert.id,
            attempts,
            error: errorMessage(err),
            code: err instanceof GlasswatchError ? err.code : undefined,
          });
          await this.ledger.record({
            alertId: alert.id,
            output: output.name,
            status: 'failed',
            attempts,
            at: new Date().toISOString(),
            messageId: null,
            error: errorMessage(err),
          });
        }
      }),
    );
    this.totals.delivered += result.delivered;
    this.totals.skipped += result.skipped;
    this.totals.failed += result.failed;
    return result;
  }

  async close(): Promise<void> {
    for (const o of this.outputs) await o.close?.();
  }
}
