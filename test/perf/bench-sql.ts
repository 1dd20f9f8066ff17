/**
 * SQL back end figures.
 *
 *   node --import tsx test/perf/bench-sql.ts <datasets-dir> [--events N]
 *
 * 1. Compile time of every rule of `<datasets>/sigma-rules-all/rules` (load time apart).
 * 2. Query time of six compiled rules (four SigmaHQ, two of our pack) over N synthetic CloudTrail
 *    events (default 1,000,000; every one with an eventType, as real records have) in a temporary
 *    chDB store, read as `glasswatch hunt` reads them. Each query runs 3 times; every time is printed
 *    (the first includes reading the parts from disk into the page cache), the median is the figure.
 *    BENCH_STORE=<folder> keeps the store there and reuses it when it holds N events.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ruleMatches } from '../../cli/hunt.js';
import { migrate, openStore } from '../../core/store/index.js';
import { loadRules, type RuleIR } from '../../rules/engine/index.js';
import { compileRuleSql } from '../../rules/sql/index.js';
import { benchSize, figure } from './figures.js';
import { userIdentity } from './identities.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { events: { type: 'string' } } });
const datasets = positionals[0];
if (!datasets) {
  process.stderr.write('usage: node --import tsx test/perf/bench-sql.ts <datasets-dir> [--events N]\n');
  process.exit(2);
}
const N = Number(values.events ?? process.env.BENCH_EVENTS ?? benchSize({ full: 1_000_000, smoke: 20_000 }));
// The smoke size compiles the aws/okta/k8s subset only: loading all 3,000 rules alone takes ~10 s here.
const corpus = benchSize({ full: join(datasets, 'sigma-rules-all', 'rules'), smoke: join(datasets, 'sigma-rules') });

let t = performance.now();
const all = loadRules([corpus], { legacyCollections: true });
const loadMs = performance.now() - t;
t = performance.now();
let sqlBytes = 0;
let failed = 0;
for (const rule of all.rules) {
  try {
    sqlBytes += compileRuleSql(rule).sql.length;
  } catch {
    failed++;
  }
}
const compileMs = performance.now() - t;
console.log(
  `${corpus.slice(datasets.length + 1)}: ${all.rules.length} rules loaded in ${loadMs.toFixed(0)} ms (${all.rejected.length} rejected)`,
);
console.log(
  `compiled to SQL in ${compileMs.toFixed(0)} ms (${((compileMs * 1000) / all.rules.length).toFixed(0)} µs/rule, ${failed} failed, mean SQL ${(sqlBytes / Math.max(1, all.rules.length - failed) / 1024).toFixed(1)} KiB)`,
);
figure('sql compile per rule', (compileMs * 1000) / all.rules.length, 'µs', { rules: all.rules.length, failed });

/** Deterministic generator (xorshift) so runs are comparable. */
let seed = 0x9e3779b9;
const rnd = (n: number): number => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};
const NAMES = [
  'GetObject',
  'PutObject',
  'AssumeRole',
  'ConsoleLogin',
  'CreateUser',
  'DescribeInstances',
  'GetCallerIdentity',
  'StopLogging',
  'DeleteTrail',
  'CreateAccessKey',
];
const SOURCES = [
  's3.amazonaws.com',
  'sts.amazonaws.com',
  'signin.amazonaws.com',
  'iam.amazonaws.com',
  'ec2.amazonaws.com',
  'cloudtrail.amazonaws.com',
];
function event(i: number) {
  const name = NAMES[rnd(NAMES.length)] as string;
  const time = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
  const raw = {
    eventVersion: '1.08',
    // Root 1 in 50, an assumed role 1 in 25 (so SigmaHQ's broad assume-role rule matches ~400k, as the
    // other broad rules here), an IAM user otherwise; 1 user or role in 100 a break-glass one.
    userIdentity: userIdentity(rnd(50) === 0 ? 'Root' : rnd(25) === 0 ? 'AssumedRole' : 'IAMUser', rnd(500), rnd(100) === 0),
    eventTime: time,
    eventSource: SOURCES[rnd(SOURCES.length)],
    eventName: name,
    // Every CloudTrail record has one; AWS services' own records are 1 in 25 here.
    eventType: name === 'ConsoleLogin' ? 'AwsConsoleSignIn' : rnd(25) === 0 ? 'AwsServiceEvent' : 'AwsApiCall',
    awsRegion: 'eu-west-1',
    sourceIPAddress: `10.${rnd(256)}.${rnd(256)}.${rnd(256)}`,
    userAgent: rnd(10) === 0 ? 'aws-cli/2.13 Python/3.11' : 'console.amazonaws.com',
    requestParameters: { bucketName: `b${rnd(100)}`, key: `k/${i}` },
    ...(rnd(20) === 0 ? { errorCode: 'AccessDenied' } : {}),
    eventID: `e${i}`,
  };
  return { source: 'cloudtrail', id: raw.eventID, time, raw: JSON.stringify(raw) };
}

// BENCH_STORE=<folder> keeps the generated store there and reuses it on the next run (to study a query).
const kept = process.env.BENCH_STORE;
const dir = kept ?? mkdtempSync(join(tmpdir(), 'gw-bench-sql-'));
const store = openStore({ kind: 'chdb', path: kept ?? join(dir, 'store') });
try {
  await migrate(store, { retentionDays: 20_000 });
  const stored = Number(
    (await (await store.client.query({ query: 'SELECT count() AS n FROM events', format: 'JSONEachRow' })).json<{ n: string }>())[0]?.n,
  );
  const reuse = kept !== undefined && stored === N;
  t = performance.now();
  for (let i = 0; i < (reuse ? 0 : N); i += 50_000) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 50_000); j++) batch.push(event(j));
    await store.client.insert({
      table: 'events',
      values: batch,
      format: 'JSONEachRow',
      clickhouse_settings: { date_time_input_format: 'best_effort' },
    });
  }
  const storeMs = performance.now() - t;
  if (reuse) console.log(`reusing ${N} stored synthetic CloudTrail events in ${dir}`);
  else {
    console.log(
      `stored ${N} synthetic CloudTrail events in ${(storeMs / 1000).toFixed(1)} s = ${Math.round(N / (storeMs / 1000))} events/s`,
    );
    figure('store insert rate', N / (storeMs / 1000), 'events/s', { events: N, batch: 50_000, format: 'JSONEachRow' });
  }

  const subset = loadRules([join(datasets, 'sigma-rules', 'rules', 'cloud', 'aws')]);
  const pick = (file: string): RuleIR => {
    const r = subset.rules.find((x) => x.file.endsWith(file));
    if (!r) throw new Error(`rule ${file} not found`);
    return r;
  };
  // Our pack's root rule (presence of invokedBy, decided on the columns) and its CloudTrail tampering
  // rule (`contains` on identity fields: the JSON is read for every candidate).
  const pack = loadRules([fileURLToPath(new URL('../../rules/breakglass', import.meta.url))]);
  const packRule = (file: string): RuleIR => {
    const r = pack.rules.find((x) => x.file.endsWith(file));
    if (!r) throw new Error(`pack rule ${file} not found`);
    return r;
  };
  const rules = [
    pick('aws_root_account_usage.yml'), // nested path + null + neq-like not
    pick('aws_cloudtrail_disable_logging.yml'), // OR of equalities
    pick('aws_sts_assumerole_misuse.yml'), // nested equality, broad
    pick('aws_enum_buckets.yml'), // contains on a nested field
    packRule('aws_root_activity.yml'),
    packRule('aws_breakglass_cloudtrail_tampering.yml'),
  ];
  for (const rule of rules) {
    const times: number[] = [];
    const cpu: number[] = [];
    let rows = 0;
    for (let k = 0; k < 3; k++) {
      t = performance.now();
      const c0 = process.cpuUsage();
      // As `glasswatch hunt` reads a rule's matches.
      rows = (await ruleMatches(store, rule, {})).id.length;
      times.push(performance.now() - t);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
    }
    const file = rule.file.split('/').pop() as string;
    // chDB runs inside this process: its CPU time is the engine's work, which a busy shared machine
    // does not inflate the way it inflates wall time.
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1] as number;
    console.log(
      `${file}: ${rows} matches over ${N} events, ${times.map((x) => `${(x / 1000).toFixed(2)} s`).join(' / ')} (CPU ${cpu.map((x) => `${(x / 1000).toFixed(2)} s`).join(' / ')})`,
    );
    figure(`retro-hunt ${file}`, median(times), 'ms', { events: N, matches: rows, statistic: 'median of 3' });
    figure(`retro-hunt ${file} CPU`, median(cpu), 'ms', { events: N, matches: rows, statistic: 'median of 3, process CPU time' });
  }
} finally {
  await store.close();
  if (!kept) rmSync(dir, { recursive: true, force: true });
}
