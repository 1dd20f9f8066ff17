import { rename, writeFile } from 'node:fs/promises';
import { loadConfig } from '../core/config.js';
import { connectStore, migrate, type Store } from '../core/store/index.js';
import { csvField } from '../reports/render/csv.js';
import { type CorrelationIR, loadRules, type RuleIR } from '../rules/engine/index.js';
import { compileCorrelationSql, compileRuleSql, type SqlOptions } from '../rules/sql/index.js';
import { EXIT_CODES, parseFlags, timeFlag, usageError } from './args.js';
import { fail, say, terminalSafe } from './output.js';

const HELP = `glasswatch hunt <rule files or dirs...> --from ISO --to ISO [options]

Retro-hunt: runs each Sigma rule (and correlation) as one parameterized ClickHouse query over the
audit store's stored raw events, with the same semantics as the streaming engine. One record per
match: {"rule","title","author","eventId","source","time"}; correlations give
{"correlation","title","author","group","value","time","events"}. Progress and totals go to stderr.

Options:
  --from ISO, --to ISO   the period [from, to): 2026-11-20 (UTC midnight) or 2026-11-20T09:00:00Z / +02:00
  --format jsonl|json|csv  jsonl (default): one JSON line per match; json: one array; csv: a table
  --out FILE             write to FILE (replaced as a whole) instead of stdout
  --store PATH           the embedded store at PATH (never created: a missing store is an error)
  --config FILE          glasswatch config (YAML): store
  -h, --help             this help

${EXIT_CODES}`;

const FORMATS = ['jsonl', 'json', 'csv'] as const;
type HuntFormat = (typeof FORMATS)[number];
type Match = Record<string, unknown>;
const CSV_COLUMNS = ['rule', 'correlation', 'title', 'author', 'eventId', 'source', 'time', 'group', 'value', 'events'];

function render(matches: readonly Match[], format: HuntFormat): string {
  if (format === 'json') return `${JSON.stringify(matches, null, 2)}\n`;
  if (format === 'jsonl') return matches.map((m) => `${JSON.stringify(m)}\n`).join('');
  const cell = (v: unknown) => csvField(v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : v);
  return [CSV_COLUMNS.join(','), ...matches.map((m) => CSV_COLUMNS.map((c) => cell(m[c])).join(','))].map((l) => `${l}\r\n`).join('');
}

export async function huntCommand(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseFlags('hunt', argv, {
      from: { type: 'string' },
      to: { type: 'string' },
      store: { type: 'string' },
      config: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
    });
    if (values.help) {
      say(HELP);
      return 0;
    }
    if (positionals.length === 0) throw usageError('hunt needs rule files or folders', 'hunt');
    const format = (values.format ?? 'jsonl') as HuntFormat;
    if (!FORMATS.includes(format)) throw usageError(`--format must be one of ${FORMATS.join(', ')}, got "${values.format}"`, 'hunt');
    const from = new Date(timeFlag('--from', values.from, 'hunt')).toISOString();
    const to = new Date(timeFlag('--to', values.to, 'hunt')).toISOString();
    if (from >= to) throw usageError(`--from (${from}) must be before --to (${to})`, 'hunt');
    const config = loadConfig(values.config, values.store ? { storePath: values.store } : {});
    const store = await connectStore(config.store, { create: false });
    const loaded = loadRules(positionals);
    for (const r of loaded.rejected) say(`rejected [${r.code}] ${r.message}`);
    const started = Date.now();
    // jsonl to stdout streams as matches come; every other form is written once at the end.
    const streaming = format === 'jsonl' && (!values.out || values.out === '-');
    const kept: Match[] = [];
    const emit = (m: Match) => {
      if (streaming) process.stdout.write(terminalSafe(`${JSON.stringify(m)}\n`));
      else kept.push(m);
    };
    let matches = 0;
    try {
      await migrate(store, { retentionDays: config.retentionDays, evidenceRetentionDays: config.evidenceRetentionDays });
      const run = async <T>(q: { sql: string; params: Record<string, unknown> }) =>
        (await store.client.query({ query: q.sql, query_params: q.params, format: 'JSONEachRow' })).json<T>();
      let done = 0;
      const total = loaded.rules.length + loaded.correlations.length;
      for (const rule of loaded.rules) {
        const found = await ruleMatches(store, rule, { from, to });
        for (let i = 0; i < found.id.length; i++)
          emit({
            rule: ruleKey(rule),
            title: rule.title,
            author: rule.author ?? null,
            eventId: found.id[i],
            source: found.source[i],
            time: new Date(found.timeMs[i] as number).toISOString(),
          });
        matches += found.id.length;
        if (++done % 25 === 0 || done === total) say(`hunt: ${done}/${total} rules, ${matches} matches`);
      }
      const byId = new Map<string, RuleIR>();
      for (const r of loaded.rules) {
        if (r.id) byId.set(r.id, r);
        if (r.name) byId.set(r.name, r);
      }
      for (const c of loaded.correlations as CorrelationIR[]) {
        const rows = await run<{ group_values: string; time_ms: number; value: number; events: number }>(
          compileCorrelationSql(c, byId, { from, to }),
        );
        for (const row of rows)
          emit({
            correlation: c.id ?? c.name ?? c.title,
            title: c.title,
            author: c.author ?? null,
            group: JSON.parse(row.group_values),
            value: Number(row.value),
            time: new Date(Number(row.time_ms)).toISOString(),
            events: Number(row.events),
          });
        matches += rows.length;
        if (++done % 25 === 0 || done === total) say(`hunt: ${done}/${total} rules, ${matches} matches`);
      }
    } finally {
      await store.close();
    }
    if (!streaming) {
      const text = render(kept, format);
      if (values.out && values.out !== '-') {
        const temp = `${values.out}.${process.pid}.tmp`;
        await writeFile(temp, text);
        await rename(temp, values.out);
      } else process.stdout.write(format === 'csv' && !process.stdout.isTTY ? text : terminalSafe(text));
    }
    say(
      `hunt: ${loaded.rules.length} rules, ${loaded.correlations.length} correlations over ${from} .. ${to} in ${store.describe}: ${matches} matches in ${Date.now() - started} ms${values.out && values.out !== '-' ? `, written to ${values.out}` : ''}`,
    );
    return 0;
  } catch (err) {
    return fail(err);
  }
}

/** A rule's matches in time order, one array per column. */
export interface RuleMatches {
  source: string[];
  id: string[];
  timeMs: number[];
}

/**
 * Runs one compiled rule over the store. The rows come as one array per column: a single JSON.parse
 * of the whole result, about half the time of a parse per row (10M events, 333k matches: ~100 ms saved).
 */
export async function ruleMatches(store: Store, rule: RuleIR, range: SqlOptions): Promise<RuleMatches> {
  const q = compileRuleSql(rule, range);
  const result = await store.client.query({
    query: q.sql,
    query_params: q.params,
    format: 'JSONColumnsWithMetadata',
    // Epoch milliseconds as JSON numbers, not quoted 64-bit strings.
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
  });
  const { data } = (await result.json()) as unknown as { data: Partial<Record<'source' | 'id' | 'time_ms', unknown[]>> };
  // No key at all for zero rows.
  return {
    source: (data.source ?? []) as string[],
    id: (data.id ?? []) as string[],
    timeMs: ((data.time_ms ?? []) as (number | string)[]).map(Number),
  };
}

function ruleKey(rule: RuleIR): string {
  return rule.id ?? (rule.name ? `name:${rule.name}` : rule.title);
}
