/**
 * The one benchmark runner.
 *
 *   npm run bench                  every bench at its full size → bench/results.json
 *   npm run bench -- sql reports   only those (their figures replace theirs in bench/results.json)
 *   npm run bench:smoke            every bench at a small size (BENCH_SIZE=smoke); fails when a bench
 *                                  exits non-zero, times out, or prints no figure. Writes nothing
 *                                  unless --out <file> is given.
 *
 * Each bench runs in its own process (as `npm run bench:<name>` runs it); its stdout is shown and
 * its `FIGURE {json}` lines (test/perf/figures.ts) are collected. Benches needing Kafka start it the
 * way the tests do (test/kafka/broker.sh, reusing a running broker).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Figure, figuresFromText, parseFigures } from './figures.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const datasets = resolve(process.env.GLASSWATCH_DATASETS ?? join(root, '../shared/datasets'));

interface Bench {
  name: string;
  script: string;
  args?: string[];
  node?: string[];
  /** Sizes for the benches whose scripts read their own env knobs. */
  smokeEnv?: Record<string, string>;
}

export const BENCHES: Bench[] = [
  { name: 'normalize', script: 'bench-normalize.ts', args: [datasets], smokeEnv: { ITERATIONS: '2' } },
  { name: 'rules', script: 'bench-rules.ts', args: [datasets], smokeEnv: { BENCH_MIN_MS: '150' } },
  {
    name: 'regex',
    script: 'bench-regex.ts',
    node: ['--expose-gc'],
    smokeEnv: { BENCH_MIN_MS: '50', BENCH_ADVERSARIAL_CHARS: '200000' },
  },
  { name: 'sql', script: 'bench-sql.ts', args: [datasets] },
  { name: 'store-insert', script: 'bench-store-insert.ts' },
  { name: 'reports', script: 'bench-reports.ts', node: ['--expose-gc'] },
  { name: 'evidence', script: 'bench-evidence.ts' },
  { name: 'log-validation', script: 'bench-log-validation.ts' },
  { name: 'detect', script: 'bench-detect.ts', node: ['--expose-gc'] },
  { name: 'confirm', script: 'bench-confirm.ts' },
  { name: 'bus', script: 'bench-bus.ts', smokeEnv: { BENCH_MESSAGES: '5000' } },
  { name: 'memory-bus', script: 'bench-memory-bus.ts', node: ['--expose-gc'] },
  { name: 'spool', script: 'bench-spool.ts', smokeEnv: { BENCH_SPOOL_EVENTS: '5000' } },
  { name: 'live', script: 'bench-live.ts' },
  { name: 'alert-formats', script: 'bench-alert-formats.ts' },
  { name: 'console', script: 'bench-console.ts' },
  {
    name: 'collectors-cloudtrail',
    script: 'bench-collectors-cloudtrail.ts',
    smokeEnv: { BENCH_OBJECTS: '8', BENCH_RECORDS: '100', BENCH_REGIONS: '2', BENCH_PREFETCH: '4' },
  },
  {
    name: 'collectors-okta-k8s',
    script: 'bench-collectors-okta-k8s.ts',
    smokeEnv: { BENCH_OKTA_EVENTS: '2000', BENCH_K8S_LISTS: '4' },
  },
];

export interface Result extends Figure {
  bench: string;
  size: 'full' | 'smoke';
  node: string;
  cpu: string;
  commit: string;
  date: string;
}

interface Outcome {
  bench: string;
  ok: boolean;
  seconds: number;
  figures: Figure[];
  problem?: string;
}

function runOne(bench: Bench, smoke: boolean, timeoutMs: number): Promise<Outcome> {
  const started = performance.now();
  const env = { ...process.env, BENCH_SIZE: smoke ? 'smoke' : 'full', ...(smoke ? bench.smokeEnv : {}) };
  const child = spawn(
    process.execPath,
    [...(bench.node ?? []), '--import', 'tsx', join(root, 'test/perf', bench.script), ...(bench.args ?? [])],
    {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    process.stdout.write(chunk);
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
  }, timeoutMs);
  return new Promise((done) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      let figures = parseFigures(stdout);
      if (figures.length === 0) figures = figuresFromText(stdout);
      const problem = timedOut
        ? `timed out after ${timeoutMs / 1000} s`
        : code !== 0
          ? `exited with ${code ?? signal}`
          : figures.length === 0
            ? 'printed no figure'
            : undefined;
      done({ bench: bench.name, ok: problem === undefined, seconds, figures, problem });
    });
  });
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** Replaces the figures of one bench in `out` (the others' stay, so partial runs accumulate). */
function save(out: string, o: Outcome, smoke: boolean, meta: Pick<Result, 'node' | 'cpu' | 'commit' | 'date'>): void {
  mkdirSync(dirname(out), { recursive: true });
  const kept = existsSync(out)
    ? (JSON.parse(readFileSync(out, 'utf8')) as { figures: Result[] }).figures.filter((f) => f.bench !== o.bench)
    : [];
  const results: Result[] = o.figures.map((f) => ({ bench: o.bench, size: smoke ? 'smoke' : 'full', ...f, ...meta }));
  writeFileSync(out, `${JSON.stringify({ figures: [...kept, ...results] }, null, 2)}\n`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { smoke: { type: 'boolean', default: false }, out: { type: 'string' }, timeout: { type: 'string' } },
  });
  const smoke = values.smoke ?? false;
  const unknown = positionals.filter((p) => !BENCHES.some((b) => b.name === p));
  if (unknown.length) {
    process.stderr.write(`unknown bench ${unknown.join(', ')}; known: ${BENCHES.map((b) => b.name).join(', ')}\n`);
    process.exit(64);
  }
  const selected = positionals.length ? BENCHES.filter((b) => positionals.includes(b.name)) : BENCHES;
  const timeoutMs = Number(values.timeout ?? (smoke ? 90 : 3600)) * 1000;
  const meta = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', commit: gitCommit(), date: new Date().toISOString() };
  const outcomes: Outcome[] = [];
  const out = values.out ?? (smoke ? undefined : join(root, 'bench', 'results.json'));
  const t0 = performance.now();
  for (const bench of selected) {
    process.stdout.write(`\n== bench ${bench.name} (${smoke ? 'smoke' : 'full'} size)\n`);
    const outcome = await runOne(bench, smoke, timeoutMs);
    outcomes.push(outcome);
    // Written after each bench, so an interrupted full run keeps what it measured.
    if (out) save(out, outcome, smoke, meta);
  }
  const total = (performance.now() - t0) / 1000;

  process.stdout.write(`\n== summary (${smoke ? 'smoke' : 'full'}, ${total.toFixed(1)} s in all, node ${meta.node}, ${meta.cpu})\n`);
  for (const o of outcomes)
    process.stdout.write(
      `  ${o.bench.padEnd(22)} ${o.ok ? 'ok    ' : 'FAILED'} ${o.seconds.toFixed(1).padStart(6)} s  ${o.figures.length} figures${o.problem ? `  (${o.problem})` : ''}\n`,
    );

  if (out) process.stdout.write(`wrote ${outcomes.reduce((n, o) => n + o.figures.length, 0)} figures to ${out}\n`);
  process.exitCode = outcomes.every((o) => o.ok) ? 0 : 1;
}

await main();
