/**
 * Sigma engine throughput on one core.
 *
 *   node --import tsx test/perf/bench-rules.ts [datasets-dir]
 *   (or GLASSWATCH_DATASETS=…; default ../shared/datasets relative to the project root)
 *
 * Methodology: events of cloudtrail/, okta/ and k8s-audit/ are read once, their
 * source detected by content, and kept pre-parsed. Each scenario runs over the whole
 * event set repeatedly for at least MIN_MS after a warm-up pass; the figure is events
 * per second of `engine.match()`. The baseline is `JSON.parse` alone over the same
 * events re-serialised as compact JSON lines (the bytes a consumer would receive).
 *   (a) the aws/okta/k8s subset (sigma-rules/), (b) every rule under sigma-rules-all/rules.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectSource, readEvents } from '../../cli/rules.js';
import { loadRules, SigmaEngine, type SourceName } from '../../rules/engine/index.js';

const MIN_MS = Number(process.env.BENCH_MIN_MS ?? 2_000);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const datasets = resolve(process.argv[2] ?? process.env.GLASSWATCH_DATASETS ?? join(root, '../shared/datasets'));
const required = ['cloudtrail', 'okta', 'k8s-audit', 'sigma-rules', 'sigma-rules-all/rules'];
const missing = required.filter((p) => !existsSync(join(datasets, p)));
if (missing.length) {
  process.stderr.write(
    `bench-rules: datasets folder ${datasets} is missing ${missing.join(', ')}.\n` +
      'Pass the folder as the first argument or set GLASSWATCH_DATASETS.\n',
  );
  process.exit(2);
}

const events: { source: SourceName; raw: Record<string, unknown>; line: string }[] = [];
for (const dir of ['cloudtrail', 'okta', 'k8s-audit']) {
  const stack = [join(datasets, dir)];
  while (stack.length) {
    const p = stack.pop() as string;
    if (statSync(p).isDirectory()) {
      for (const e of readdirSync(p)) stack.push(join(p, e));
      continue;
    }
    if (!/\.(json|ndjson|jsonl|log|gz)$/i.test(p)) continue;
    for (const ev of readEvents(p, () => {})) {
      const source = detectSource(ev.raw);
      if (source) events.push({ source, raw: ev.raw as Record<string, unknown>, line: JSON.stringify(ev.raw) });
    }
  }
}
const bytes = events.reduce((n, e) => n + Buffer.byteLength(e.line), 0);

function measure(name: string, pass: () => number): number {
  pass(); // warm-up: JIT and lazily built regex automata
  let runs = 0;
  let sink = 0;
  const t0 = performance.now();
  let elapsed = 0;
  do {
    sink += pass();
    runs++;
    elapsed = performance.now() - t0;
  } while (elapsed < MIN_MS);
  const rate = (runs * events.length) / (elapsed / 1000);
  process.stdout.write(
    `${name.padEnd(46)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} events/s   (${runs} passes, checksum ${sink})\n`,
  );
  return rate;
}

function engineFor(path: string): { engine: SigmaEngine; rules: number; rejected: number } {
  const loaded = loadRules([path]);
  return { engine: new SigmaEngine(loaded), rules: loaded.rules.length, rejected: loaded.rejected.length };
}

const subset = engineFor(join(datasets, 'sigma-rules'));
const all = engineFor(join(datasets, 'sigma-rules-all/rules'));
process.stdout.write(
  `events: ${events.length} (${(bytes / 1e6).toFixed(2)} MB as JSON lines); ` +
    `rules (a) ${subset.rules} loaded/${subset.rejected} rejected, (b) ${all.rules} loaded/${all.rejected} rejected\n` +
    `routing (b): ${JSON.stringify(all.engine.routeStats())}\n`,
);

const run = (engine: SigmaEngine) => () => {
  let n = 0;
  for (const e of events) n += engine.match(e.source, e.raw).length;
  return n;
};
const baseline = measure('baseline: JSON.parse only', () => {
  let n = 0;
  for (const e of events) n += (JSON.parse(e.line) as object) ? 1 : 0;
  return n;
});
const a = measure(`(a) ${subset.rules} aws/okta/k8s rules, pre-parsed`, run(subset.engine));
const b = measure(`(b) ${all.rules} rules of rules/, pre-parsed`, run(all.engine));
process.stdout.write(
  `(a) vs target 200,000 events/s: ${a >= 200_000 ? 'OK' : 'BELOW'}; (b)/(a) = ${(b / a).toFixed(2)} (target >= 0.80: ${b / a >= 0.8 ? 'OK' : 'BELOW'}); ` +
    `JSON.parse baseline is ${(baseline / a).toFixed(2)}x (a)\n`,
);
