/**
 * Store insert rate with and without the hunt columns: materialized field columns, skip indexes, raw_hash
 * and id_hash (migrations 4, 5 and 17), and of the current `events` (which also feeds the credential-changes view).
 *
 *   node --import tsx test/perf/bench-store-insert.ts      BENCH_EVENTS=300000 (default; smoke 10,000)
 *
 * Method: one chDB store holds `events` (the current schema) and `events_v3`, the same table as
 * migration 1 created it (what every store had before migration 4), and `events_hunt`, that table with
 * the hunt columns alone. The same batches of 50,000
 * synthetic events (a third each CloudTrail, Okta, Kubernetes, raw JSON of ~470 bytes, CloudTrail identities shaped as AWS writes them, all
 * normalized columns set, JSONEachRow through @clickhouse/client as StoreWriter sends them) are
 * inserted into all three, each going first in turn, so all see the same machine load.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, migrations, openStore } from '../../core/store/index.js';
import { benchSize, figure } from './figures.js';
import { userIdentity } from './identities.js';

const N = Number(process.env.BENCH_EVENTS ?? benchSize({ full: 300_000, smoke: 10_000 }));
const BATCH = Math.min(N, 50_000);

let seed = 0x2545f491;
const rnd = (n: number): number => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)] as T;

function raw(source: string, i: number, time: string): Record<string, unknown> {
  if (source === 'cloudtrail')
    return {
      eventVersion: '1.08',
      userIdentity: userIdentity(pick(['IAMUser', 'AssumedRole', 'Root'] as const), rnd(500), rnd(100) === 0),
      eventTime: time,
      eventSource: pick(['s3.amazonaws.com', 'iam.amazonaws.com', 'sts.amazonaws.com', 'cloudtrail.amazonaws.com']),
      eventName: pick(['GetObject', 'PutObject', 'AssumeRole', 'CreateUser', 'StopLogging', 'ListUsers']),
      awsRegion: 'eu-west-1',
      sourceIPAddress: `10.${rnd(256)}.${rnd(256)}.${rnd(256)}`,
      userAgent: 'aws-cli/2.13 Python/3.11',
      requestParameters: { bucketName: `b${rnd(100)}`, key: `k/${i}` },
      ...(rnd(20) === 0 ? { errorCode: 'AccessDenied' } : {}),
      eventID: `e${i}`,
      eventType: 'AwsApiCall',
    };
  if (source === 'okta')
    return {
      uuid: `o${i}`,
      published: time,
      eventType: pick(['user.session.start', 'user.authentication.sso', 'user.account.reset_password', 'policy.evaluate_sign_on']),
      actor: { id: `00u${rnd(1000)}`, type: 'User', alternateId: `user${rnd(1000)}@example.com`, displayName: 'User' },
      outcome: { result: pick(['SUCCESS', 'FAILURE']) },
      client: { ipAddress: `198.51.100.${rnd(250)}`, userAgent: { rawUserAgent: 'Mozilla/5.0' } },
      target: [{ id: `0oa${rnd(100)}`, type: 'AppInstance', displayName: 'App' }],
    };
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `k${i}`,
    stage: 'ResponseComplete',
    requestURI: `/api/v1/namespaces/default/pods/p${rnd(100)}`,
    verb: pick(['get', 'list', 'watch', 'create', 'delete', 'patch']),
    user: { username: `system:serviceaccount:default:sa${rnd(50)}`, groups: ['system:authenticated'] },
    sourceIPs: [`10.0.${rnd(256)}.${rnd(256)}`],
    objectRef: { resource: pick(['pods', 'secrets', 'configmaps', 'deployments']), namespace: 'default', apiGroup: pick(['', 'apps']) },
    responseStatus: { code: 200 },
    requestReceivedTimestamp: time,
  };
}

function row(i: number): Record<string, unknown> {
  const source = ['cloudtrail', 'okta', 'k8s'][i % 3] as string;
  const time = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
  return {
    source,
    id: `${source}-${i}`,
    time,
    actor_id: `p-${rnd(5000)}`,
    actor_name: `user-${rnd(5000)}`,
    actor_type: 'User',
    session_key: `k-${Math.floor(i / 40)}`,
    action: 'x',
    targets: '[]',
    outcome: 'success',
    outcome_reason: '',
    source_ip: `198.51.100.${rnd(250)}`,
    user_agent: 'bench/1.0',
    account: source === 'cloudtrail' ? '111122223333' : '',
    org: source === 'okta' ? 'example.okta.com' : '',
    cluster: source === 'k8s' ? 'prod-eu1' : '',
    raw: JSON.stringify(raw(source, i, time)),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'gw-bench-insert-'));
const store = openStore({ kind: 'chdb', path: join(dir, 'store') });
try {
  await migrate(store, { retentionDays: 20_000 });
  const all = migrations({ retentionDays: 20_000 });
  const v1 = all[0]!.statements[0]!;
  await store.client.command({ query: v1.replace('events (', 'events_v3 (') });
  // The v3 table with every hunt column the migrations add (field columns, their indexes, raw_hash,
  // id_hash) and nothing else: `events` also feeds the credential-changes view (migration 16).
  await store.client.command({ query: v1.replace('events (', 'events_hunt (') });
  for (const m of all.filter((x) => x.version > 3))
    for (const statement of m.statements.filter((x) => x.startsWith('ALTER TABLE events ')))
      await store.client.command({ query: statement.replace('ALTER TABLE events ', 'ALTER TABLE events_hunt ') });
  const tables = ['events', 'events_v3', 'events_hunt'];
  const ms: Record<string, number> = { events: 0, events_v3: 0, events_hunt: 0 };
  let bytes = 0;
  for (let i = 0, round = 0; i < N; i += BATCH, round++) {
    const batch = Array.from({ length: Math.min(BATCH, N - i) }, (_, j) => row(i + j));
    bytes += batch.reduce((n, r) => n + (r.raw as string).length, 0);
    // Each table goes first in turn, so all see the same machine load.
    const order = tables.map((_, k) => tables[(k + round) % tables.length] as string);
    for (const table of order) {
      const t0 = performance.now();
      await store.client.insert({
        table,
        values: batch,
        format: 'JSONEachRow',
        clickhouse_settings: { date_time_input_format: 'best_effort' },
      });
      ms[table]! += performance.now() - t0;
    }
  }
  const rate = (t: string) => N / (ms[t]! / 1000);
  const before = rate('events_v3');
  const hunt = rate('events_hunt');
  const after = rate('events');
  console.log(
    `store insert: ${N.toLocaleString('en-US')} events (mean raw ${Math.round(bytes / N)} B), batches of ${BATCH.toLocaleString('en-US')}`,
  );
  console.log(`  without field columns (schema v3)  ${Math.round(before).toLocaleString('en-US').padStart(9)} events/s`);
  console.log(
    `  with the hunt columns only        ${Math.round(hunt).toLocaleString('en-US').padStart(9)} events/s  (${((hunt / before - 1) * 100).toFixed(0)}%)`,
  );
  console.log(
    `  current (and credential view)     ${Math.round(after).toLocaleString('en-US').padStart(9)} events/s  (${((after / before - 1) * 100).toFixed(0)}%)`,
  );
  figure('store insert rate, schema v3', before, 'events/s', { events: N, batch: BATCH });
  figure('store insert rate, current schema', after, 'events/s', { events: N, batch: BATCH });
  figure('store insert rate change', (after / before - 1) * 100, '%', { events: N, batch: BATCH });
  figure('store insert rate, hunt columns only', hunt, 'events/s', { events: N, batch: BATCH });
  figure('store insert rate change, hunt columns only', (hunt / before - 1) * 100, '%', { events: N, batch: BATCH });
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
