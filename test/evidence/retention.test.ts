import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { insertRows, migrate, openStore, type Store } from '../../core/store/index.js';
import { AuditChain } from '../../evidence/chain.js';
import { loadEvidenceKeys } from '../../evidence/keys.js';
import { verifyAudit } from '../../evidence/verify.js';

/**
 * ClickHouse purges rows past a table's TTL (store.evidenceRetentionDays) in background merges:
 * verify must tell that purge from a deletion. A row past its horizon may be gone; a row within it
 * may not. The oldest chain records expire too once the horizon was chained (kind `retention`).
 */
const dir = mkdtempSync(join(tmpdir(), 'gw-chain-retention-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function alert(id: string, time: string): Record<string, unknown> {
  return { alert_id: id, type: 'breakglass.unauthorized', severity: 'critical', event_ids: [], time, detected_at: time, summary: id };
}

async function mutate(store: Store, query: string): Promise<void> {
  await store.client.command({ query, clickhouse_settings: { mutations_sync: '2' } });
}

describe('audit verify and retention', () => {
  it('accepts a row purged past its horizon, fails one deleted within it, and a chain whose expired head was recorded', async () => {
    const store = openStore({ kind: 'chdb', path: join(dir, 'store') });
    try {
      await migrate(store, { retentionDays: 30, evidenceRetentionDays: 365 });
      const keys = await loadEvidenceKeys({ store });
      const chain = await AuditChain.open(store, { writer: 'detect@r', keys, checkpointEvery: 2 });
      store.evidence = chain;
      await insertRows(store, 'alerts', [alert('old', '2026-01-10T00:00:00Z')]);
      await insertRows(store, 'alerts', [alert('recent', '2026-11-20T00:00:00Z')]);
      await insertRows(store, 'alerts', [alert('newest', '2026-11-21T00:00:00Z')]);
      await chain.checkpoint();
      const now = Date.parse('2026-11-30T00:00:00Z');
      expect((await verifyAudit(store, { nowMs: now })).findings).toEqual([]);

      // A year and a bit later, `old` is past the 365-day horizon: its purge is not a finding.
      await mutate(store, "ALTER TABLE alerts DELETE WHERE alert_id = 'old'");
      const later = Date.parse('2027-01-20T00:00:00Z');
      const purged = await verifyAudit(store, { nowMs: later });
      expect(purged.findings).toEqual([]);
      expect(purged.warnings.join('\n')).toMatch(/1 chained row\(s\) are past their table's retention horizon/);
      // The same deletion judged today, within the horizon, is one.
      expect((await verifyAudit(store, { nowMs: now })).findings).toEqual([
        expect.objectContaining({ table: 'alerts', key: '["old"]', problem: expect.stringMatching(/deleted/) }),
      ]);
      // `recent` deleted inside its horizon is a deletion, whenever it is judged.
      await mutate(store, "ALTER TABLE alerts DELETE WHERE alert_id = 'recent'");
      expect((await verifyAudit(store, { nowMs: later })).findings).toEqual([
        expect.objectContaining({ table: 'alerts', key: '["recent"]', problem: expect.stringMatching(/deleted/) }),
      ]);
      await insertRows({ ...store, evidence: null } as Store, 'alerts', [alert('recent', '2026-11-20T00:00:00Z')]);

      // The chain's first records gone without a recorded horizon: a gap, a finding.
      await mutate(store, "ALTER TABLE audit_log DELETE WHERE writer = 'detect@r' AND seq = 1");
      const cut = await verifyAudit(store, { nowMs: later });
      expect(cut.findings).toContainEqual(
        expect.objectContaining({ writer: 'detect@r', seq: 1, problem: 'records 1..1 are missing from the chain' }),
      );
      // With the horizon chained (reports/retention.ts records it), the expired head is a note.
      await chain.append([{ kind: 'retention', table: '', key: 'raw<2026-10-31;evidence<2026-01-20', content: '{}' }]);
      const kept = await verifyAudit(store, { nowMs: later });
      expect(kept.findings).toEqual([]);
      expect(kept.warnings.join('\n')).toMatch(
        /detect@r: records 1\.\.1 expired by retention \(audit_log keeps 365 days\); checked from 2/,
      );
    } finally {
      await store.close();
    }
  });
});
