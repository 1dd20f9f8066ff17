import { createClient } from '@clickhouse/client';
import { GlasswatchError } from '../errors.js';
import type { Store } from './client.js';
import { onCluster } from './cluster.js';

/**
 * Versioned schema. A migration is applied once, recorded in `schema_migrations`,
 * and written so that re-running it is harmless (IF NOT EXISTS), because a crash
 * between the DDL and the bookkeeping insert must not wedge the next start.
 *
 * Tables are ReplacingMergeTree keyed by the record's natural id: re-inserting the
 * same event or dead letter collapses to one row, and readers that must be exact
 * before merges happen use `LIMIT 1 BY` on the key rather than FINAL.
 */
export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

export interface SchemaOptions {
  /** Days events and dead letters are kept. @default 400 (13 months: a year of audits plus a margin) */
  retentionDays?: number;
  /** Days evidence (sessions, alerts, tickets, revocations, deliveries, audit log) is kept. @default 2557 (7 years) */
  evidenceRetentionDays?: number;
}

export function migrations(options: SchemaOptions = {}): Migration[] {
  const days = options.retentionDays ?? 400;
  // TTL is DDL and cannot take a query parameter; it is a validated positive integer. The
  // upper bound keeps `toDateTime(time) + INTERVAL n DAY` below DateTime's 2106 limit, past
  // which the sum wraps and every row would expire on insert.
  if (!Number.isInteger(days) || days <= 0 || days > 20_000) {
    throw new GlasswatchError('BG_STORE_RETENTION', `store.retentionDays must be a whole number of days in 1..20000, got ${days}`, {
      stage: 'config',
    });
  }
  const evidenceDays = options.evidenceRetentionDays ?? Math.max(2557, days);
  if (!Number.isInteger(evidenceDays) || evidenceDays < days || evidenceDays > 20_000) {
    throw new GlasswatchError(
      'BG_STORE_RETENTION',
      `store.evidenceRetentionDays must be a whole number of days in ${days}..20000 (at least store.retentionDays), got ${evidenceDays}`,
      { stage: 'config' },
    );
  }
  return [
    {
      version: 1,
      name: 'events and dead letters',
      statements: [
        `CREATE TABLE IF NOT EXISTS events (
          source LowCardinality(String),
          id String,
          time DateTime64(3, 'UTC'),
          actor_id String,
          actor_name String,
          actor_type LowCardinality(String),
          session_key String,
          action LowCardinality(String),
          targets String,
          outcome LowCardinality(String),
          outcome_reason String,
          source_ip String,
          user_agent String,
          account String,
          org String,
          cluster String,
          raw String,
          ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(ingested_at)
        PARTITION BY toYYYYMM(time)
        ORDER BY (source, toDate(time), id)
        TTL toDateTime(time) + INTERVAL ${days} DAY`,
        `CREATE TABLE IF NOT EXISTS dead_letters (
          id String,
          at DateTime64(3, 'UTC'),
          source LowCardinality(String),
          stage LowCardinality(String),
          reason String,
          file String,
          line Nullable(UInt32),
          idx Nullable(UInt32),
          text String
        ) ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMM(at)
        ORDER BY id
        TTL toDateTime(at) + INTERVAL ${days} DAY`,
      ],
    },
    {
      version: 2,
      name: 'tickets, sessions, alerts, deliveries, revocations, report deliveries',
      statements: [
        // Every version of every ticket: verdicts can be re-derived at report time.
        `CREATE TABLE IF NOT EXISTS tickets (
          ticket_id String,
          updated_at DateTime64(3, 'UTC'),
          identities Array(String),
          requester String,
          approvers Array(String),
          status LowCardinality(String),
          not_before DateTime64(3, 'UTC'),
          not_after DateTime64(3, 'UTC'),
          scope_accounts Array(String),
          scope_orgs Array(String),
          scope_clusters Array(String),
          reason String,
          origin LowCardinality(String),
          received_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(received_at)
        ORDER BY (ticket_id, updated_at)`,
        // One row per session state; the highest version is the session.
        `CREATE TABLE IF NOT EXISTS sessions (
          session_id String,
          version UInt64,
          identity LowCardinality(String),
          source LowCardinality(String),
          principal String,
          verdict LowCardinality(String),
          reason LowCardinality(String),
          ticket_id String,
          approvers Array(String),
          first_event_id String,
          unauthorized_event_id String,
          start DateTime64(3, 'UTC'),
          end DateTime64(3, 'UTC'),
          events UInt32,
          activity_command UInt32,
          activity_data UInt32,
          activity_config UInt32,
          source_ips Array(String),
          account String,
          org String,
          cluster String,
          detected_at Nullable(DateTime64(3, 'UTC'))
        ) ENGINE = ReplacingMergeTree(version)
        PARTITION BY toYYYYMM(start)
        ORDER BY session_id
        TTL toDateTime(start) + INTERVAL ${days} DAY`,
        `CREATE TABLE IF NOT EXISTS alerts (
          alert_id String,
          type LowCardinality(String),
          severity LowCardinality(String),
          identity String,
          source LowCardinality(String),
          event_ids Array(String),
          ticket_id String,
          reason String,
          category LowCardinality(String),
          rule_id String,
          rule_title String,
          rule_author String,
          session_id String,
          principal String,
          source_ip String,
          time DateTime64(3, 'UTC'),
          detected_at DateTime64(3, 'UTC'),
          summary String
        ) ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMM(time)
        ORDER BY alert_id
        TTL toDateTime(time) + INTERVAL ${days} DAY`,
        `CREATE TABLE IF NOT EXISTS alert_deliveries (
          alert_id String,
          output LowCardinality(String),
          status LowCardinality(String),
          attempts UInt16,
          at DateTime64(3, 'UTC'),
          message_id String,
          error String
        ) ENGINE = ReplacingMergeTree(at)
        ORDER BY (output, alert_id)`,
        `CREATE TABLE IF NOT EXISTS revocations (
          revocation_id String,
          alert_id String,
          session_id String,
          identity LowCardinality(String),
          target LowCardinality(String),
          principal String,
          outcome LowCardinality(String),
          detail String,
          attempts UInt16,
          requested_at DateTime64(3, 'UTC'),
          completed_at DateTime64(3, 'UTC'),
          time_to_revoke_ms Int64
        ) ENGINE = ReplacingMergeTree(completed_at)
        PARTITION BY toYYYYMM(requested_at)
        ORDER BY revocation_id`,
        `CREATE TABLE IF NOT EXISTS report_deliveries (
          delivery_id String,
          report LowCardinality(String),
          schedule String,
          period_from DateTime64(3, 'UTC'),
          period_to DateTime64(3, 'UTC'),
          recipients Array(String),
          status LowCardinality(String),
          attempts UInt16,
          message_id String,
          digest String,
          error String,
          at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree(at)
        ORDER BY delivery_id`,
      ],
    },
    {
      version: 3,
      name: 'session keys, so a restarted live detector continues open sessions',
      statements: ['ALTER TABLE sessions ADD COLUMN IF NOT EXISTS keys Array(String) DEFAULT []'],
    },
    {
      version: 4,
      name: 'materialized rule fields and skip indexes, so a retro-hunt reads small columns before any JSON',
      statements: [
        ...fieldColumnStatements(4),
        // The sort key holds toDate(time) only: a window of hours inside a day is pruned by this.
        'ALTER TABLE events ADD INDEX IF NOT EXISTS time_minmax time TYPE minmax GRANULARITY 1',
      ],
    },
    {
      version: 5,
      name: "hash of raw, so deduplicating a hunt's rows needs not read raw",
      // The tie-break of `LIMIT 1 BY source, id` (newest ingest, then this hash): a hunt decided on the
      // field columns then reads no `raw` at all. Parts written before compute it from raw on read.
      statements: ['ALTER TABLE events ADD COLUMN IF NOT EXISTS raw_hash UInt64 MATERIALIZED cityHash64(raw)'],
    },
    {
      version: 6,
      name: 'audit chain (evidence/): one hash chain per writer, signed checkpoints, public keys',
      statements: [
        // One row per evidence record; (writer, seq) is the record, so a retried insert collapses to it.
        `CREATE TABLE IF NOT EXISTS audit_log (
          writer String,
          seq UInt64,
          at DateTime64(3, 'UTC'),
          kind LowCardinality(String),
          tbl LowCardinality(String),
          key String,
          content String,
          prev_hash String,
          hash String
        ) ENGINE = ReplacingMergeTree
        ORDER BY (writer, seq)`,
        `CREATE TABLE IF NOT EXISTS audit_checkpoints (
          writer String,
          seq UInt64,
          hash String,
          key_id String,
          signature String,
          at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree
        ORDER BY (writer, seq)`,
        `CREATE TABLE IF NOT EXISTS evidence_keys (
          key_id String,
          public_key String,
          created_at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree
        ORDER BY key_id`,
      ],
    },
    {
      version: 7,
      name: 'evidence retention apart from raw events, and first detection facts a re-ingest cannot rewrite',
      statements: [
        // Evidence outlives the raw events it was judged from (sessions and alerts had the raw TTL).
        ...EVIDENCE_TTL.map((t) => `ALTER TABLE ${t.table} MODIFY TTL toDateTime(${t.column}) + INTERVAL ${evidenceDays} DAY`),
        // A re-ingest writes the same session version again with another detection time, and the
        // sessions table keeps the last one. Here every write is aggregated as argMin(detection, write
        // time), so merges keep the first detection: reports read it and their digests do not move.
        `CREATE TABLE IF NOT EXISTS session_detections (
          session_id String,
          version UInt64,
          start DateTime64(3, 'UTC'),
          first_detection AggregateFunction(argMin, DateTime64(3, 'UTC'), Tuple(DateTime64(3, 'UTC'), DateTime64(3, 'UTC')))
        ) ENGINE = AggregatingMergeTree
        PARTITION BY toYYYYMM(start)
        ORDER BY (session_id, version)
        TTL toDateTime(start) + INTERVAL ${evidenceDays} DAY`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS session_detections_mv TO session_detections AS
          SELECT session_id, version, start,
                 argMinState(assumeNotNull(detected_at), tuple(now64(3, 'UTC'), assumeNotNull(detected_at))) AS first_detection
          FROM sessions WHERE detected_at IS NOT NULL GROUP BY session_id, version, start`,
        // Sessions stored before this migration (their write order is unknown: the earliest detection
        // wins). A repeated backfill cannot move an earlier write's detection.
        `INSERT INTO session_detections
          SELECT session_id, version, start,
                 argMinState(assumeNotNull(detected_at), tuple(now64(3, 'UTC'), assumeNotNull(detected_at)))
          FROM sessions WHERE detected_at IS NOT NULL GROUP BY session_id, version, start`,
      ],
    },
    {
      version: 8,
      name: 'CloudTrail log-file validation: the digest status of every delivered log object and the events it held',
      // One row per check (pending, then valid / missing_digest / mismatch); the object's status is its latest row.
      statements: [
        `CREATE TABLE IF NOT EXISTS log_validation (
          source LowCardinality(String),
          bucket String,
          object_key String,
          status LowCardinality(String),
          digest_key String,
          reason String,
          event_ids Array(String),
          checked_at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree(checked_at)
        ORDER BY (source, bucket, object_key, status)`,
      ],
    },
    {
      version: 9,
      name: 'console triage: who acknowledged or resolved an alert, when, and why',
      // Every triage action is a row (the history is the audit trail); the alert's state is its latest row.
      statements: [
        `CREATE TABLE IF NOT EXISTS alert_triage (
          triage_id String,
          alert_id String,
          state LowCardinality(String),
          actor String,
          comment String,
          at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree
        ORDER BY (alert_id, at, triage_id)`,
      ],
    },
    // migration 10 (detector metrics / ticket requests, if any) goes here
    {
      version: 11,
      name: "events intake: the store sink hands the bus's event JSON to the engine as it is",
      // The sink inserts each Kafka message's value (an AuditEvent, one JSON line) into this Null
      // table; the view maps it onto `events` inside the engine. No JSON.parse, no row object and no
      // JSON.stringify per event in Node. `raw` and `targets` arrive as an object and an array and
      // are kept as their exact text (input_format_json_read_*_as_strings), as `eventRow` stores them.
      statements: [
        `CREATE TABLE IF NOT EXISTS events_intake (
          source String,
          id String,
          time DateTime64(3, 'UTC'),
          actor Tuple(id Nullable(String), name Nullable(String), type Nullable(String), sessionKey Nullable(String)),
          action String,
          targets String,
          outcome String,
          outcomeReason Nullable(String),
          sourceIp Nullable(String),
          userAgent Nullable(String),
          account Nullable(String),
          org Nullable(String),
          cluster Nullable(String),
          raw String
        ) ENGINE = Null`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS events_intake_mv TO events AS
        SELECT
          source, id, time,
          ifNull(actor.id, '') AS actor_id,
          ifNull(actor.name, '') AS actor_name,
          ifNull(actor.type, '') AS actor_type,
          ifNull(actor.sessionKey, '') AS session_key,
          action, targets, outcome,
          ifNull(outcomeReason, '') AS outcome_reason,
          ifNull(sourceIp, '') AS source_ip,
          ifNull(userAgent, '') AS user_agent,
          ifNull(account, '') AS account,
          ifNull(org, '') AS org,
          ifNull(cluster, '') AS cluster,
          raw
        FROM events_intake`,
      ],
    },
    {
      version: 12,
      name: 'revocations: verified from later logs',
      // A `revoked` revocation is verified by watching the session's handles in the events after
      // it (detectors/revoke/verify.ts): NULL until the watch concludes, 1 quiet, 0 still working.
      statements: [
        `ALTER TABLE revocations ADD COLUMN IF NOT EXISTS verified Nullable(UInt8)`,
        `ALTER TABLE revocations ADD COLUMN IF NOT EXISTS verified_at Nullable(DateTime64(3, 'UTC'))`,
        `ALTER TABLE revocations ADD COLUMN IF NOT EXISTS verify_event_id String DEFAULT ''`,
        `ALTER TABLE revocations ADD COLUMN IF NOT EXISTS verify_detail String DEFAULT ''`,
      ],
    },
    {
      version: 14,
      name: 'sessions: one person across planes; revocations followed from a linked session',
      // detectors/people: the person behind a break-glass session and the person's sessions in the
      // other planes; a revocation made by following a link names the session it followed from.
      statements: [
        `ALTER TABLE sessions ADD COLUMN IF NOT EXISTS person_id String DEFAULT ''`,
        `ALTER TABLE sessions ADD COLUMN IF NOT EXISTS linked_session_ids Array(String) DEFAULT []`,
        `ALTER TABLE revocations ADD COLUMN IF NOT EXISTS followed_from String DEFAULT ''`,
      ],
    },
    {
      version: 15,
      name: 'confirmations: "was this you?" asked of an identity owner before revoking',
      // One row per step (asked, yes, no, timeout, undelivered, revoked): the history is the audit
      // trail. `request` keeps the revocation request, so a restart still revokes at the timeout.
      statements: [
        `CREATE TABLE IF NOT EXISTS confirmations (
          confirmation_id String,
          state LowCardinality(String),
          session_id String,
          identity String,
          alert_id String,
          via LowCardinality(String),
          owner String,
          nonce String,
          ticket_id String,
          actor String,
          detail String,
          asked_at DateTime64(3, 'UTC'),
          due_at DateTime64(3, 'UTC'),
          at DateTime64(3, 'UTC'),
          request String
        ) ENGINE = ReplacingMergeTree
        ORDER BY (confirmation_id, state, at)`,
      ],
    },
    {
      version: 16,
      name: 'credential changes: the rotation evidence, kept apart from the events as they are stored',
      // The rotation report reads the successful credential changes of 90 days and more: a scan of
      // every event of the period for a handful of rows. This table holds them alone, filled by a
      // view on every insert into `events` (the sink's, through events_intake_mv, and replay's), with
      // the events' key, version and retention, so a reader deduplicates and ages them alike.
      statements: [
        `CREATE TABLE IF NOT EXISTS credential_changes (
          source LowCardinality(String),
          id String,
          time DateTime64(3, 'UTC'),
          action LowCardinality(String),
          actor_name String,
          actor_type LowCardinality(String),
          account String,
          org String,
          targets String,
          ingested_at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree(ingested_at)
        PARTITION BY toYYYYMM(time)
        ORDER BY (source, toDate(time), id)
        TTL toDateTime(time) + INTERVAL ${days} DAY`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS credential_changes_mv TO credential_changes AS
          ${credentialChangesSelect()}`,
        // The events stored before this migration; a repeated backfill collapses onto the same rows.
        `INSERT INTO credential_changes ${credentialChangesSelect()}`,
      ],
    },
    {
      version: 17,
      name: 'cheaper field columns that mark an absent field (and eventType, invokedBy), and a hash of the id',
      // Parts stored before this compute both when read, until they merge. A hunt looks up every
      // version of its candidate keys: probing 10M fixed-width hashes instead of 10M id strings
      // takes ~165 ms instead of ~310 ms (333k candidates).
      statements: [
        ...fieldColumnStatements(17),
        // The earlier columns get the cheaper expressions (a dotted key found by text, one parse per
        // parent), and errorCode marks absence. Only new parts use them: old ones keep their values,
        // which mean the same ('' for an absent errorCode there is "unknown").
        ...FIELD_COLUMNS.filter((c) => c.since < 17).map(
          (c) => `ALTER TABLE events MODIFY COLUMN ${c.column} LowCardinality(String) MATERIALIZED ${fieldColumnExpression(c)}`,
        ),
        'ALTER TABLE events ADD COLUMN IF NOT EXISTS id_hash UInt64 MATERIALIZED cityHash64(id)',
      ],
    },
    {
      version: 18,
      name: 'the identity fields: userIdentity.userName, sessionContext.sessionIssuer.arn and .type',
      // Parts stored before this compute them when read, until they merge. The earlier columns get the
      // expressions that parse `raw` only on their own source's rows (new parts only; old ones keep
      // their values, which mean the same).
      statements: [
        ...fieldColumnStatements(18),
        ...FIELD_COLUMNS.filter((c) => c.since < 18).map(
          (c) => `ALTER TABLE events MODIFY COLUMN ${c.column} LowCardinality(String) MATERIALIZED ${fieldColumnExpression(c)}`,
        ),
      ],
    },
  ];
}

/**
 * Successful credential changes that may be rotation evidence (reports/rotation.ts decides per
 * credential which count): CloudTrail password, login profile, access key and MFA changes; Okta
 * password and factor resets. Constants, as DDL takes no parameters.
 */
export const CREDENTIAL_CHANGE_ACTIONS: readonly string[] = [
  'signin.amazonaws.com:PasswordUpdated',
  'iam.amazonaws.com:ChangePassword',
  'iam.amazonaws.com:UpdateLoginProfile',
  'iam.amazonaws.com:CreateAccessKey',
  'iam.amazonaws.com:DeleteAccessKey',
  'iam.amazonaws.com:EnableMFADevice',
  'iam.amazonaws.com:DeactivateMFADevice',
  'user.account.reset_password',
  'user.account.update_password',
  'user.mfa.factor.reset_all',
];

function credentialChangesSelect(): string {
  const actions = CREDENTIAL_CHANGE_ACTIONS.map((a) => `'${a}'`).join(', ');
  return `SELECT source, id, time, action, actor_name, actor_type, account, org, targets, ingested_at
          FROM events
          WHERE action IN (${actions}) AND outcome = 'success' AND source IN ('cloudtrail', 'okta')`;
}

/** Evidence tables and the time their TTL counts from (constants: DDL takes no parameters). */
export const EVIDENCE_TTL: readonly { table: string; column: string }[] = [
  { table: 'sessions', column: 'start' },
  { table: 'alerts', column: 'time' },
  { table: 'tickets', column: 'updated_at' },
  { table: 'revocations', column: 'requested_at' },
  { table: 'alert_deliveries', column: 'at' },
  { table: 'report_deliveries', column: 'at' },
  // The chain's oldest records go with the evidence they cover; the purge horizon is itself a chain
  // record (reports/retention.ts), so a verifier knows where the kept chain begins. Keys never expire.
  { table: 'audit_log', column: 'at' },
  { table: 'audit_checkpoints', column: 'at' },
];

/** Raw tables, kept `retentionDays`. */
export const RAW_TTL: readonly { table: string; column: string }[] = [
  { table: 'events', column: 'time' },
  { table: 'dead_letters', column: 'at' },
  // Events kept apart (migration 16): removed with the events they copy.
  { table: 'credential_changes', column: 'time' },
];

/**
 * Event fields kept as MATERIALIZED columns of `events`, chosen by counting what the SigmaHQ rules
 * for our sources test (scripts/sigma-field-usage.ts): a retro-hunt compares these small columns
 * before it reads `raw`. A column holds the field's string value when reading it is unambiguous
 * (a JSON string, ASCII, reached only through nested keys: no literal dotted key `a.b` beside it)
 * and '' otherwise, so '' means "unknown, look at raw" and a prefilter on the column can never
 * drop an event the evaluator matches.
 */
export interface FieldColumn {
  column: string;
  source: 'cloudtrail' | 'okta' | 'k8s';
  field: string;
  /** The migration that adds it. */
  since: 4 | 17 | 18;
  /**
   * From this migration on, the column holds NUL ('\0') where the field is certainly absent (no value
   * at all, not even null), so `exists` and `null` tests are decided on it too. Parts stored before
   * hold '' there, which is still "unknown, read raw". A value containing NUL is ''.
   */
  absent?: 17 | 18;
  /**
   * No set skip index: a field with many values per granule (a user name, a role ARN) overflows the
   * set, which then skips nothing and only costs at insert. Such a column serves `contains` tests,
   * which a set index cannot answer anyway.
   */
  noIndex?: true;
}

export const FIELD_COLUMNS: readonly FieldColumn[] = [
  { column: 'ct_event_name', source: 'cloudtrail', field: 'eventName', since: 4 },
  { column: 'ct_event_source', source: 'cloudtrail', field: 'eventSource', since: 4 },
  // `errorCode|exists` is how most of our pack's AWS rules leave out failed calls.
  { column: 'ct_error_code', source: 'cloudtrail', field: 'errorCode', since: 4, absent: 17 },
  { column: 'ct_identity_type', source: 'cloudtrail', field: 'userIdentity.type', since: 4 },
  { column: 'okta_event_type', source: 'okta', field: 'eventType', since: 4 },
  { column: 'k8s_verb', source: 'k8s', field: 'verb', since: 4 },
  { column: 'k8s_resource', source: 'k8s', field: 'objectRef.resource', since: 4 },
  { column: 'k8s_api_group', source: 'k8s', field: 'objectRef.apiGroup', since: 4 },
  // Rare in SigmaHQ (one rule), but in its root-usage rule and our pack's root-activity rule:
  // `not eventType: AwsServiceEvent` was the one item of a root hunt that still read raw.
  { column: 'ct_event_type', source: 'cloudtrail', field: 'eventType', since: 17 },
  // Our root-activity rule keeps calls no service made for the root user (`invokedBy|exists`).
  { column: 'ct_invoked_by', source: 'cloudtrail', field: 'userIdentity.invokedBy', since: 17, absent: 17 },
  // Who the principal is, for our pack's AWS rules (11 of them): `userName|contains: BreakGlass` for
  // an IAM user, `sessionIssuer.arn|contains: BreakGlass` for an assumed role; and the issuer's type,
  // SigmaHQ's assume-role rule. Without them a hunt read the JSON of every call by any principal
  // (trail tampering at 10M events: 2.3 s). The user name marks absence by text, except in an assumed
  // role's record, which holds `sessionIssuer.userName` (there it is '', and the rules decide by the
  // type). The issuer's two share one extraction of it.
  { column: 'ct_user_name', source: 'cloudtrail', field: 'userIdentity.userName', since: 18, absent: 18, noIndex: true },
  { column: 'ct_issuer_arn', source: 'cloudtrail', field: 'userIdentity.sessionContext.sessionIssuer.arn', since: 18, noIndex: true },
  { column: 'ct_issuer_type', source: 'cloudtrail', field: 'userIdentity.sessionContext.sessionIssuer.type', since: 18 },
];

/** A migration's field columns: each one MATERIALIZED, with a set index (a hunt for a rare value skips granules without it). */
function fieldColumnStatements(since: FieldColumn['since']): string[] {
  const added = FIELD_COLUMNS.filter((c) => c.since === since);
  return [
    ...added.map(
      (c) => `ALTER TABLE events ADD COLUMN IF NOT EXISTS ${c.column} LowCardinality(String) MATERIALIZED ${fieldColumnExpression(c)}`,
    ),
    ...added
      .filter((c) => !c.noIndex)
      .map((c) => `ALTER TABLE events ADD INDEX IF NOT EXISTS ${c.column}_set ${c.column} TYPE set(256) GRANULARITY 1`),
  ];
}

/**
 * DDL expression of a field column (names are constants above, not input: DDL takes no parameters).
 *
 * `raw` is exactly `JSON.stringify` of the event (core/store/writer.ts), so a key `k` at any depth
 * appears in it as the text `"k"`, never escaped. That answers two questions without parsing:
 * - a literal dotted key beside the nested one (the evaluator reads both, so the column says '')
 *   exists only if `"a.b"` occurs;
 * - a field is certainly absent (the columns that mark absence hold NUL) when `k"` occurs nowhere:
 *   no key of that name at any depth, nor a dotted key ending in it. This holds whatever parser the
 *   insert uses (its simdjson rejects a whole document holding an integer beyond 64 bits).
 * The columns under one parent (`userIdentity`, `objectRef`, the session issuer) share one
 * `JSONExtractRaw` of it, which the engine computes once per insert. Only a JSON string is decoded
 * (JSONExtractString would return an array's or object's text), and non-ASCII values become '' (JS
 * and ClickHouse lower-case them differently).
 */
export function fieldColumnExpression(c: FieldColumn): string {
  const path = c.field.split('.');
  if (!path.every((p) => /^[A-Za-z][A-Za-z0-9]*$/.test(p))) throw new Error(`field column ${c.column}: unsafe path ${c.field}`);
  if (path.length > 4) throw new Error(`field column ${c.column}: a path of at most four keys`);
  if (path.length > 2 && c.absent) throw new Error(`field column ${c.column}: absence is marked on paths of one or two keys`);
  const [first, second] = path as [string, string | undefined];
  // The engine computed a column's JSON functions on every row of an insert block, whatever its
  // source (a Kubernetes column cost as much on CloudTrail rows as on its own): each source's columns
  // now read `raw` on their own rows and an empty text on the others. A parse of `raw` is the cost
  // (~0.5 µs); with a third of the rows per source this spares two thirds of them.
  const doc = `if(source = '${c.source}', raw, '')`;
  const absent = `position(${doc}, '${second ?? first}"') = 0`;
  // A top-level field that is mostly absent (errorCode) is not parsed for where its key is nowhere.
  const parent = `JSONExtractRaw(${c.absent && second === undefined ? `if(${absent}, '', ${doc})` : doc}, '${first}')`;
  // Deeper, the object holding the last key is extracted apart: sibling columns share it too.
  const keys = (ks: string[]) => ks.map((k) => `'${k}'`).join(', ');
  const holder = path.length > 2 ? `JSONExtractRaw(${parent}, ${keys(path.slice(1, -1))})` : parent;
  const text = second === undefined ? parent : `JSONExtractRaw(${holder}, ${keys(path.slice(-1))})`;
  // No arrays nor lambdas (a per-row cost on every source): the same subexpressions are computed once.
  const decoded = `JSONExtractString(${text})`;
  const ascii = c.absent
    ? `if(startsWith(${text}, '"') AND length(${decoded}) = lengthUTF8(${decoded}) AND position(${decoded}, '\\0') = 0, ${decoded}, '')`
    : `if(startsWith(${text}, '"') AND length(${decoded}) = lengthUTF8(${decoded}), ${decoded}, '')`;
  const value = c.absent ? `if(${absent}, '\\0', ${ascii})` : ascii;
  // Deeper, a literal dotted key may join any run of the keys (`"sessionContext.sessionIssuer"`,
  // `"sessionIssuer.arn"`, ...): every such key holds the text of two neighbours joined by a dot. The
  // last pair is searched as `sessionIssuer.`, so the issuer's columns share one search.
  const joined = path.slice(1, -1).map((k, i) => `${path[i]}.${k}`);
  const dotted =
    path.length === 2
      ? `position(${doc}, '"${c.field}"') > 0`
      : `multiSearchAny(${doc}, [${keys([...joined, `${path[path.length - 2]}.`])}])`;
  const unambiguous = second === undefined ? value : `if(${dotted}, '', ${value})`;
  return `if(source = '${c.source}', ${unambiguous}, '')`;
}

export interface MigrationResult {
  applied: number[];
  current: number;
}

export async function migrate(store: Store, options: SchemaOptions = {}): Promise<MigrationResult> {
  const { client } = store;
  if (store.config.kind === 'clickhouse') await ensureDatabase(store);
  // store.cluster: every DDL statement ON CLUSTER, on Replicated tables (see core/store/cluster.ts).
  const cluster = store.config.kind === 'clickhouse' ? (store.config.cluster ?? null) : null;
  const ddl = (statement: string) => (cluster ? onCluster(statement, cluster) : statement);
  try {
    await client.command({
      query: ddl(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
      ) ENGINE = ReplacingMergeTree ORDER BY version`),
    });
    const rows = await (await client.query({ query: 'SELECT DISTINCT version FROM schema_migrations', format: 'JSONEachRow' })).json<{
      version: number;
    }>();
    const done = new Set(rows.map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of migrations(options)) {
      if (done.has(m.version)) continue;
      for (const statement of m.statements) await client.command({ query: ddl(statement) });
      await client.insert({ table: 'schema_migrations', values: [{ version: m.version, name: m.name }], format: 'JSONEachRow' });
      applied.push(m.version);
    }
    return { applied, current: Math.max(0, ...migrations(options).map((m) => m.version)) };
  } catch (cause) {
    if (cause instanceof GlasswatchError) throw cause;
    throw new GlasswatchError('BG_STORE_MIGRATE', `schema migration failed on ${store.describe}: ${(cause as Error).message}`, {
      stage: 'storing',
      cause,
      retriable: true,
    });
  }
}

async function ensureDatabase(store: Store): Promise<void> {
  const config = store.config;
  if (config.kind !== 'clickhouse') return;
  const admin = createClient({
    url: config.url,
    username: config.username ?? 'default',
    password: config.password ?? '',
    database: 'default',
  });
  try {
    // ON CLUSTER cannot take a parameter: the cluster name is a validated identifier (core/store/cluster.ts).
    const query = config.cluster
      ? onCluster('CREATE DATABASE IF NOT EXISTS {db:Identifier}', config.cluster)
      : 'CREATE DATABASE IF NOT EXISTS {db:Identifier}';
    await admin.command({ query, query_params: { db: config.database ?? 'glasswatch' } });
  } finally {
    await admin.close();
  }
}
