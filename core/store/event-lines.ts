import { Readable } from 'node:stream';
import { GlasswatchError, withRetry } from '../errors.js';
import type { Store } from './client.js';

/**
 * Settings of an `events_intake` insert: the same parsing `insertRows` asks for (an object or array
 * given for a String column is stored as its exact JSON text), and fields the intake table does not
 * name are ignored rather than refused.
 */
const INTAKE_SETTINGS = {
  date_time_input_format: 'best_effort',
  input_format_json_read_objects_as_strings: 1,
  input_format_json_read_arrays_as_strings: 1,
  input_format_skip_unknown_fields: 1,
  input_format_json_defaults_for_missing_elements_in_named_tuple: 1,
} as const;

/**
 * Whether a bus message value can go to the engine as one JSON line untouched: an object on one
 * line. Our publisher writes `JSON.stringify(event)`, which never contains a raw line break; a value
 * that does (another producer) takes the slow path, where it is parsed and re-serialized or dead-lettered.
 */
export function isEventLine(value: Buffer): boolean {
  return (
    value.length > 1 && value[0] === 0x7b && value[value.length - 1] === 0x7d && value.indexOf(0x0a) === -1 && value.indexOf(0x0d) === -1
  );
}

/**
 * Inserts event JSON lines (bus message values, unparsed) into `events` through `events_intake`
 * (migration 11). One INSERT for the batch; the same SQL on chDB and a ClickHouse server.
 * Throws a GlasswatchError; `retriable` only for a server (an embedded engine error does not heal).
 */
export async function insertEventLines(store: Store, lines: readonly Buffer[], retries = 4): Promise<void> {
  if (lines.length === 0) return;
  const parts: Buffer[] = [];
  const nl = Buffer.from('\n');
  for (const l of lines) parts.push(l, nl);
  const body = Buffer.concat(parts);
  await withRetry(
    async () => {
      try {
        const result = await store.client.exec({
          query: 'INSERT INTO events_intake FORMAT JSONEachRow',
          values: Readable.from([body]),
          clickhouse_settings: INTAKE_SETTINGS,
        });
        // An HTTP connection goes back to the pool only once its (empty) response was read.
        for await (const _ of result.stream) void _;
      } catch (cause) {
        throw new GlasswatchError(
          'BG_STORE_INSERT',
          `insert of ${lines.length} events into events (via events_intake) failed on ${store.describe}: ${(cause as Error).message}`,
          { stage: 'storing', cause, retriable: store.config.kind === 'clickhouse' },
        );
      }
    },
    { retries },
  );
}
