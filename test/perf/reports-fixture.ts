/**
 * The synthetic audit store of the report benchmark, shared with test/reports/report-rows.test.ts so
 * the rows the benchmark times are the rows the test pins.
 *
 * N events spread evenly over 90 days (a third each CloudTrail, Okta, Kubernetes; one in 9,973 a
 * credential change that counts as rotation evidence) are generated inside the engine with
 * INSERT ... SELECT FROM numbers() in batches of 1M, so the load measures the store, not JavaScript.
 * Proportionate side tables: N/200 sessions with 3 versions each, inserted separately, (a quarter
 * unauthorized; each keyed by the handle of 40 events from its first, about 13 of them its own source's), one ticket per authorized session plus unused and self-approved ones, N/20 alerts,
 * one or two revocations per unauthorized session. Every INSERT names its columns, so a column a
 * later migration adds (with a default) cannot break it.
 */
import type { Store } from '../../core/store/index.js';

export const BASE = Date.parse('2026-01-01T00:00:00Z');
export const SPAN = 90 * 86_400_000;

export interface AuditStoreSize {
  events: number;
  sessions: number;
  alerts: number;
}

export function auditStoreSize(n: number): AuditStoreSize {
  return { events: n, sessions: Math.max(10, Math.floor(n / 200)), alerts: Math.max(10, Math.floor(n / 20)) };
}

export const EVENTS = `
INSERT INTO events (source, id, time, actor_id, actor_name, actor_type, session_key, action, targets, outcome, outcome_reason, source_ip, user_agent, account, org, cluster, raw)
SELECT
  ['cloudtrail', 'okta', 'k8s'][number % 3 + 1] AS src,
  concat('e-', toString(number)),
  fromUnixTimestamp64Milli(toInt64({base:Int64} + intDiv(number * {span:Int64}, {n:Int64})), 'UTC'),
  concat('p-', toString(number % 5000)),
  if(rotation AND src = 'cloudtrail', 'Root', concat('user-', toString(number % 5000))),
  if(rotation AND src = 'cloudtrail', 'Root', ['IAMUser', 'User', 'User'][number % 3 + 1]),
  concat('k-', toString(intDiv(number, 40))),
  multiIf(
    rotation AND src = 'cloudtrail', 'signin.amazonaws.com:PasswordUpdated',
    rotation AND src = 'okta', 'user.account.reset_password',
    src = 'cloudtrail', ['ec2.amazonaws.com:DescribeInstances', 's3.amazonaws.com:GetObject', 'sts.amazonaws.com:AssumeRole', 'iam.amazonaws.com:ListUsers', 'kms.amazonaws.com:Decrypt', 'iam.amazonaws.com:CreateAccessKey', 'ssm.amazonaws.com:GetParameter', 'lambda.amazonaws.com:ListFunctions'][intDiv(number, 3) % 8 + 1],
    src = 'okta', ['user.authentication.sso', 'user.session.start', 'policy.evaluate_sign_on', 'user.account.update_password', 'app.oauth2.token.grant', 'user.session.end', 'group.user_membership.add', 'user.mfa.factor.activate'][intDiv(number, 3) % 8 + 1],
    ['get pods', 'list pods', 'watch endpoints', 'get configmaps', 'create pods/exec', 'get secrets', 'list nodes', 'patch deployments'][intDiv(number, 3) % 8 + 1]
  ),
  if(rotation AND src = 'okta', concat('[{"id":"00u","type":"User","name":"emergency-admin-', toString(number % 5), '@example.com"}]'), '[]'),
  if(number % 97 = 0, 'failure', 'success'),
  '',
  concat('198.51.100.', toString(number % 250)),
  'bench/1.0',
  if(src = 'cloudtrail', '111122223333', ''),
  if(src = 'okta', 'example.okta.com', ''),
  if(src = 'k8s', 'prod-eu1', ''),
  concat('{"n":', toString(number), '}')
FROM (SELECT number, number % 9973 = 0 AS rotation FROM numbers({from:UInt64}, {count:UInt64}))`;

export const SESSIONS_SQL = `
INSERT INTO sessions (session_id, version, identity, source, principal, verdict, reason, ticket_id, approvers,
  first_event_id, unauthorized_event_id, start, end, events, activity_command, activity_data, activity_config, source_ips,
  account, org, cluster, detected_at, keys)
SELECT
  concat('bgs-', toString(s)) AS session_id,
  toUInt64(v) AS version,
  ['aws-root', 'aws-breakglass-role', 'okta-emergency-admin', 'k8s-breakglass'][s % 4 + 1] AS identity,
  ['cloudtrail', 'cloudtrail', 'okta', 'k8s'][s % 4 + 1] AS source,
  [ 'Root', 'arn:aws:sts::111122223333:assumed-role/BreakGlassAdmin/alice', concat('emergency-admin-', toString(s % 5), '@example.com'), 'breakglass-admin'][s % 4 + 1] AS principal,
  if(v = 3 AND intDiv(s, 4) % 4 = 0, 'unauthorized', 'authorized') AS verdict,
  if(verdict = 'unauthorized', ['no_ticket', 'outside_window', 'self_approved'][s % 3 + 1], '') AS reason,
  if(verdict = 'unauthorized' AND reason = 'no_ticket', '', concat('T-', toString(s))) AS ticket_id,
  ['bob@example.com'],
  concat('e-', toString(s * 200)),
  if(verdict = 'unauthorized', concat('e-', toString(s * 200 + 3)), ''),
  start,
  start + toIntervalMinute(10 + s % 110) AS end,
  toUInt32(5 * v), toUInt32(v), toUInt32(s % 3), toUInt32(s % 2),
  ['203.0.113.7'],
  if(source = 'cloudtrail', '111122223333', ''), if(source = 'okta', 'example.okta.com', ''), if(source = 'k8s', 'prod-eu1', ''),
  start + toIntervalSecond(1),
  -- The handle of the session's events (e-200s .. e-200s+39 carry k-5s): the activity report's actions.
  [concat(identity, '\\0', 'k-', toString(s * 5))]
FROM (
  SELECT intDiv(number, 3) AS s, number % 3 + 1 AS v,
         fromUnixTimestamp64Milli(toInt64({base:Int64} + intDiv(intDiv(number, 3) * {span:Int64}, {s:Int64})), 'UTC') AS start
  FROM numbers({s:UInt64} * 3)
)
WHERE version = {v:UInt8}`;

export const TICKETS = `
INSERT INTO tickets (ticket_id, updated_at, identities, requester, approvers, status, not_before, not_after, scope_accounts, scope_orgs, scope_clusters, reason, origin)
SELECT
  concat(if(unused, 'U-', 'T-'), toString(s)),
  start - toIntervalHour(2),
  [['aws-root', 'aws-breakglass-role', 'okta-emergency-admin', 'k8s-breakglass'][s % 4 + 1]],
  'alice@example.com',
  if(s % 97 = 0, ['alice@example.com'], ['bob@example.com']),
  'approved',
  start - toIntervalMinute(30),
  start + toIntervalMinute(if(s % 13 = 0, 20, 180)),
  [], [], [], 'bench', 'file'
FROM (
  SELECT number % {s:UInt64} AS s, number >= {s:UInt64} AS unused,
         fromUnixTimestamp64Milli(toInt64({base:Int64} + intDiv((number % {s:UInt64}) * {span:Int64}, {s:Int64})), 'UTC') AS start
  FROM numbers({s:UInt64} + intDiv({s:UInt64}, 50))
)
WHERE unused OR intDiv(s, 4) % 4 != 0 OR s % 3 != 0`;

export const ALERTS_SQL = `
INSERT INTO alerts (alert_id, type, severity, identity, source, event_ids, ticket_id, reason, category, rule_id, rule_title,
  rule_author, session_id, principal, source_ip, time, detected_at, summary)
SELECT
  concat('gw-', toString(number)),
  multiIf(number % 50 = 0, 'breakglass.attempt', number % 10 = 1, 'breakglass.authorized', 'breakglass.activity') AS type,
  'high',
  ['aws-root', 'aws-breakglass-role', 'okta-emergency-admin', 'k8s-breakglass'][s % 4 + 1],
  ['cloudtrail', 'cloudtrail', 'okta', 'k8s'][s % 4 + 1],
  [concat('e-', toString(number * 20))],
  concat('T-', toString(s)),
  '', if(type = 'breakglass.activity', ['command', 'data', 'config'][number % 3 + 1], ''), '', '', '',
  concat('bgs-', toString(s)), 'principal', '203.0.113.7',
  t, t + toIntervalSecond(1), 'bench alert'
FROM (
  SELECT number, intDiv(number * {s:UInt64}, {a:UInt64}) AS s,
         fromUnixTimestamp64Milli(toInt64({base:Int64} + intDiv(number * {span:Int64}, {a:Int64})), 'UTC') AS t
  FROM numbers({a:UInt64})
)`;

export const REVOCATIONS = `
INSERT INTO revocations (revocation_id, alert_id, session_id, identity, target, principal, outcome, detail, attempts,
  requested_at, completed_at, time_to_revoke_ms)
SELECT
  concat('gw-u', toString(s), ':', target), concat('gw-u', toString(s)), concat('bgs-', toString(s)),
  ['aws-root', 'aws-breakglass-role', 'okta-emergency-admin', 'k8s-breakglass'][s % 4 + 1],
  target, 'principal', if(s % 3 = 0, 'failed', 'revoked'), 'bench', toUInt16(1 + s % 3),
  start + toIntervalSecond(1), start + toIntervalSecond(3), toInt64(3000)
FROM (
  SELECT intDiv(number, 2) AS s, ['aws', 'webhook'][number % 2 + 1] AS target,
         fromUnixTimestamp64Milli(toInt64({base:Int64} + intDiv(intDiv(number, 2) * {span:Int64}, {s:Int64})), 'UTC') AS start
  FROM numbers({s:UInt64} * 2)
)
WHERE intDiv(s, 4) % 4 = 0 AND (target = 'aws' OR s % 2 = 0)`;

/** Fills a migrated, empty store. `progress` is told after each batch of events. */
export async function loadAuditStore(
  store: Store,
  n: number,
  progress: (events: number) => void = () => {},
): Promise<{ eventsMs: number; sideMs: number }> {
  const size = auditStoreSize(n);
  const params = { base: BASE, span: SPAN, n, s: size.sessions, a: size.alerts };
  const run = (query: string, extra: Record<string, unknown> = {}) =>
    store.client.command({ query, query_params: { ...params, ...extra } });
  const t0 = performance.now();
  const BATCH = 1_000_000;
  for (let from = 0; from < n; from += BATCH) {
    await run(EVENTS, { from, count: Math.min(BATCH, n - from) });
    progress(Math.min(n, from + BATCH));
  }
  const eventsMs = performance.now() - t0;
  const t1 = performance.now();
  // One insert per version, as the detector writes them: the versions stay in separate parts until merged.
  for (const v of [1, 2, 3]) await run(SESSIONS_SQL, { v });
  await run(TICKETS);
  await run(ALERTS_SQL);
  await run(REVOCATIONS);
  return { eventsMs, sideMs: performance.now() - t1 };
}
