/**
 * Normalizer throughput on the public CloudTrail samples, beside the JSON.parse-only cost of the
 * same bytes (the floor: normalization can only add to it).
 *
 *   node --import tsx test/perf/bench-normalize.ts [datasets-dir]     (default ../shared/datasets)
 *
 * Method: every data file under `<datasets>/cloudtrail` is read into memory first; each timed
 * iteration runs the whole set; 3 warm-up iterations, then the median of ITERATIONS (env, default 15).
 * "Parse only" decodes the same bytes (gunzip, BOM) and JSON.parses them as document or lines.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeBytes, isBlank } from '../../ingest/decode.js';
import { normalizeBuffer } from '../../ingest/index.js';
import { figure } from './figures.js';

const PROVENANCE = /^(LICEN[SC]E|COPYING|README)|^SOURCES\.ndjson$|\.meta\.ndjson$/i;
const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const datasets = resolve(process.argv[2] ?? join(root, '../shared/datasets'));
const dir = join(datasets, 'cloudtrail');
if (!existsSync(dir)) {
  console.error(
    `No CloudTrail samples at ${dir}.\nPass the datasets folder: node --import tsx test/perf/bench-normalize.ts <datasets-dir>`,
  );
  process.exit(66);
}

function collect(path: string, into: Array<{ file: string; bytes: Buffer }>): void {
  for (const name of readdirSync(path).sort()) {
    const full = join(path, name);
    if (statSync(full).isDirectory()) collect(full, into);
    else if (!PROVENANCE.test(name)) into.push({ file: full, bytes: readFileSync(full) });
  }
}
const files: Array<{ file: string; bytes: Buffer }> = [];
collect(dir, files);
const totalBytes = files.reduce((n, f) => n + f.bytes.length, 0);

function normalizeAll(): number {
  let events = 0;
  for (const { file, bytes } of files) for (const result of normalizeBuffer(bytes, file)) if (result.kind === 'event') events++;
  return events;
}

function parseOnly(): number {
  let values = 0;
  for (const { bytes } of files) {
    const { text } = decodeBytes(bytes);
    try {
      JSON.parse(text);
      values++;
    } catch {
      for (const line of text.split('\n')) {
        if (isBlank(line)) continue;
        try {
          JSON.parse(line);
        } catch {
          // counted as work done all the same
        }
        values++;
      }
    }
  }
  return values;
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function time(run: () => number, iterations: number): { ms: number; count: number } {
  let count = 0;
  for (let i = 0; i < 3; i++) count = run();
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    run();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return { ms: median(samples), count };
}

const iterations = Number(process.env.ITERATIONS ?? 15);
const normalized = time(normalizeAll, iterations);
const parsed = time(parseOnly, iterations);
const events = normalized.count;
const rate = (ms: number) => Math.round((events / ms) * 1000).toLocaleString('en-US');
const mbps = (ms: number) => ((totalBytes / 1e6 / ms) * 1000).toFixed(1);
console.log(`CloudTrail samples: ${files.length} files, ${(totalBytes / 1e6).toFixed(2)} MB, ${events} events normalized per pass`);
console.log(`node ${process.version}, median of ${iterations} passes after 3 warm-up passes`);
console.log(
  `  normalizeBuffer   ${normalized.ms.toFixed(1).padStart(7)} ms/pass  ${rate(normalized.ms).padStart(10)} events/s  ${mbps(normalized.ms)} MB/s`,
);
console.log(
  `  JSON.parse only   ${parsed.ms.toFixed(1).padStart(7)} ms/pass  ${rate(parsed.ms).padStart(10)} events/s  ${mbps(parsed.ms)} MB/s`,
);
figure('normalizeBuffer', (events / normalized.ms) * 1000, 'events/s', { files: files.length, events, iterations });
figure('JSON.parse only', (events / parsed.ms) * 1000, 'events/s', { files: files.length, events, iterations });
console.log(`  normalization overhead over parsing: ${((normalized.ms / parsed.ms - 1) * 100).toFixed(0)}%`);
