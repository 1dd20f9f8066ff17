/**
 * Differential check of the ClickHouse SQL compiler against the streaming evaluator.
 *
 *   node --import tsx scripts/sql-equivalence.ts <datasets-dir>
 *
 * Loads `<datasets>/sigma-rules`, replays every event file of `<datasets>/{cloudtrail,okta,
 * k8s-audit}` into a temporary chDB store, then for every rule compares the (source, id)
 * pairs the evaluator matches with the rows its compiled SQL returns. Both sides read the
 * same deduplicated rows (latestEventsSql): hand-made samples reuse ids such as "1", and
 * the store keeps one version per (source, id), so comparing against every replayed
 * record would count events the store no longer has. Exit status 1 on any difference.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replayFiles } from '../core/pipeline/replay.js';
import { StoreSink } from '../core/pipeline/sinks.js';
import { migrate, openStore } from '../core/store/index.js';
import { loadRules, SigmaEngine, type SourceName } from '../rules/engine/index.js';
import { compileRuleSql, latestEventsSql, Params, QUERY_SETTINGS, SOURCE_LIST } from '../rules/sql/index.js';

/**
 * Values for the two placeholder rules of the subset (`rules-placeholder/`). Any value
 * works for equivalence; these read like a real deployment's.
 */
const PLACEHOLDERS: Record<string, string[]> = {
  legtimate_identifiers: ['@example.com'],
  Legitimate_Countries: ['US', 'DE'],
  Legitimate_IP_Ranges: ['10.0.0.1'],
};

const PROVENANCE = /^(LICENSE|COPYING|README)|^SOURCES\.ndjson$|\.meta\.ndjson$/i;

function eventFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...eventFiles(p));
    else if (!PROVENANCE.test(name)) out.push(p);
  }
  return out;
}

async function main(): Promise<number> {
  const datasets = process.argv[2];
  if (!datasets) {
    process.stderr.write('usage: node --import tsx scripts/sql-equivalence.ts <datasets-dir>\n');
    return 2;
  }
  const loaded = loadRules([join(datasets, 'sigma-rules')], { placeholders: PLACEHOLDERS });
  for (const r of loaded.rejected) process.stdout.write(`rejected [${r.code}] ${r.message}\n`);
  const files = ['cloudtrail', 'okta', 'k8s-audit'].flatMap((d) => eventFiles(join(datasets, d)));

  const dir = mkdtempSync(join(tmpdir(), 'gw-sql-eq-'));
  const store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  try {
    // The samples date back to 2017: keep them (the default 400-day TTL would drop them on insert).
    await migrate(store, { retentionDays: 20_000 });
    const summary = await replayFiles({ paths: files, stages: [new StoreSink(store)] });
    process.stdout.write(
      `replayed ${files.length} files: ${JSON.stringify(summary.events)} events, ${summary.deadLetterTotal} not normalized\n`,
    );

    const params = new Params();
    const query = `SELECT source, id, raw FROM (${latestEventsSql(params, {}, SOURCE_LIST, 'raw')}) ${QUERY_SETTINGS}`;
    const rows = await (await store.client.query({ query, query_params: params.values, format: 'JSONEachRow' })).json<{
      source: SourceName;
      id: string;
      raw: string;
    }>();
    process.stdout.write(`stored events after deduplication on (source, id): ${rows.length}\n`);

    const engine = new SigmaEngine(loaded);
    const expected = new Map<string, Set<string>>(loaded.rules.map((r) => [r.key, new Set()]));
    for (const row of rows) {
      for (const m of engine.match(row.source, JSON.parse(row.raw))) expected.get(m.rule)?.add(`${row.source}/${row.id}`);
    }

    let identical = 0;
    const started = Date.now();
    for (const rule of loaded.rules) {
      const want = expected.get(rule.key) ?? new Set<string>();
      let got: Set<string>;
      let error = '';
      try {
        const { sql, params: qp } = compileRuleSql(rule);
        const res = await (await store.client.query({ query: sql, query_params: qp, format: 'JSONEachRow' })).json<{
          source: string;
          id: string;
        }>();
        got = new Set(res.map((r) => `${r.source}/${r.id}`));
      } catch (e) {
        got = new Set();
        error = (e as Error).message.split('\n')[0] ?? '';
      }
      const missing = [...want].filter((k) => !got.has(k));
      const extra = [...got].filter((k) => !want.has(k));
      const same = !error && missing.length === 0 && extra.length === 0;
      if (same) identical++;
      const file = rule.file.slice(rule.file.indexOf('sigma-rules'));
      process.stdout.write(
        `${same ? 'same' : 'DIFF'}  evaluator ${String(want.size).padStart(4)}  sql ${String(got.size).padStart(4)}  ${file}\n`,
      );
      if (error) process.stdout.write(`      error: ${error}\n`);
      if (missing.length) process.stdout.write(`      only evaluator: ${missing.join(', ')}\n`);
      if (extra.length) process.stdout.write(`      only sql: ${extra.join(', ')}\n`);
    }
    process.stdout.write(`sql queries: ${loaded.rules.length} in ${Date.now() - started} ms\n`);
    process.stdout.write(`equivalence: ${identical}/${loaded.rules.length} rules identical\n`);
    return identical === loaded.rules.length && loaded.rejected.length === 0 ? 0 : 1;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
