/**
 * Where validation statuses go: rows of `log_validation` (migration 8), one per check of one log
 * object. The `pending` row carries the event ids the object held (the link reports follow from a
 * session's events to the objects they came from); later rows may omit them.
 */
import { errorMessage } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import type { Store } from '../../../core/store/client.js';
import { insertRows } from '../../../core/store/writer.js';

export type ObjectStatus = 'pending' | 'valid' | 'missing_digest' | 'mismatch';

export interface LogValidationRow {
  bucket: string;
  objectKey: string;
  status: ObjectStatus;
  /** The digest that listed (or should have listed) the object; '' while pending. */
  digestKey: string;
  reason: string;
  eventIds: string[];
  /** ISO time of the check. */
  checkedAt: string;
}

export interface LogValidationRecorder {
  /** Never rejects: a failed write is logged and counted, validation goes on. */
  record(rows: readonly LogValidationRow[]): Promise<void>;
  /**
   * Objects whose latest status is still `pending` (oldest first, at most `limit`), so a restarted
   * collector still settles them: valid when their digest comes, missing_digest when it never does.
   */
  pending?(limit: number, bucket: string | null): Promise<{ bucket: string; objectKey: string; checkedAt: string }[]>;
}

// Latest status per object; on a tie the graver one (as reports/log-validation.ts reads it).
const PENDING = `
SELECT bucket, object_key, first_seen
FROM (
  SELECT bucket, object_key,
    argMax(status, (checked_at, multiIf(status = 'mismatch', 3, status = 'missing_digest', 2, status = 'valid', 1, 0))) AS status,
    min(checked_at) AS first_seen
  FROM log_validation
  WHERE source = 'cloudtrail' AND ({bucket:String} = '' OR bucket = {bucket:String})
  GROUP BY bucket, object_key
)
WHERE status = 'pending'
ORDER BY first_seen, object_key
LIMIT {limit:UInt32}`;

/** Writes rows to the store's `log_validation` table (batched by the caller: one insert per call). */
export class StoreValidationRecorder implements LogValidationRecorder {
  /** A promise while the store is still being opened (`start` runs collectors before the store is ready). */
  readonly #store: Store | Promise<Store>;
  readonly #log: Logger | null;
  /** Rows that could not be written (the store down beyond the insert retries). */
  failed = 0;

  constructor(store: Store | Promise<Store>, logger?: Logger) {
    this.#store = store;
    this.#log = logger ?? null;
  }

  /** The store, waited for at most 30 s: a store that never opens fails these writes, never stalls the collector. */
  #ready(): Promise<Store> {
    const store = this.#store;
    if (!(store instanceof Promise)) return Promise.resolve(store);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the store did not open within 30 s')), 30_000);
      timer.unref();
    });
    return Promise.race([store, timeout]).finally(() => clearTimeout(timer));
  }

  async pending(limit: number, bucket: string | null = null): Promise<{ bucket: string; objectKey: string; checkedAt: string }[]> {
    const result = await (await this.#ready()).client.query({
      query: PENDING,
      query_params: { limit, bucket: bucket ?? '' },
      format: 'JSONEachRow',
    });
    const rows = await result.json<{ bucket: string; object_key: string; first_seen: string }>();
    // DateTime64 comes back as "YYYY-MM-DD hh:mm:ss.sss" in UTC.
    return rows.map((r) => ({ bucket: r.bucket, objectKey: r.object_key, checkedAt: `${r.first_seen.replace(' ', 'T')}Z` }));
  }

  async record(rows: readonly LogValidationRow[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await insertRows(
        await this.#ready(),
        'log_validation',
        rows.map((r) => ({
          source: 'cloudtrail',
          bucket: r.bucket,
          object_key: r.objectKey,
          status: r.status,
          digest_key: r.digestKey,
          reason: r.reason,
          event_ids: r.eventIds,
          checked_at: r.checkedAt,
        })),
      );
    } catch (err) {
      this.failed += rows.length;
      this.#log?.error('cloudtrail log validation: statuses not stored', { rows: rows.length, error: errorMessage(err) });
    }
  }
}

/** No store given to the collector: statuses are not kept (alerts and metrics still are); the status says so. */
export const discardingRecorder: LogValidationRecorder = { record: async () => {} };
