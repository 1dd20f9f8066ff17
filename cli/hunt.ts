import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config.js';
import { GlasswatchError } from '../core/errors.js';
import { migrate, openStore } from '../core/store/index.js';
import { type CorrelationIR, loadRules, type RuleIR } from '../rules/engine/index.js';
import { compileCorrelationSql, compileRuleSql } from '../rules/sql/index.js';
import { fail, say, terminalSafe } from './output.js';

const HELP = `glasswatch hunt <rule files or dirs...> --from ISO --to ISO [--store PATH] [--config FILE]

Retro-hunt: runs each Sigma rule (and correlation) as one parameterized ClickHouse query over the
audit store's stored raw events, with the same semantics as the streaming engine, and prints one
JSON line per match: {"rule","title","author","eventId","source","time"}; correlations print
{"correlation","title","author","group","value","time","events"}. Progress and totals go to stderr.`;

function isoArg(name: string, value: string | undefined): string {
  if (!value) throw new GlasswatchError('BG_CLI_USAGE', `hunt needs --${name} ISO-8601`, { stage: 'config', hint: HELP.split('\n')[0] });
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new GlasswatchError('BG_CLI_USAGE', `--${name} is not an ISO 8601 time: "${value}"`, { stage: 'config' });
  return new Date(ms).toISOString();
}

export async function huntCommand(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        store: { type: 'string' },
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      say(HELP);
      return 0;
    }
    if (positionals.length === 0)
      throw new GlasswatchError('BG_CLI_USAGE', 'hunt needs rule files or folders', { stage: 'config', hint: HELP.split('\n')[0] });
    const from = isoArg('from', values.from);
    const to = isoArg('to', values.to);
    if (from >= to) throw new GlasswatchError('BG_CLI_USAGE', `--from (${from}) must be before --to (${to})`, { stage: 'config' });
    const loaded = loadRules(positionals);
    for (const r of loaded.rejected) say(`rejected [${r.code}] ${r.message}`);
    const config = loadConfig(values.config, values.store ? { storePath: values.store } : {});
    const store = openStore(config.store);
    const started = Date.now();
    let matches = 0;
    try {
      await migrate(store, { retentionDays: config.retentionDays });
      const run = async <T>(q: { sql: string; params: Record<string, unknown> }) =>
        (await store.client.query({ query: q.sql, query_params: q.params, format: 'JSONEachRow' })).json<T>();
      let done = 0;
      const total = loaded.rules.length + loaded.correlations.length;
      for (const rule of loaded.rules) {
        const rows = await run<{ source: string; id: string; time: string }>(compileRuleSql(rule, { from, to }));
        for (const row of rows)
          process.stdout.write(
            terminalSafe(
              `${JSON.stringify({ rule: ruleKey(rule), title: rule.title, author: rule.author ?? null, eventId: row.id, source: row.source, time: row.time })}\n`,
            ),
          );
        matches += rows.length;
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
        for (const row of rows) {
          process.stdout.write(
            terminalSafe(
              `${JSON.stringify({ correlation: c.id ?? c.name ?? c.title, title: c.title, author: c.author ?? null, group: JSON.parse(row.group_values), value: Number(row.value), time: new Date(Number(row.time_ms)).toISOString(), events: Number(row.events) })}\n`,
            ),
          );
        }
        matches += rows.length;
        if (++done % 25 === 0 || done === total) say(`hunt: ${done}/${total} rules, ${matches} matches`);
      }
      say(
        `hunt: ${loaded.rules.length} rules, ${loaded.correlations.length} correlations over ${from} .. ${to} in ${store.describe}: ${matches} matches in ${Date.now() - started} ms`,
      );
      return 0;
    } finally {
      await store.close();
    }
  } catch (err) {
    return fail(err);
  }
}

function ruleKey(rule: RuleIR): string {
  return rule.id ?? (rule.name ? `name:${rule.name}` : rule.title);
}
