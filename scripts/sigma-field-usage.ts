/**
 * Which event fields the SigmaHQ rules for our sources use, to choose the store's materialized columns.
 *
 *   node --import tsx scripts/sigma-field-usage.ts [datasets-dir]     (default ../shared/datasets)
 *
 * Counts, per source (cloudtrail, okta, k8s), the rules whose detection names a field, and how many
 * of those rules test it with a plain positive equality (what a materialized column can prefilter).
 * Rules come from `<datasets>/sigma-rules` (the aws/okta/kubernetes subset), routed as the engine routes them.
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { plainEquality } from '../rules/engine/compile.js';
import { loadRules } from '../rules/engine/index.js';
import type { DetectionIR, ItemIR } from '../rules/engine/ir.js';
import { ruleSources } from '../rules/sql/compile.js';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const datasets = resolve(process.argv[2] ?? join(root, '../shared/datasets'));
const { rules } = loadRules([join(datasets, 'sigma-rules')]);

function items(det: DetectionIR): ItemIR[] {
  return det.kind === 'item' ? [det] : det.items.flatMap(items);
}

const usage = new Map<string, { rules: number; equality: number }>();
const perSource = new Map<string, number>();
for (const rule of rules) {
  const sources = ruleSources(rule);
  const fields = new Map<string, boolean>();
  for (const det of Object.values(rule.detections))
    for (const it of items(det)) {
      if (it.field === null) continue;
      const eq = !it.negated && it.values.every((v) => plainEquality(v) !== null);
      fields.set(it.field, (fields.get(it.field) ?? false) || eq);
    }
  for (const source of sources) {
    perSource.set(source, (perSource.get(source) ?? 0) + 1);
    for (const [field, eq] of fields) {
      const key = `${source}\t${field}`;
      const u = usage.get(key) ?? { rules: 0, equality: 0 };
      u.rules++;
      if (eq) u.equality++;
      usage.set(key, u);
    }
  }
}

console.log(`${rules.length} rules under ${join(datasets, 'sigma-rules')}`);
for (const [source, n] of [...perSource].sort()) {
  console.log(`\n${source}: ${n} rules`);
  const rows = [...usage].filter(([k]) => k.startsWith(`${source}\t`)).sort((a, b) => b[1].rules - a[1].rules || a[0].localeCompare(b[0]));
  for (const [k, u] of rows.slice(0, 15))
    console.log(
      `  ${k.split('\t')[1]!.padEnd(40)} ${String(u.rules).padStart(4)} rules  ${String(u.equality).padStart(4)} by plain equality`,
    );
}
