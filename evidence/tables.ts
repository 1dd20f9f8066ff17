/**
 * The evidence tables: every row inserted into one of them is an audit-chain record, and
 * `glasswatch audit verify` checks every row they hold against the chain. Adding a table here
 * (with its key) is all it takes to put it under the chain.
 *
 * - `key`: the table's ORDER BY key, i.e. what ReplacingMergeTree collapses rows by.
 * - `version`: the ReplacingMergeTree version column (the row readers see is the highest), or null
 *   when the table has none (identical re-inserts only).
 * - `time`: the row's own time, which `audit verify --from/--to` selects rows by.
 */
export interface EvidenceTable {
  table: string;
  key: readonly string[];
  version: string | null;
  time: string;
}

export const EVIDENCE_TABLES: readonly EvidenceTable[] = [
  { table: 'sessions', key: ['session_id'], version: 'version', time: 'start' },
  { table: 'alerts', key: ['alert_id'], version: null, time: 'time' },
  { table: 'tickets', key: ['ticket_id', 'updated_at'], version: 'received_at', time: 'updated_at' },
  { table: 'revocations', key: ['revocation_id'], version: 'completed_at', time: 'requested_at' },
  { table: 'alert_deliveries', key: ['output', 'alert_id'], version: 'at', time: 'at' },
  { table: 'report_deliveries', key: ['delivery_id'], version: 'at', time: 'at' },
  { table: 'alert_triage', key: ['alert_id', 'at', 'triage_id'], version: null, time: 'at' },
  { table: 'confirmations', key: ['confirmation_id', 'state', 'at'], version: null, time: 'at' },
];

const byName = new Map(EVIDENCE_TABLES.map((t) => [t.table, t]));

export function evidenceTable(table: string): EvidenceTable | undefined {
  return byName.get(table);
}
