/**
 * A chain writer the journal tests kill -9 (test/evidence/journal.test.ts): it stores alerts through
 * a StoreWriter with its chain journaled (drained only hourly, so nothing reaches audit_log before
 * the kill), prints `stored <head seq>` and waits to be killed.
 *
 *   node --import tsx test/evidence/journal-writer.ts STORE WRITER COUNT
 */
import { migrate, openStore, StoreWriter } from '../../core/store/index.js';
import { AuditChain } from '../../evidence/chain.js';
import { journalDirOf } from '../../evidence/journal.js';
import { loadEvidenceKeys } from '../../evidence/keys.js';

const [path, writer, count] = process.argv.slice(2);
const store = openStore({ kind: 'chdb', path: path! });
await migrate(store);
const keys = await loadEvidenceKeys({ store });
const chain = await AuditChain.open(store, {
  writer: writer!,
  keys,
  journal: { dir: journalDirOf(store)!, drainMs: 3_600_000, drainRecords: 1e9 },
});
store.evidence = chain;
const rows = new StoreWriter(store);
for (let i = 0; i < Number(count); i++)
  rows.add('alerts', {
    alert_id: `${writer}-${i}`,
    type: 'breakglass.unauthorized',
    severity: 'critical',
    identity: 'aws-breakglass',
    source: 'cloudtrail',
    event_ids: [`e-${i}`],
    session_id: `s-${writer}-${i}`,
    time: '2026-11-20T22:00:00.000Z',
    detected_at: '2026-11-20T22:00:01.000Z',
    summary: `alert ${i} of ${writer}`,
  });
await rows.flush();
process.stdout.write(`stored ${chain.head.seq}\n`);
setInterval(() => {}, 60_000);
