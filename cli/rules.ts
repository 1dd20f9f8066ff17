/**
 * `glasswatch rules …`: validate Sigma rule files and run them over raw event files.
 *
 *   rules validate <files|dirs…> [--allow-errors] [--strict] [--legacy-collections] [--placeholders file.json]
 *   rules match <rule files|dirs…> --input <file|dir> [--placeholders file.json]
 *   rules sql <rule files|dirs…> [--from T] [--to T] [--table NAME] [--placeholders file.json]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { terminalSafe } from '../core/log.js';
import { normalizeBuffer, recordSource } from '../ingest/index.js';
import { type LoadedRules, type LoadOptions, loadRules, SigmaEngine, type SourceName } from '../rules/engine/index.js';
import { SQL_USAGE, sqlCommand } from '../rules/sql/cli.js';
import { asUsageError } from './args.js';

const USAGE = `usage:
  glasswatch rules validate <rule files or dirs...> [--allow-errors] [--strict] [--legacy-collections] [--placeholders <json file>]
  glasswatch rules match <rule files or dirs...> --input <file or dir> [--placeholders <json file>]
${SQL_USAGE}`;

type Write = (text: string) => void;

export async function rulesCommand(
  argv: string[],
  out: Write = (t) => process.stdout.write(terminalSafe(t)),
  err: Write = (t) => process.stderr.write(terminalSafe(t)),
): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    // -h/--help on every subcommand (added by the CLI conventions of issue 10).
    if (sub && (rest.includes('-h') || rest.includes('--help'))) {
      err(`${USAGE}\n`);
      return 0;
    }
    if (sub === 'validate') return validateCommand(rest, out, err);
    if (sub === 'match') return matchCommand(rest, out, err);
    if (sub === 'sql') return sqlCommand(rest, out, err);
    err(sub === undefined || sub === '--help' || sub === 'help' ? USAGE : `unknown rules subcommand '${sub}'\n${USAGE}`);
    return sub === undefined || sub === '--help' || sub === 'help' ? 0 : 2;
  } catch (e) {
    // An unknown or malformed flag: the one usage line every command gives.
    const usage = asUsageError(e);
    err(usage ? `glasswatch: ${usage.message}\n` : `glasswatch rules ${sub}: ${(e as Error).message}\n`);
    return 2;
  }
}

const COMMON = {
  placeholders: { type: 'string' },
  strict: { type: 'boolean' },
  'legacy-collections': { type: 'boolean' },
} as const;

function loadOptions(values: { placeholders?: string; strict?: boolean; 'legacy-collections'?: boolean }): LoadOptions {
  const options: LoadOptions = { strict: values.strict ?? false, legacyCollections: values['legacy-collections'] ?? false };
  if (values.placeholders) {
    const parsed: unknown = JSON.parse(readFileSync(values.placeholders, 'utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new Error(`--placeholders ${values.placeholders}: expected a JSON object of name -> list of values`);
    options.placeholders = parsed as Record<string, string[]>;
  }
  return options;
}

function histogram(keys: string[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** Reason with quoted specifics removed, so that similar rejections count together. */
const reasonKind = (code: string, reason: string): string => `${code}: ${reason.replace(/'[^']*'|%[^%\s]+%/g, '…')}`;

function validateCommand(args: string[], out: Write, err: Write): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...COMMON, 'allow-errors': { type: 'boolean' } } });
  if (positionals.length === 0) {
    err(USAGE);
    return 2;
  }
  const loaded = loadRules(positionals, loadOptions(values));
  const documents = loaded.rules.length + loaded.correlations.length + loaded.filters.length;
  const rejectedFiles = new Set(loaded.rejected.map((r) => r.file)).size;
  out(
    `files: ${loaded.files}, loaded documents: ${documents} (rules ${loaded.rules.length}, correlations ${loaded.correlations.length}, filters ${loaded.filters.length}), rejected: ${loaded.rejected.length} (in ${rejectedFiles} files), warnings: ${loaded.warnings.length}\n`,
  );
  if (loaded.files > 0) out(`files fully loaded: ${(((loaded.files - rejectedFiles) / loaded.files) * 100).toFixed(2)}%\n`);
  for (const r of loaded.rejected) out(`rejected [${r.code}] ${r.message}\n`);
  if (loaded.rejected.length) {
    out('rejections by reason:\n');
    for (const [k, n] of histogram(loaded.rejected.map((r) => reasonKind(r.code, r.reason)))) out(`  ${String(n).padStart(5)}  ${k}\n`);
  }
  if (loaded.warnings.length) {
    out('warnings by reason:\n');
    for (const [k, n] of histogram(loaded.warnings.map((w) => reasonKind('warning', w.reason)))) out(`  ${String(n).padStart(5)}  ${k}\n`);
  }
  return loaded.rejected.length && !values['allow-errors'] ? 1 : 0;
}

/** The source of a raw record, by the normalizers' own content detection. */
export function detectSource(raw: unknown): SourceName | null {
  return recordSource(raw as Parameters<typeof recordSource>[0]);
}

export interface InputEvent {
  raw: unknown;
  file: string;
  /** 1-based line for JSON-lines input, null otherwise. */
  line: number | null;
}

function inputFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) =>
      e.isDirectory() ? inputFiles(join(path, e.name)) : /\.(json|jsonl|ndjson|log|gz)$/i.test(e.name) ? [join(path, e.name)] : [],
    );
}

/** JSON lines, a JSON array, a `{"Records": […]}` / `{"items": […]}` envelope, or one object. */
export function readEvents(file: string, onError: (message: string) => void): InputEvent[] {
  let buf = readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  const text = buf.toString('utf8');
  let whole: unknown;
  try {
    whole = JSON.parse(text);
  } catch {
    whole = undefined;
  }
  if (whole !== undefined) {
    const list = Array.isArray(whole)
      ? whole
      : whole !== null && typeof whole === 'object' && Array.isArray((whole as Record<string, unknown>).Records)
        ? ((whole as Record<string, unknown>).Records as unknown[])
        : whole !== null && typeof whole === 'object' && Array.isArray((whole as Record<string, unknown>).items)
          ? ((whole as Record<string, unknown>).items as unknown[])
          : [whole];
    return list.map((raw) => ({ raw, file, line: null }));
  }
  const events: InputEvent[] = [];
  text.split('\n').forEach((lineText, i) => {
    if (lineText.trim() === '') return;
    try {
      events.push({ raw: JSON.parse(lineText), file, line: i + 1 });
    } catch (e) {
      onError(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
  });
  return events;
}

function matchCommand(args: string[], out: Write, err: Write): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...COMMON, input: { type: 'string' } } });
  if (positionals.length === 0 || !values.input) {
    err(USAGE);
    return 2;
  }
  const loaded: LoadedRules = loadRules(positionals, loadOptions(values));
  for (const r of loaded.rejected) err(`rejected [${r.code}] ${r.message}\n`);
  const engine = new SigmaEngine(loaded);
  let events = 0;
  let unknown = 0;
  let matches = 0;
  const lines: string[] = [];
  // The input goes through the same reader and normalizers as `glasswatch replay`, so every
  // shape replay accepts (gzip, envelopes, hook bodies, EventList) works here too.
  for (const file of inputFiles(values.input)) {
    for (const r of normalizeBuffer(readFileSync(file), file)) {
      if (r.kind === 'skipped') continue;
      events++;
      if (r.kind === 'dead') {
        unknown++;
        err(`not evaluated: ${r.reason}\n`);
        continue;
      }
      const ev = { raw: r.event.raw, file, line: r.origin.line };
      const source = r.event.source;
      const raw = r.event.raw;
      const eventId = r.event.id;
      const result = engine.evaluate(source, raw);
      for (const m of result.matches) {
        matches++;
        lines.push(
          JSON.stringify({ rule: m.rule, title: m.title, author: m.author ?? null, eventId, line: ev.line, file: ev.file, source }),
        );
      }
      for (const c of result.correlations) {
        matches++;
        lines.push(
          JSON.stringify({
            correlation: c.correlation,
            title: c.title,
            author: c.author ?? null,
            type: c.type,
            group: c.group,
            value: c.value,
            eventId,
            line: ev.line,
            file: ev.file,
          }),
        );
      }
      if (lines.length >= 1000) out(`${lines.splice(0).join('\n')}\n`);
    }
  }
  if (lines.length) out(`${lines.join('\n')}\n`);
  err(
    `rules: ${loaded.rules.length} loaded, ${loaded.rejected.length} rejected; events: ${events} (${unknown} not evaluated: no recognisable source record); matches: ${matches}\n`,
  );
  return 0;
}
