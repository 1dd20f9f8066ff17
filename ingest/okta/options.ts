/**
 * `collectors.okta`: the System Log poller and (optionally) the Event Hooks receiver.
 *
 * ```yaml
 * collectors:
 *   okta:
 *     orgUrl: https://acme.okta.com
 *     token: ${OKTA_API_TOKEN}        # never logged
 *     authScheme: SSWS                # SSWS (API token) | Bearer (OAuth access token, scope okta.logs.read)
 *     sinceMinutes: 15                # first start without checkpoint: since = now - 15 min
 *     # since: 2025-01-01T00:00:00Z   # ... or an absolute start (max 180 days back)
 *     limit: 1000
 *     pollIntervalSeconds: 15         # wait after a short or empty page
 *     rateLimitReserve: 2             # keep this many requests of the minute budget for others
 *     dedupeWindow: 100000            # uuids remembered across poller + hook
 *     silenceSeconds: 3600            # overrides collectors.silenceSeconds
 *     hook:                           # Event Hooks receiver (omit to run the poller only)
 *       host: 0.0.0.0
 *       port: 8443
 *       path: /okta/hook
 *       secretHeader: Authorization   # the header name registered with the hook
 *       secret: ${OKTA_HOOK_SECRET}
 *       tls: { certFile: /etc/glasswatch/tls.crt, keyFile: /etc/glasswatch/tls.key }
 *       maxBodyBytes: 10485760
 *       maxDecompressedBytes: 67108864 # a gzip body may inflate to this; beyond: 413
 *       queueBytes: 67108864          # bodies waiting to be published; beyond: 503
 *       limits: { maxConnectionsPerIp: 64 }   # timeouts and connection caps (ingest/collector/http.ts)
 * ```
 */
import { Fields, type GlasswatchConfig } from '../../core/config.js';
import type { ServerLimits } from '../collector/http.js';
import { collectorsFields, parseCollectorsCommon, parseServerLimits, readPem } from '../collector/options.js';
import { DEFAULT_MAX_BODY_DECOMPRESSED_BYTES } from '../decode.js';

export interface OktaHookConfig {
  /** @default "127.0.0.1" */
  host: string;
  /** @default 8443 */
  port: number;
  /** @default "/okta/hook" */
  path: string;
  /** @default "Authorization" */
  secretHeader: string;
  /** The static value Okta sends in `secretHeader`. Required. */
  secret: string;
  /** PEM contents (read at validation); null = plain HTTP behind a TLS-terminating proxy. */
  tls: { cert: Buffer; key: Buffer } | null;
  /** @default 10485760 */
  maxBodyBytes: number;
  /** A gzip body inflates to at most this. @default 67108864 */
  maxDecompressedBytes: number;
  /** @default 67108864 */
  queueBytes: number;
  limits: ServerLimits;
}

export interface OktaCollectorConfig {
  /** `https://<org>.okta.com` (no path). Required. */
  orgUrl: string;
  /** API token or OAuth access token. Required; never logged. */
  token: string;
  /** @default "SSWS" */
  authScheme: 'SSWS' | 'Bearer';
  /** Absolute first `since`; null = `sinceMinutes` before start. */
  since: string | null;
  /** @default 15 */
  sinceMinutes: number;
  /** @default 1000 */
  limit: number;
  /** @default 15 */
  pollIntervalSeconds: number;
  /** Pause between full pages (spreads the per-minute budget). @default 0 */
  pageDelayMs: number;
  /** @default 2 */
  rateLimitReserve: number;
  /** @default 60 */
  requestTimeoutSeconds: number;
  /** @default 100000 */
  dedupeWindow: number;
  silenceSeconds: number;
  checkpointDir: string;
  alertsTopic: string;
  metrics: { host: string; port: number } | null;
  hook: OktaHookConfig | null;
}

/** Validates `collectors.okta` of a loaded config; throws `ConfigError` naming the file and field. */
export function parseOktaSection(
  config: Pick<GlasswatchConfig, 'sections' | 'file'> & { topics?: { alerts: string } },
): OktaCollectorConfig {
  const collectors = collectorsFields(config);
  const common = parseCollectorsCommon(collectors, config.topics?.alerts);
  return parseOktaFields(collectors.section('okta'), common);
}

export function parseOktaFields(f: Fields, common = parseCollectorsCommon(Fields.of(f.file, 'collectors', {}))): OktaCollectorConfig {
  f.only([
    'orgUrl',
    'token',
    'authScheme',
    'since',
    'sinceMinutes',
    'limit',
    'pollIntervalSeconds',
    'pageDelayMs',
    'rateLimitReserve',
    'requestTimeoutSeconds',
    'dedupeWindow',
    'silenceSeconds',
    'hook',
  ]);
  const orgUrl = f.string('orgUrl');
  let url: URL;
  try {
    url = new URL(orgUrl);
  } catch {
    f.fail('orgUrl', `must be a URL like https://acme.okta.com, got "${orgUrl}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') f.fail('orgUrl', 'must be an https:// URL');
  const since = f.optionalInstant('since');
  return {
    orgUrl: url.origin,
    token: f.string('token'),
    authScheme: f.oneOf('authScheme', ['SSWS', 'Bearer'] as const, 'SSWS'),
    since,
    sinceMinutes: f.number('sinceMinutes', 15, { min: 0, max: 180 * 24 * 60 }),
    limit: f.number('limit', 1000, { min: 1, max: 1000, integer: true }),
    pollIntervalSeconds: f.number('pollIntervalSeconds', 15, { min: 0 }),
    pageDelayMs: f.number('pageDelayMs', 0, { min: 0 }),
    rateLimitReserve: f.number('rateLimitReserve', 2, { min: 0, integer: true }),
    requestTimeoutSeconds: f.number('requestTimeoutSeconds', 60, { min: 1 }),
    dedupeWindow: f.number('dedupeWindow', 100_000, { min: 1, integer: true }),
    silenceSeconds: f.number('silenceSeconds', common.silenceSeconds, { min: 1 }),
    checkpointDir: common.checkpointDir,
    alertsTopic: common.alertsTopic,
    metrics: common.metrics,
    hook: f.value.hook === undefined ? null : parseHook(f.section('hook')),
  };
}

function parseHook(h: Fields): OktaHookConfig {
  h.only(['host', 'port', 'path', 'secretHeader', 'secret', 'tls', 'maxBodyBytes', 'maxDecompressedBytes', 'queueBytes', 'limits']);
  const path = h.string('path', '/okta/hook');
  if (!path.startsWith('/')) h.fail('path', 'must start with /');
  const t = h.value.tls === undefined ? null : h.section('tls').only(['certFile', 'keyFile']);
  return {
    host: h.string('host', '127.0.0.1'),
    port: h.number('port', 8443, { min: 0, max: 65535, integer: true }),
    path,
    secretHeader: h.string('secretHeader', 'Authorization').toLowerCase(),
    secret: h.string('secret'),
    tls: t ? { cert: readPem(t, 'certFile'), key: readPem(t, 'keyFile') } : null,
    maxBodyBytes: h.number('maxBodyBytes', 10 * 1024 * 1024, { min: 1024, integer: true }),
    maxDecompressedBytes: h.number('maxDecompressedBytes', DEFAULT_MAX_BODY_DECOMPRESSED_BYTES, { min: 1024, integer: true }),
    queueBytes: h.number('queueBytes', 64 * 1024 * 1024, { min: 1024, integer: true }),
    limits: parseServerLimits(h),
  };
}
