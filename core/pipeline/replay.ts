import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_MAX_OBJECT_DECOMPRESSED_BYTES } from '../../ingest/decode.js';
import { normalizeBufferBounded, reasonWithoutLocation } from '../../ingest/index.js';
import type { NormalizeOptions, NormalizeResult } from '../../ingest/types.js';
import { errorMessage, GlasswatchError } from '../errors.js';
import type { AuditEvent, Source } from '../event.js';
import type { DeadLetter } from '../store/writer.js';
import type { DeadLetterStage, EventStage } from './stage.js';

export interface ReplaySummary {
  files: number;
  bytes: number;
  events: Record<Source, number>;
  /** Recognised, deliberately not processed: kind → count. */
  skipped: Record<string, number>;
  /** Could not be normalized: reason (with values masked) → count. */
  deadLetters: Record<string, number>;
  deadLetterTotal: number;
  firstEventTime: string | null;
  lastEventTime: string | null;
  durationMs: number;
  /** The same counts per input file (what `--summary-json` writes, what the corpus check reads). */
  perFile: Record<string, FileTally>;
}

export interface FileTally {
  events: number;
  skipped: Record<string, number>;
  deadLetters: Record<string, number>;
}

export interface ReplayOptions {
  paths: string[];
  normalize?: NormalizeOptions;
  stages: EventStage[];
  deadLetterStages?: DeadLetterStage[];
  /** Called after each file, for progress output. */
  onFile?: (file: string, done: number, total: number) => void;
  /**
   * Progress of a long replay: `normalize` counts bytes read and normalized, `stages` counts
   * events through the stages (store, detector). Called after every file and every batch.
   */
  onProgress?: (p: ReplayProgress) => void;
  batchSize?: number;
}

export interface ReplayProgress {
  phase: 'normalize' | 'stages';
  done: number;
  total: number;
  /** Events normalized so far. */
  events: number;
}

/** Expands files and folders (recursively, sorted, dot-files ignored) into a file list. */
export async function listInputFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string): Promise<void> => {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(p);
    } catch {
      throw new GlasswatchError('BG_REPLAY_INPUT', `input "${p}" does not exist`, {
        stage: 'receiving',
        hint: 'Check the path; folders are read recursively.',
      });
    }
    if (info.isDirectory()) {
      const entries = (await readdir(p)).filter((n) => !n.startsWith('.')).sort();
      for (const name of entries) await walk(join(p, name));
    } else if (info.isFile()) out.push(p);
  };
  for (const p of paths) await walk(p);
  return out;
}

/** Masks the specifics (location, numbers, quoted values) of a reason so reasons group in the summary. */
export function reasonKind(reason: string): string {
  return reasonWithoutLocation(reason)
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/\b\d+\b/g, 'N')
    .slice(0, 160);
}

/**
 * One input file's results. gzip is inflated off the event loop within `maxDecompressedBytes`; a
 * file too big to hold, a bomb, or a file that cannot be read is one dead letter naming it, and the
 * replay goes on with the next file.
 */
async function readInputFile(
  file: string,
  normalize: NormalizeOptions | undefined,
): Promise<{ bytes: number; results: Iterable<NormalizeResult> }> {
  const maxBytes = normalize?.maxDecompressedBytes ?? DEFAULT_MAX_OBJECT_DECOMPRESSED_BYTES;
  const deadFile = (bytes: number, reason: string) => ({
    bytes,
    results: [{ kind: 'dead' as const, source: normalize?.source ?? null, reason, origin: { file, line: null, index: null }, text: '' }],
  });
  let size = 0;
  try {
    size = (await stat(file)).size;
    // Not read at all: holding it would already break the budget (and readFile fails past 2 GiB).
    if (size > maxBytes) return deadFile(size, `${file} is ${size} bytes, beyond ${maxBytes} (maxDecompressedBytes)`);
    const bytes = await readFile(file);
    return { bytes: bytes.length, results: await normalizeBufferBounded(bytes, file, normalize) };
  } catch (err) {
    return deadFile(size, `${file} could not be read: ${errorMessage(err)}`);
  }
}

/**
 * Reads every input file, normalizes it with the same code the collectors use, and
 * hands events to the stages in event-time order (ties keep input order), so a replay
 * gives what the live pipeline gave.
 */
export async function replayFiles(options: ReplayOptions): Promise<ReplaySummary> {
  const started = Date.now();
  const files = await listInputFiles(options.paths);
  const summary: ReplaySummary = {
    files: files.length,
    bytes: 0,
    events: { cloudtrail: 0, okta: 0, k8s: 0 },
    skipped: {},
    deadLetters: {},
    deadLetterTotal: 0,
    firstEventTime: null,
    lastEventTime: null,
    durationMs: 0,
    perFile: {},
  };
  const events: AuditEvent[] = [];
  const dead: DeadLetter[] = [];
  let done = 0;
  let totalBytes = 0;
  if (options.onProgress) for (const file of files) totalBytes += (await stat(file)).size;
  for (const file of files) {
    const tally: FileTally = { events: 0, skipped: {}, deadLetters: {} };
    summary.perFile[file] = tally;
    const input = await readInputFile(file, options.normalize);
    summary.bytes += input.bytes;
    for (const r of input.results) {
      if (r.kind === 'event') {
        events.push(r.event);
        summary.events[r.event.source]++;
        tally.events++;
      } else if (r.kind === 'skipped') {
        summary.skipped[r.what] = (summary.skipped[r.what] ?? 0) + 1;
        tally.skipped[r.what] = (tally.skipped[r.what] ?? 0) + 1;
      } else {
        dead.push({
          source: r.source,
          stage: 'processing',
          reason: r.reason,
          file: r.origin.file,
          line: r.origin.line,
          index: r.origin.index,
          text: r.text,
        });
        const kind = reasonKind(r.reason);
        summary.deadLetters[kind] = (summary.deadLetters[kind] ?? 0) + 1;
        const exact = reasonWithoutLocation(r.reason);
        tally.deadLetters[exact] = (tally.deadLetters[exact] ?? 0) + 1;
        summary.deadLetterTotal++;
      }
    }
    options.onFile?.(file, ++done, files.length);
    options.onProgress?.({ phase: 'normalize', done: summary.bytes, total: Math.max(totalBytes, summary.bytes), events: events.length });
  }

  // Stable sort: Array.prototype.sort is stable, so equal times keep input order.
  events.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  summary.firstEventTime = events[0]?.time ?? null;
  summary.lastEventTime = events[events.length - 1]?.time ?? null;

  const batchSize = options.batchSize ?? 1000;
  for (let i = 0; i < events.length; i += batchSize) {
    const batch = events.slice(i, i + batchSize);
    for (const stage of options.stages) await stage.handle(batch);
    options.onProgress?.({ phase: 'stages', done: i + batch.length, total: events.length, events: events.length });
  }
  for (const s of options.deadLetterStages ?? []) await s.handleDeadLetters(dead);
  for (const stage of options.stages) await stage.flush();
  summary.durationMs = Date.now() - started;
  return summary;
}
