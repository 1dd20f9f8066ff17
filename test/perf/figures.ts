/**
 * Machine-readable benchmark figures. Every bench prints its figures for humans as before and, through
 * `figure()`, one `FIGURE {json}` line each on stdout, which `test/perf/run.ts` collects into
 * bench/results.json. A bench that prints no figure fails the smoke pass, so a broken bench is noticed.
 */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  parameters?: Record<string, string | number | boolean>;
}

export const FIGURE_PREFIX = 'FIGURE ';

export function figure(name: string, value: number, unit: string, parameters: Figure['parameters'] = {}): void {
  if (!Number.isFinite(value)) throw new Error(`bench figure ${name} is not a finite number: ${value}`);
  process.stdout.write(`${FIGURE_PREFIX}${JSON.stringify({ name, value, unit, parameters })}\n`);
}

/** `BENCH_SIZE=smoke` (set by `npm run bench:smoke`) asks a bench for its small size; anything else is the full size. */
export function benchSize<T>(sizes: { full: T; smoke: T }): T {
  return process.env.BENCH_SIZE === 'smoke' ? sizes.smoke : sizes.full;
}

/** Figures out of a bench's stdout: its FIGURE lines. */
export function parseFigures(stdout: string): Figure[] {
  const out: Figure[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(FIGURE_PREFIX)) continue;
    const f = JSON.parse(line.slice(FIGURE_PREFIX.length)) as Figure;
    if (typeof f.name === 'string' && typeof f.value === 'number' && Number.isFinite(f.value) && typeof f.unit === 'string') out.push(f);
  }
  return out;
}

const UNIT = /(-?\d[\d,]*(?:\.\d+)?)\s*(events\/s|rows\/s|objects\/s|msg\/s|messages\/s|Mchar\/s|MB\/s|MiB\/s|ms|µs|s)(?![\w/])/;

/**
 * Figures of a bench that prints none (the ones whose owners have not added `figure()` yet): the first
 * "number unit" of each human line, named by the text before it. Marked `parsed: "text"` so a reader knows.
 */
export function figuresFromText(stdout: string): Figure[] {
  const out: Figure[] = [];
  for (const line of stdout.split('\n')) {
    const m = UNIT.exec(line);
    if (!m || m.index === undefined) continue;
    const label = line
      .slice(0, m.index)
      .replace(/\s+/g, ' ')
      .replace(/[:=(]\s*$/, '')
      .trim();
    if (!label) continue;
    out.push({ name: label.slice(0, 100), value: Number(m[1]!.replace(/,/g, '')), unit: m[2]!, parameters: { parsed: 'text' } });
  }
  return out;
}
