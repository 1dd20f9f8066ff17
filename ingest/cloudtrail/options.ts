/**
 * `collectors.cloudtrail`: one of three ways to receive CloudTrail, chosen by `mode`.
 *
 * ```yaml
 * collectors:
 *   checkpointDir: .glasswatch/checkpoints   # shared keys: see ingest/collector/options.ts
 *   cloudtrail:
 *     mode: s3                        # s3 | sqs | eventbridge
 *     region: us-east-1               # s3, sqs: region of the bucket / queue
 *     # endpoint: http://127.0.0.1:5000   # S3-compatible store or VPC endpoint (path-style URLs)
 *     credentials:                    # optional: default is the AWS SDK chain (env, profile, IMDS, IRSA)
 *       accessKeyId: ${AWS_ACCESS_KEY_ID}
 *       secretAccessKey: ${AWS_SECRET_ACCESS_KEY}
 *       # sessionToken: ${AWS_SESSION_TOKEN}
 *     silenceSeconds: 3600            # overrides collectors.silenceSeconds
 *     dedupeWindow: 100000            # eventIDs remembered (SQS redeliveries, overlapping notifications)
 *
 *     # mode s3: poll the trail bucket (account and organization trails, every region found)
 *     bucket: acme-cloudtrail
 *     prefix: ""                      # the trail's S3 key prefix, what precedes AWSLogs/
 *     startDate: "2025-11-20"         # first UTC day on a fresh start; default: the day of the first start
 *     pollIntervalSeconds: 60
 *     settleSeconds: 60               # leave files of the last minute(s) for the next poll
 *     discoveryIntervalSeconds: 300   # how often new accounts and regions (prefixes) are looked for
 *     prefetch: 4                     # objects downloaded ahead
 *
 *     # modes s3 and sqs: log-file validation (like `aws cloudtrail validate-logs`), on by default
 *     validateLogFiles: true          # false: no digest is read; unset: on, off by itself if digests are unreadable
 *     digestWindowMinutes: 120        # an object no digest listed after this is missing_digest (digests are hourly)
 *     # cloudTrailEndpoint: https://cloudtrail.us-east-1.amazonaws.com   # ListPublicKeys (VPC endpoint); default per home region
 *
 *     # mode sqs: S3 event notifications or CloudTrail SNS notifications delivered to SQS
 *     queueUrl: https://sqs.us-east-1.amazonaws.com/111122223333/cloudtrail-files
 *     waitTimeSeconds: 20
 *     visibilityTimeoutSeconds: 300   # longer than the slowest message takes to publish
 *
 *     # mode eventbridge: HTTPS target of an EventBridge API destination
 *     listen: 0.0.0.0:8443
 *     path: /
 *     tls: { certFile: /etc/glasswatch/tls.crt, keyFile: /etc/glasswatch/tls.key }  # omit only behind a TLS proxy
 *     apiKeyHeader: x-glasswatch-api-key    # connection auth API_KEY: header name and value
 *     apiKey: ${GLASSWATCH_EVENTBRIDGE_KEY}
 *     # basicAuth: { username: eventbridge, password: ${GLASSWATCH_EVENTBRIDGE_PASSWORD} }
 *     maxQueuedEvents: 10000          # beyond: 503, EventBridge retries
 *     maxQueuedBytes: 67108864        # body bytes waiting for Kafka; beyond: 503 (bounds memory)
 *     maxDecompressedBytes: 67108864  # a gzip body may inflate to this; beyond: 413 + dead letter
 *     limits: { maxConnectionsPerIp: 64 }   # timeouts and connection caps (ingest/collector/http.ts)
 * ```
 */
import { Fields, type GlasswatchConfig } from '../../core/config.js';
import type { ServerLimits } from '../collector/http.js';
import { type CollectorsCommonConfig, collectorsFields, parseCollectorsCommon, parseServerLimits, readPem } from '../collector/options.js';
import { DEFAULT_MAX_BODY_DECOMPRESSED_BYTES } from '../decode.js';
import type { AwsCredentials } from './aws.js';

export type CloudTrailMode = 's3' | 'sqs' | 'eventbridge';

export interface CloudTrailS3Config {
  bucket: string;
  /** @default "" */
  prefix: string;
  /** `YYYY-MM-DD`; null = the UTC day of the first start. */
  startDate: string | null;
  /** @default 60 */
  pollIntervalSeconds: number;
  /** @default 60 */
  settleSeconds: number;
  /** How often new account and region prefixes are looked for. @default 300 */
  discoveryIntervalSeconds: number;
  /** @default 4 */
  prefetch: number;
}

export interface CloudTrailSqsConfig {
  queueUrl: string;
  /** @default 20 */
  waitTimeSeconds: number;
  /** @default 300 */
  visibilityTimeoutSeconds: number;
  /** @default 4 */
  prefetch: number;
}

export interface CloudTrailEventBridgeConfig {
  /** @default "127.0.0.1" */
  host: string;
  /** @default 8443 */
  port: number;
  /** @default "/" */
  path: string;
  /** PEM contents (read at validation); null = plain HTTP behind a TLS-terminating proxy. */
  tls: { cert: Buffer; key: Buffer } | null;
  /** Header name (lower-cased) and value; null when only Basic auth is used. */
  apiKey: { header: string; value: string } | null;
  basic: { username: string; password: string } | null;
  /** @default 10000 */
  maxQueuedEvents: number;
  /** @default 1048576 */
  maxBodyBytes: number;
  /** @default 67108864 */
  maxQueuedBytes: number;
  /** @default 67108864 */
  maxDecompressedBytes: number;
  limits: ServerLimits;
}

export interface CloudTrailValidationConfig {
  /** false only when `validateLogFiles: false`. */
  enabled: boolean;
  /** True when `validateLogFiles` was set: unreadable digests are then errors, never a reason to stop validating. */
  explicit: boolean;
  /** @default 120 */
  windowMinutes: number;
  /** ListPublicKeys endpoint for every region; null = https://cloudtrail.<home region>.amazonaws.com */
  endpoint: string | null;
}

export interface CloudTrailCollectorConfig {
  mode: CloudTrailMode;
  /** Required for s3 and sqs. */
  region: string | null;
  endpoint: string | null;
  credentials: AwsCredentials | null;
  s3: CloudTrailS3Config | null;
  sqs: CloudTrailSqsConfig | null;
  eventbridge: CloudTrailEventBridgeConfig | null;
  /** Modes s3 and sqs; null for eventbridge (no digests reach an API destination). */
  validation: CloudTrailValidationConfig | null;
  /** @default 100000 */
  dedupeWindow: number;
  silenceSeconds: number;
  checkpointDir: string;
  alertsTopic: string;
  metrics: { host: string; port: number } | null;
}

const AWS_KEYS = ['region', 'endpoint', 'credentials', 'validateLogFiles', 'digestWindowMinutes', 'cloudTrailEndpoint'];
const MODE_KEYS: Record<CloudTrailMode, string[]> = {
  s3: [...AWS_KEYS, 'bucket', 'prefix', 'startDate', 'pollIntervalSeconds', 'settleSeconds', 'discoveryIntervalSeconds', 'prefetch'],
  sqs: [...AWS_KEYS, 'queueUrl', 'waitTimeSeconds', 'visibilityTimeoutSeconds', 'prefetch'],
  eventbridge: [
    'listen',
    'path',
    'tls',
    'apiKeyHeader',
    'apiKey',
    'basicAuth',
    'maxQueuedEvents',
    'maxBodyBytes',
    'maxQueuedBytes',
    'maxDecompressedBytes',
    'limits',
  ],
};
const COMMON = ['mode', 'silenceSeconds', 'dedupeWindow'];

/** Validates `collectors.cloudtrail` of a loaded config; throws `ConfigError` naming the file and field. */
export function parseCloudTrailSection(
  config: Pick<GlasswatchConfig, 'sections' | 'file'> & { topics?: { alerts: string } },
): CloudTrailCollectorConfig {
  const collectors = collectorsFields(config);
  return parseCloudTrailFields(collectors.section('cloudtrail'), parseCollectorsCommon(collectors, config.topics?.alerts));
}

export function parseCloudTrailFields(
  f: Fields,
  common: CollectorsCommonConfig = parseCollectorsCommon(Fields.of(f.file, 'collectors', {})),
): CloudTrailCollectorConfig {
  const mode = f.oneOf('mode', ['s3', 'sqs', 'eventbridge'] as const);
  const allowed = [...COMMON, ...MODE_KEYS[mode]];
  for (const key of Object.keys(f.value)) {
    if (allowed.includes(key)) continue;
    const owner = (Object.keys(MODE_KEYS) as CloudTrailMode[]).find((m) => MODE_KEYS[m].includes(key));
    f.fail(key, owner ? `is only used with mode: ${owner} (this section has mode: ${mode})` : `unknown key (known: ${allowed.join(', ')})`);
  }
  const aws = mode !== 'eventbridge';
  return {
    mode,
    region: aws ? f.string('region') : null,
    endpoint: aws ? endpoint(f) : null,
    credentials: aws && f.value.credentials !== undefined ? credentials(f.section('credentials')) : null,
    s3: mode === 's3' ? s3(f) : null,
    sqs: mode === 'sqs' ? sqs(f) : null,
    eventbridge: mode === 'eventbridge' ? eventbridge(f) : null,
    validation: aws ? validation(f) : null,
    dedupeWindow: f.number('dedupeWindow', 100_000, { min: 1, integer: true }),
    silenceSeconds: f.number('silenceSeconds', common.silenceSeconds, { min: 1 }),
    checkpointDir: common.checkpointDir,
    alertsTopic: common.alertsTopic,
    metrics: common.metrics,
  };
}

function endpoint(f: Fields): string | null {
  const value = f.optionalString('endpoint');
  if (value !== null && !/^https?:\/\/[^/]/.test(value)) f.fail('endpoint', `must be an http(s):// URL, got "${value}"`);
  return value;
}

function validation(f: Fields): CloudTrailValidationConfig {
  const explicit = f.value.validateLogFiles !== undefined;
  const url = f.optionalString('cloudTrailEndpoint');
  if (url !== null && !/^https?:\/\/[^/]/.test(url)) f.fail('cloudTrailEndpoint', `must be an http(s):// URL, got "${url}"`);
  return {
    enabled: f.boolean('validateLogFiles', true),
    explicit,
    // Digests cover an hour and arrive within about an hour after it; less than that would flag genuine objects.
    windowMinutes: f.number('digestWindowMinutes', 120, { min: 75, max: 10_080 }),
    endpoint: url,
  };
}

function credentials(c: Fields): AwsCredentials {
  c.only(['accessKeyId', 'secretAccessKey', 'sessionToken']);
  const token = c.optionalString('sessionToken');
  return { accessKeyId: c.string('accessKeyId'), secretAccessKey: c.string('secretAccessKey'), ...(token ? { sessionToken: token } : {}) };
}

function s3(f: Fields): CloudTrailS3Config {
  const startDate = f.optionalString('startDate');
  if (startDate !== null && !(/^\d{4}-\d{2}-\d{2}$/.test(startDate) && !Number.isNaN(Date.parse(`${startDate}T00:00:00Z`)))) {
    f.fail('startDate', `must be a date YYYY-MM-DD, got "${startDate}"`);
  }
  const value = f.value.prefix;
  // An empty prefix is the common case (the trail writes straight to AWSLogs/), so '' is allowed here.
  if (value !== undefined && value !== null && typeof value !== 'string') f.fail('prefix', 'must be a string');
  return {
    bucket: f.string('bucket'),
    prefix: typeof value === 'string' ? value : '',
    startDate,
    pollIntervalSeconds: f.number('pollIntervalSeconds', 60, { min: 1 }),
    settleSeconds: f.number('settleSeconds', 60, { min: 0 }),
    // A new region or account is invisible until the next discovery: a long interval delays its first events.
    discoveryIntervalSeconds: f.number('discoveryIntervalSeconds', 300, { min: 1, max: 86_400 }),
    prefetch: f.number('prefetch', 4, { min: 1, max: 32, integer: true }),
  };
}

function sqs(f: Fields): CloudTrailSqsConfig {
  const queueUrl = f.string('queueUrl');
  if (!/^https?:\/\/[^/]+\/.+/.test(queueUrl))
    f.fail('queueUrl', `must be a queue URL like https://sqs.<region>.amazonaws.com/<account>/<name>, got "${queueUrl}"`);
  return {
    queueUrl,
    waitTimeSeconds: f.number('waitTimeSeconds', 20, { min: 0, max: 20, integer: true }),
    visibilityTimeoutSeconds: f.number('visibilityTimeoutSeconds', 300, { min: 1, max: 43_200, integer: true }),
    prefetch: f.number('prefetch', 4, { min: 1, max: 32, integer: true }),
  };
}

function eventbridge(f: Fields): CloudTrailEventBridgeConfig {
  const listen = f.string('listen', '127.0.0.1:8443');
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  if (!m || port > 65535) f.fail('listen', `must be host:port (e.g. 0.0.0.0:8443), got "${listen}"`);
  const path = f.string('path', '/');
  if (!path.startsWith('/')) f.fail('path', 'must start with /');
  const t = f.value.tls === undefined ? null : f.section('tls').only(['certFile', 'keyFile']);
  const key = f.optionalString('apiKey');
  const b = f.value.basicAuth === undefined ? null : f.section('basicAuth').only(['username', 'password']);
  if (key === null && b === null) f.fail('apiKey', 'is required unless basicAuth is set: the endpoint must authenticate EventBridge');
  if (key === null && f.value.apiKeyHeader !== undefined) f.fail('apiKeyHeader', 'needs apiKey');
  return {
    host: m[1] ?? m[2] ?? '127.0.0.1',
    port,
    path,
    tls: t ? { cert: readPem(t, 'certFile'), key: readPem(t, 'keyFile') } : null,
    apiKey: key === null ? null : { header: f.string('apiKeyHeader', 'x-glasswatch-api-key').toLowerCase(), value: key },
    basic: b ? { username: b.string('username'), password: b.string('password') } : null,
    maxQueuedEvents: f.number('maxQueuedEvents', 10_000, { min: 1, integer: true }),
    maxBodyBytes: f.number('maxBodyBytes', 1024 * 1024, { min: 1024, integer: true }),
    maxQueuedBytes: f.number('maxQueuedBytes', 64 * 1024 * 1024, { min: 1024, integer: true }),
    maxDecompressedBytes: f.number('maxDecompressedBytes', DEFAULT_MAX_BODY_DECOMPRESSED_BYTES, { min: 1024, integer: true }),
    limits: parseServerLimits(f),
  };
}
