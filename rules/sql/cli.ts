/**
 * `glasswatch rules sql <rule files…> [--from T] [--to T] [--table NAME] [--placeholders file.json]`:
 * prints, one JSON object per line, the SQL and parameters of every rule and correlation.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type LoadOptions, loadRules, type RuleIR } from '../engine/index.js';
import { compileRuleSql, type SqlOptions } from './compile.js';
import { compileCorrelationSql } from './correlate.js';

type Write = (text: string) => void;

export const SQL_USAGE =
  '  glasswatch rules sql <rule files or dirs...> [--from <ISO time>] [--to <ISO time>] [--table <name>] [--placeholders <json file>]\n';

export function sqlCommand(args: string[], out: Write, err: Write): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { from: { type: 'string' }, to: { type: 'string' }, table: { type: 'string' }, placeholders: { type: 'string' } },
  });
  if (positionals.length === 0) {
    err(`usage:\n${SQL_USAGE}`);
    return 2;
  }
  const load: LoadOptions = {};
  if (values.placeholders) load.placeholders = JSON.parse(readFileSync(values.placeholders, 'utf8')) as Record<string, string[]>;
  const loaded = loadRules(positionals, load);
  for (const r of loaded.rejected) err(`rejected [${r.code}] ${r.message}\n`);
  const options: SqlOptions = {};
  if (values.from !== undefined) options.from = values.from;
  if (values.to !== undefined) options.to = values.to;
  if (values.table !== undefined) options.table = values.table;
  let failed = loaded.rejected.length;
  const emit = (head: Record<string, unknown>, compile: () => { sql: string; params: Record<string, unknown> }): void => {
    try {
      out(`${JSON.stringify({ ...head, ...compile() })}\n`);
    } catch (e) {
      failed++;
      err(`${head.file}: ${String(head.title)}: ${(e as Error).message}\n`);
    }
  };
  for (const rule of loaded.rules)
    emit({ kind: 'rule', rule: rule.key, title: rule.title, file: rule.file }, () => compileRuleSql(rule, options));
  const byId = new Map<string, RuleIR>(loaded.rules.map((r) => [r.key, r]));
  for (const c of loaded.correlations)
    emit({ kind: 'correlation', correlation: c.key, title: c.title, file: c.file }, () => compileCorrelationSql(c, byId, options));
  return failed ? 1 : 0;
}
