/**
 * The CloudTrail log-file validation status of the objects some events came from (table
 * `log_validation`, written by ingest/cloudtrail/validation/): what a report states beside the
 * sessions built from those events.
 *
 * An object's status is its latest check (`pending` until its digest is read, then `valid`,
 * `missing_digest` or `mismatch`; a digest delivered late can still turn `missing_digest` into
 * `valid`). Events with no row (EventBridge delivery, validation off, events older than the
 * feature) are absent from the map: "not validated" is never reported as valid.
 */
import { GlasswatchError } from '../core/errors.js';
import type { Store } from '../core/store/client.js';

export type LogValidationStatus = 'valid' | 'missing_digest' | 'mismatch' | 'pending';

export interface EventLogValidation {
  objectKey: string;
  status: LogValidationStatus;
}

const STATUSES = new Set<string>(['valid', 'missing_digest', 'mismatch', 'pending']);

/**
 * Ids per query. A server takes query parameters in the URL (ClickHouse's http_max_uri_size is
 * 1 MiB): 5,000 event ids stay well inside it. The embedded engine has no such limit, and every
 * query scans the table's id lists once, so it takes 50,000 (a 16,667-session report: 3 queries, not 24).
 */
const CHUNK = { chdb: 50_000, clickhouse: 5000 } as const;

// Status per object = the row with the latest check; on a tie the graver status wins (mismatch over the rest).
const QUERY = `
SELECT event_id, object_key, status
FROM (
  SELECT DISTINCT event_id, bucket, object_key
  FROM log_validation
  ARRAY JOIN event_ids AS event_id
  WHERE source = 'cloudtrail' AND event_id IN {ids:Array(String)}
) AS linked
INNER JOIN (
  SELECT bucket, object_key,
    argMax(status, (checked_at, multiIf(status = 'mismatch', 3, status = 'missing_digest', 2, status = 'valid', 1, 0))) AS status
  FROM log_validation
  WHERE source = 'cloudtrail'
  GROUP BY bucket, object_key
) AS latest USING (bucket, object_key)
ORDER BY event_id, object_key`;

export async function logValidationForEvents(store: Store, eventIds: string[]): Promise<Map<string, EventLogValidation>> {
  const out = new Map<string, EventLogValidation>();
  const ids = [...new Set(eventIds)];
  if (ids.length === 0) return out;
  const chunk = CHUNK[store.config.kind];
  for (let i = 0; i < ids.length; i += chunk) {
    let rows: { event_id: string; object_key: string; status: string }[];
    try {
      // A store that validates no CloudTrail log (EventBridge delivery, validation off) is asked once.
      if (i === 0 && !(await validatesAny(store))) return out;
      const result = await store.client.query({ query: QUERY, query_params: { ids: ids.slice(i, i + chunk) }, format: 'JSONEachRow' });
      rows = await result.json();
    } catch (cause) {
      throw new GlasswatchError(
        'BG_REPORT_LOG_VALIDATION',
        `reading CloudTrail log validation from ${store.describe} failed: ${(cause as Error).message}`,
        {
          stage: 'processing',
          retriable: true,
          cause,
          hint: 'Run `glasswatch store migrate` (migration 8 creates log_validation) and check that the store is reachable.',
        },
      );
    }
    for (const r of rows) {
      // An event in two objects (a re-delivered file) keeps the first object by key order; a status we do not know fails closed.
      if (out.has(r.event_id)) continue;
      out.set(r.event_id, { objectKey: r.object_key, status: STATUSES.has(r.status) ? (r.status as LogValidationStatus) : 'mismatch' });
    }
  }
  return out;
}

async function validatesAny(store: Store): Promise<boolean> {
  const result = await store.client.query({
    query: "SELECT 1 FROM log_validation WHERE source = 'cloudtrail' LIMIT 1",
    format: 'JSONEachRow',
  });
  return (await result.json()).length > 0;
}
