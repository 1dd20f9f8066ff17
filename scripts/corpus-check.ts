/**
 * Corpus check: every data file of the public sample datasets goes through the normalizer, and the
 * totals must account for every record the datasets README counts.
 *
 *   node --import tsx scripts/corpus-check.ts <datasets-dir>
 *
 * Each source folder's data files go through `glasswatch replay` (the CLI, the same code as the live
 * pipeline) with `--summary-json`; the per-file counts it writes are tallied per dataset folder.
 * Exit 1 when replay crashes (exit status other than 0 or 3), 2 when the totals differ.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FileTally, ReplaySummary } from '../core/pipeline/replay.js';

/** Record counts from the datasets README ("Event totals"), after unwrapping envelopes. */
const EXPECTED: Record<string, number> = { cloudtrail: 3908, okta: 180, 'k8s-audit': 282 };

/** Provenance files sit beside the data; they are not records. */
const PROVENANCE: ReadonlyArray<readonly [RegExp, string]> = [
  [/^LICEN[SC]E/i, 'licence text'],
  [/^COPYING/i, 'licence text (GPL-style name)'],
  [/^README/i, 'documentation'],
  [/^SOURCES\.ndjson$/, 'provenance: where each file was copied from'],
  [/\.meta\.ndjson$/, 'provenance: per-line source path, commit and test name of the ndjson beside it'],
];

interface FolderTally {
  results: number;
  events: number;
  skipped: Map<string, number>;
  dead: Map<string, number>;
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** Tallies results by the second-level folder of their origin file (`cloudtrail/aws_dataset`). */
export class CorpusTally {
  readonly folders = new Map<string, FolderTally>();
  constructor(private readonly root: string) {}

  addFile(file: string, t: FileTally): void {
    const parts = relative(this.root, file).split(sep);
    const folder = parts.slice(0, 2).join('/');
    let tally = this.folders.get(folder);
    if (tally === undefined) {
      tally = { results: 0, events: 0, skipped: new Map(), dead: new Map() };
      this.folders.set(folder, tally);
    }
    tally.events += t.events;
    tally.results += t.events;
    for (const [what, n] of Object.entries(t.skipped)) {
      tally.skipped.set(what, (tally.skipped.get(what) ?? 0) + n);
      tally.results += n;
    }
    for (const [why, n] of Object.entries(t.deadLetters)) {
      tally.dead.set(why, (tally.dead.get(why) ?? 0) + n);
      tally.results += n;
    }
  }

  totalFor(kind: string): { results: number; events: number; skipped: number; dead: number } {
    const total = { results: 0, events: 0, skipped: 0, dead: 0 };
    for (const [folder, tally] of this.folders) {
      if (!folder.startsWith(`${kind}/`)) continue;
      total.results += tally.results;
      total.events += tally.events;
      for (const n of tally.skipped.values()) total.skipped += n;
      for (const n of tally.dead.values()) total.dead += n;
    }
    return total;
  }
}

function* dataFiles(dir: string, skipped: Array<[string, string]>): Generator<string> {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      yield* dataFiles(path, skipped);
      continue;
    }
    const provenance = PROVENANCE.find(([pattern]) => pattern.test(basename(path)));
    if (provenance) skipped.push([path, provenance[1]]);
    else yield path;
  }
}

function main(): number {
  const root = process.argv[2];
  if (!root) {
    console.error('usage: node --import tsx scripts/corpus-check.ts <datasets-dir>');
    return 64;
  }
  const tally = new CorpusTally(resolve(root));
  const provenance: Array<[string, string]> = [];
  const crashes: string[] = [];
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'glasswatch.js');
  const work = mkdtempSync(join(tmpdir(), 'gw-corpus-'));
  let files = 0;
  for (const kind of Object.keys(EXPECTED)) {
    const list = [...dataFiles(join(root, kind), provenance)];
    files += list.length;
    const summaryFile = join(work, `${kind}.json`);
    const run = spawnSync(process.execPath, [cli, 'replay', ...list, '--out', 'none', '--quiet', '--summary-json', summaryFile], {
      encoding: 'utf8',
    });
    if (run.status !== 0 && run.status !== 3) {
      crashes.push(`glasswatch replay over ${kind}/ exited ${run.status}: ${run.stderr.trim().split('\n').slice(-5).join(' | ')}`);
      continue;
    }
    const summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as ReplaySummary;
    for (const [file, t] of Object.entries(summary.perFile)) tally.addFile(resolve(file), t);
  }
  rmSync(work, { recursive: true, force: true });

  console.log(`glasswatch replay read ${files} data files under ${root}\n`);
  for (const [folder, t] of [...tally.folders].sort(([a], [b]) => a.localeCompare(b))) {
    const skipped = [...t.skipped.values()].reduce((a, b) => a + b, 0);
    const dead = [...t.dead.values()].reduce((a, b) => a + b, 0);
    console.log(
      `${folder.padEnd(36)} records ${String(t.results).padStart(5)}   normalized ${String(t.events).padStart(5)}   skipped ${String(skipped).padStart(3)}   dead ${String(dead).padStart(4)}`,
    );
    for (const [what, n] of [...t.skipped].sort((a, b) => b[1] - a[1])) console.log(`    skipped ${String(n).padStart(4)}  ${what}`);
    for (const [reason, n] of [...t.dead].sort((a, b) => b[1] - a[1])) console.log(`    dead    ${String(n).padStart(4)}  ${reason}`);
  }

  console.log('\nTotals (expected = datasets README event totals)');
  let mismatch = false;
  for (const [kind, expected] of Object.entries(EXPECTED)) {
    const t = tally.totalFor(kind);
    const ok = t.results === expected;
    if (!ok) mismatch = true;
    console.log(
      `  ${kind.padEnd(11)} expected ${String(expected).padStart(5)}  got ${String(t.results).padStart(5)} ${ok ? 'OK ' : 'MISMATCH'}` +
        `  (normalized ${t.events}, skipped ${t.skipped}, dead ${t.dead})`,
    );
  }

  console.log(`\nProvenance files not normalized (${provenance.length}):`);
  const reasons = new Map<string, number>();
  for (const [, why] of provenance) bump(reasons, why);
  for (const [why, n] of reasons) console.log(`  ${String(n).padStart(3)}  ${why}`);

  if (crashes.length > 0) {
    console.error(`\n${crashes.length} file(s) crashed glasswatch replay:`);
    for (const crash of crashes) console.error(`  ${crash}`);
    return 1;
  }
  return mismatch ? 2 : 0;
}

process.exitCode = main();
