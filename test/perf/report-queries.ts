/**
 * Where a report's time goes: every store query a report runs, with its wall time, over a store
 * kept by `BENCH_STORE=<folder> npm run bench:reports` (to study one query at a time).
 *
 *   BENCH_STORE=<folder> npm run bench:report-queries -- [report ...]
 *
 * Queries a report runs together (Promise.all) overlap: each time is from its start to its rows.
 */
import { openStore } from '../../core/store/index.js';
import { buildReport } from '../../reports/registry.js';
import { REPORT_NAMES } from '../../reports/types.js';
import { BASE } from './reports-fixture.js';

const path = process.env.BENCH_STORE;
if (!path) {
  console.error('set BENCH_STORE to a store kept by `BENCH_STORE=<folder> npm run bench:reports`');
  process.exit(64);
}
const store = openStore({ kind: 'chdb', path });
const names = process.argv.length > 2 ? process.argv.slice(2) : [...REPORT_NAMES];
const period = { fromMs: BASE + 30 * 86_400_000, toMs: BASE + 60 * 86_400_000 };

// Every query goes through client.query: time each one, named by its first SQL comment or words.
const timed: { name: string; ms: number }[] = [];
const query = store.client.query.bind(store.client);
store.client.query = (async (params: Parameters<typeof query>[0]) => {
  const t0 = performance.now();
  const result = await query(params);
  const text = params.query.trim();
  const name = (text.startsWith('--') ? text.split('\n')[0]!.slice(3) : text.replace(/\s+/g, ' ')).slice(0, 70);
  timed.push({ name, ms: performance.now() - t0 });
  return result;
}) as typeof query;

try {
  for (const name of names) {
    for (let round = 0; round < 3; round++) {
      timed.length = 0;
      const t0 = performance.now();
      await buildReport(name, { store, period });
      const total = performance.now() - t0;
      if (round < 2) continue; // the first rounds warm the caches, as bench:reports' median does
      console.log(`${name}: ${total.toFixed(0)} ms`);
      for (const q of timed) console.log(`  ${q.ms.toFixed(0).padStart(6)} ms  ${q.name}`);
    }
  }
} finally {
  await store.close();
}
