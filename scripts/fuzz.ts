/**
 * `npm run fuzz [-- --runs N] [--target NAME] [--seed S] [--stall-seconds S]`: every fuzz target
 * (test/fuzz/targets.ts) in its own child process, N generated inputs each (default 10,000).
 * Prints per target: inputs, dead-lettered (or rejected), crashes, stalls, peak RSS. Exit 1 when
 * any target crashed or stalled, or its peak RSS passed 512 MB.
 *
 * A child reports each input's index before running it, so when it stops answering (a stall) or
 * dies (a crash: OOM, abort), the parent knows the input, records it, and starts a new child after
 * it. Findings (the input's description and the error) go to the folder printed at the end.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import fc from 'fast-check';

const RSS_LIMIT_MB = 512;
const CHUNK = 50;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : fallback;
}

async function child(): Promise<void> {
  const { targets } = await import('../test/fuzz/targets.js');
  const target = targets.find((t) => t.name === arg('child', ''));
  if (!target) throw new Error(`unknown fuzz target ${arg('child', '')}`);
  const from = Number(arg('from', '0'));
  const runs = Number(arg('runs', '10000'));
  const seed = Number(arg('seed', '1'));
  const out = (line: string) => process.stdout.write(`${line}\n`);
  let current = -1;
  const crash = (err: unknown) => out(`C ${current} ${JSON.stringify(String((err as Error)?.stack ?? err).slice(0, 2000))}`);
  process.on('unhandledRejection', crash);
  process.on('uncaughtException', crash);
  const ctx = target.setup ? await target.setup() : undefined;
  const timeoutMs = Number(arg('input-timeout-ms', '15000'));
  for (let chunk = Math.floor(from / CHUNK); chunk * CHUNK < runs; chunk++) {
    const inputs = fc.sample(target.arbitrary, { numRuns: CHUNK, seed: seed + chunk });
    for (let k = 0; k < CHUNK; k++) {
      const i = chunk * CHUNK + k;
      if (i < from || i >= runs) continue;
      current = i;
      out(`I ${i}`);
      const input = inputs[k];
      try {
        let timer: NodeJS.Timeout | undefined;
        const dead = await Promise.race([
          Promise.resolve(target.run(input, ctx)),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(Object.assign(new Error(`no answer in ${timeoutMs} ms`), { stall: true })), timeoutMs);
          }),
        ]);
        clearTimeout(timer);
        out(`R ${i} ${dead}`);
      } catch (err) {
        const description = target.describe ? target.describe(input) : String(input).slice(0, 300);
        if ((err as { stall?: boolean }).stall) out(`S ${i} ${JSON.stringify(description)}`);
        else {
          crash(err);
          out(`X ${i} ${JSON.stringify(description)}`);
        }
      }
    }
  }
  if (target.teardown) await target.teardown(ctx);
  out(`D ${process.resourceUsage().maxRSS}`);
  process.exit(0);
}

interface Tally {
  inputs: number;
  dead: number;
  crashes: number;
  stalls: number;
  rssMb: number;
  seconds: number;
}

function runTarget(name: string, runs: number, seed: number, stallSeconds: number, findings: string): Promise<Tally> {
  const tally: Tally = { inputs: 0, dead: 0, crashes: 0, stalls: 0, rssMb: 0, seconds: 0 };
  const started = Date.now();
  const record = (kind: string, index: number, text: string) => {
    if (tally.crashes + tally.stalls > 20) return;
    writeFileSync(join(findings, `${name}-${kind}-${index}.txt`), `${text}\n`, { flag: 'a' });
  };
  const once = (from: number): Promise<number> =>
    new Promise((resolve) => {
      const proc = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          process.argv[1] as string,
          '--child',
          name,
          '--from',
          String(from),
          '--runs',
          String(runs),
          '--seed',
          String(seed),
          '--input-timeout-ms',
          String(stallSeconds * 1000),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, GLASSWATCH_LOG_LEVEL: 'silent' } },
      );
      let current = from - 1;
      let done = false;
      let lastProgress = Date.now();
      const watchdog = setInterval(() => {
        if (Date.now() - lastProgress > stallSeconds * 2000) {
          tally.stalls++;
          record('stall', current, `input ${current} made no progress for ${stallSeconds * 2} s (process killed)`);
          proc.kill('SIGKILL');
        }
      }, 1000);
      createInterface({ input: proc.stdout }).on('line', (line) => {
        lastProgress = Date.now();
        const [kind, n, ...rest] = line.split(' ');
        const index = Number(n);
        if (kind === 'I') current = index;
        else if (kind === 'R') {
          tally.inputs++;
          tally.dead += Number(rest[0]);
        } else if (kind === 'S') {
          tally.inputs++;
          tally.stalls++;
          record('stall', index, JSON.parse(rest.join(' ')));
        } else if (kind === 'X') {
          tally.inputs++;
          record('crash', index, `input: ${JSON.parse(rest.join(' '))}`);
        } else if (kind === 'C') {
          tally.crashes++;
          record('crash', index, `error: ${JSON.parse(rest.join(' '))}`);
        } else if (kind === 'D') {
          done = true;
          tally.rssMb = Math.max(tally.rssMb, Number(n) / 1024);
        }
        if (tally.inputs % 1000 === 0 && kind !== 'I' && kind !== 'D' && process.stderr.isTTY)
          process.stderr.write(`\r  ${name}: ${tally.inputs}/${runs}`);
      });
      proc.on('exit', (code, signal) => {
        clearInterval(watchdog);
        if (done) return resolve(runs);
        // Died mid-input: a crash unless the watchdog killed it for a stall.
        if (signal !== 'SIGKILL' || Date.now() - lastProgress <= stallSeconds * 2000) {
          tally.crashes++;
          record('crash', current, `process died (exit ${code}, signal ${signal}) on input ${current}`);
        }
        tally.inputs++;
        resolve(current + 1);
      });
    });
  return (async () => {
    let from = 0;
    while (from < runs) from = await once(from);
    tally.seconds = (Date.now() - started) / 1000;
    return tally;
  })();
}

async function main(): Promise<void> {
  const { targets } = await import('../test/fuzz/targets.js');
  const runs = Number(arg('runs', '10000'));
  const seed = Number(arg('seed', String(Date.now() % 1_000_000)));
  const stallSeconds = Number(arg('stall-seconds', '15'));
  const only = arg('target', '');
  const findings = mkdtempSync(join(tmpdir(), 'glasswatch-fuzz-'));
  mkdirSync(findings, { recursive: true });
  process.stderr.write(`fuzz: ${runs} inputs per target, seed ${seed} (re-run with --seed ${seed})\n`);
  const rows: [string, Tally][] = [];
  for (const t of targets) {
    if (only && t.name !== only) continue;
    const tally = await runTarget(t.name, runs, seed, stallSeconds, findings);
    if (process.stderr.isTTY) process.stderr.write('\r');
    rows.push([t.name, tally]);
    process.stdout.write(
      `${t.name.padEnd(20)} inputs ${String(tally.inputs).padStart(6)}  dead-lettered ${String(tally.dead).padStart(6)}  crashes ${tally.crashes}  stalls ${tally.stalls}  peak RSS ${tally.rssMb.toFixed(0)} MB  (${tally.seconds.toFixed(1)} s)\n`,
    );
  }
  const bad = rows.filter(([, t]) => t.crashes > 0 || t.stalls > 0 || t.rssMb > RSS_LIMIT_MB);
  if (bad.length) {
    process.stdout.write(`fuzz: FAILED (${bad.map(([n]) => n).join(', ')}); findings in ${findings}\n`);
    process.exit(1);
  }
  process.stdout.write(`fuzz: ${rows.length} targets, 0 crashes, 0 stalls, peak RSS under ${RSS_LIMIT_MB} MB\n`);
}

if (process.argv.includes('--child')) await child();
else await main();
