/**
 * Throughput and memory of the linear-time regex engine (rules/engine/regex).
 *
 *   node --expose-gc --import tsx test/perf/bench-regex.ts     (npm run bench:regex)
 *
 * Methodology: each pattern is compiled once and run over a 1 MB field (ASCII command
 * lines, then CJK text with a little ASCII) repeatedly for at least MIN_MS after a
 * warm-up pass; the figure is characters (UTF-16 code units) per second and UTF-8 MB/s.
 * Then the adversarial `[ab]*a[ab]{20}c` (a DFA with 2^21 reachable states) runs over
 * ADVERSARIAL_CHARS characters of `[ab]` text, and the heap used after a GC is printed:
 * the DFA cache budget must keep it flat whatever the input length.
 */
import { compileLinearRegex, type LinearRegex } from '../../rules/engine/index.js';

const MIN_MS = Number(process.env.BENCH_MIN_MS ?? 1_000);
const FIELD_CHARS = 1_000_000;
const ADVERSARIAL_CHARS = Number(process.env.BENCH_ADVERSARIAL_CHARS ?? 4_000_000);
const NO = { i: false, m: false, s: false };

const ASCII_LINES = [
  'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -NoProfile -ExecutionPolicy Bypass -File C:\\ProgramData\\x.ps1 ',
  'arn:aws:sts::123456789012:assumed-role/BreakGlassAdmin/alice@example.com ',
  'Get-ChildItem -Recurse -Path HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run | Select-Object Name ',
  '/usr/bin/kubectl exec -it pod/payments-7d9f -n prod -- /bin/sh -c "cat /etc/shadow" ',
];
function asciiField(): string {
  let s = '';
  for (let i = 0; s.length < FIELD_CHARS; i++) s += ASCII_LINES[i % ASCII_LINES.length];
  return s.slice(0, FIELD_CHARS);
}
/** CJK unified ideographs (a pseudo-random walk over 20,000 of them) with a space every 17. */
function cjkField(): string {
  const codes: number[] = [];
  let x = 12345;
  for (let i = 0; i < FIELD_CHARS; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    codes.push(i % 17 === 16 ? 0x20 : 0x4e00 + (x % 20_000));
  }
  let s = '';
  for (let i = 0; i < codes.length; i += 8192) s += String.fromCharCode(...codes.slice(i, i + 8192));
  return s;
}

const PATTERNS: [string, { i: boolean; m: boolean; s: boolean }][] = [
  ['assumed-role/[^/]+/.+@example\\.org', NO],
  ['(Get-Item|gci|Get-ChildItem).{1,64}-Path.{1,64}\\\\(currentcontrolset\\\\services|CurrentVersion\\\\Policies)', NO],
  ['\\\\[^\\\\]{1,256}\\.(?:vbs|hta)$', NO],
  ['(?i)invoke-(?:mimikatz|expression)', NO],
];

function measure(re: LinearRegex, text: string): { mchars: number; mbytes: number } {
  re.test(text); // warm-up: JIT and the lazily built automaton
  let runs = 0;
  const t0 = performance.now();
  let elapsed = 0;
  do {
    re.test(text);
    runs++;
    elapsed = performance.now() - t0;
  } while (elapsed < MIN_MS);
  const seconds = elapsed / 1000;
  return {
    mchars: (runs * text.length) / seconds / 1e6,
    mbytes: (runs * Buffer.byteLength(text)) / seconds / 1e6,
  };
}

const fields = { ascii: asciiField(), cjk: cjkField() };
process.stdout.write(`field: ${FIELD_CHARS.toLocaleString('en-US')} chars; MIN_MS ${MIN_MS}\n`);
for (const [pattern, flags] of PATTERNS) {
  for (const [name, text] of Object.entries(fields)) {
    const re = compileLinearRegex(pattern, flags);
    const { mchars, mbytes } = measure(re, text);
    const s = (re as { stats?: () => { states: number; cacheBytes: number; flushes: number; nfaFallbacks: number } }).stats?.();
    process.stdout.write(
      `${name.padEnd(5)} /${pattern.slice(0, 60)}/`.padEnd(72) +
        `${mchars.toFixed(1).padStart(8)} Mchar/s ${mbytes.toFixed(1).padStart(8)} MB/s` +
        (s ? `  (states ${s.states}, ${(s.cacheBytes / 1024).toFixed(0)} KiB, flushes ${s.flushes}, NFA ${s.nfaFallbacks})` : '') +
        '\n',
    );
  }
}

const gc = (globalThis as { gc?: () => void }).gc;
const heapMb = (): number => {
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
};
const adversarial = compileLinearRegex('[ab]*a[ab]{20}c', NO);
const before = heapMb();
let peakRss = process.memoryUsage().rss;
let x = 987654321;
const CHUNK = 100_000;
const t0 = performance.now();
for (let done = 0; done < ADVERSARIAL_CHARS; done += CHUNK) {
  let chunk = '';
  for (let i = 0; i < CHUNK; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    chunk += x >= 0x40000000 ? 'a' : 'b';
  }
  adversarial.test(chunk);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}
const seconds = (performance.now() - t0) / 1000;
const after = heapMb();
const stats = (adversarial as { stats?: () => unknown }).stats?.();
process.stdout.write(
  `adversarial /[ab]*a[ab]{20}c/ over ${(ADVERSARIAL_CHARS / 1e6).toFixed(1)} M chars: ` +
    `${(ADVERSARIAL_CHARS / seconds / 1e6).toFixed(2)} Mchar/s; heap used ${before.toFixed(1)} → ${after.toFixed(1)} MB` +
    `${gc ? ' (after gc)' : ' (run with --expose-gc for exact heap)'}; peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MB\n` +
    (stats ? `engine stats: ${JSON.stringify(stats)}\n` : ''),
);
