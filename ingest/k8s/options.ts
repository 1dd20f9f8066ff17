/**
 * `collectors.k8s`: the audit webhook receiver and/or the audit log tailer.
 *
 * ```yaml
 * collectors:
 *   k8s:
 *     cluster: prod-eu-1               # stamped on events; default ingest.k8s.cluster
 *     silenceSeconds: 600              # overrides collectors.silenceSeconds
 *     receiver:                        # target of --audit-webhook-config-file
 *       host: 0.0.0.0
 *       port: 9443
 *       path: /audit
 *       tls:
 *         certFile: /etc/glasswatch/tls.crt
 *         keyFile: /etc/glasswatch/tls.key
 *         clientCaFile: /etc/glasswatch/apiserver-client-ca.crt   # client-certificate auth
 *       token: ${K8S_AUDIT_TOKEN}      # bearer-token auth (either one authenticates)
 *       maxBodyBytes: 16777216         # above --audit-webhook-truncate-max-batch-size (10 MiB)
 *       maxDecompressedBytes: 67108864 # a gzip body may inflate to this; beyond: 413 + dead letter
 *       queueEvents: 20000             # without a spool: events waiting for Kafka; beyond: 429, the apiserver retries
 *       queueBytes: 67108864           # without a spool: body bytes waiting for Kafka; beyond: 429 (bounds memory)
 *       spool:                         # 200 once fsynced here; drained to Kafka in order (false: 200 after Kafka acks)
 *         dir: /var/lib/glasswatch/spool/k8s   # default <checkpointDir>/spool/k8s, 0700, files 0600
 *         maxBytes: 1073741824         # unacknowledged bytes; beyond: 503 + Retry-After
 *       limits: { maxConnectionsPerIp: 64 }   # timeouts and connection caps (ingest/collector/http.ts)
 *     tail:                            # a kube-apiserver --audit-log-path file
 *       file: /var/log/kubernetes/audit/audit.log
 *       startAt: end                   # first start without checkpoint: beginning | end
 *       pollIntervalMs: 500
 * ```
 */

import { join } from 'node:path';
import { Fields, type GlasswatchConfig } from '../../core/config.js';
import type { ServerLimits } from '../collector/http.js';
import { collectorsFields, parseCollectorsCommon, parseServerLimits, parseSpool, readPem, type SpoolConfig } from '../collector/options.js';
import { DEFAULT_MAX_BODY_DECOMPRESSED_BYTES } from '../decode.js';

export interface K8sReceiverConfig {
  /** @default "127.0.0.1" */
  host: string;
  /** @default 9443 */
  port: number;
  /** @default "/audit" */
  path: string;
  /** PEM contents read at validation; null only with `insecureHttp` (TLS terminated in front). */
  tls: { cert: Buffer; key: Buffer; clientCa: Buffer | null } | null;
  /** Bearer token; null = client certificates only. */
  token: string | null;
  /** @default 16777216 */
  maxBodyBytes: number;
  /** A gzip body inflates to at most this. @default 67108864 */
  maxDecompressedBytes: number;
  /** @default 20000 */
  queueEvents: number;
  /** Body bytes waiting to be published at most. @default 67108864 */
  queueBytes: number;
  limits: ServerLimits;
  /**
   * The on-disk spool: 200 once a body is fsynced there. null (or absent): 200 only after Kafka
   * acknowledged every event of the body, 503 when it cannot.
   */
  spool?: SpoolConfig | null;
}

export interface K8sTailConfig {
  file: string;
  /** @default "end" */
  startAt: 'beginning' | 'end';
  /** @default 500 */
  pollIntervalMs: number;
  /** Bytes read and published per unit. @default 4194304 */
  chunkBytes: number;
  /** A line longer than this is dead-lettered in pieces. @default 67108864 */
  maxLineBytes: number;
}

export interface K8sCollectorConfig {
  cluster: string | null;
  silenceSeconds: number;
  checkpointDir: string;
  alertsTopic: string;
  metrics: { host: string; port: number } | null;
  receiver: K8sReceiverConfig | null;
  tail: K8sTailConfig | null;
}

export function parseK8sSection(
  config: Pick<GlasswatchConfig, 'sections' | 'file'> & { ingest?: { k8s: { cluster: string | null } }; topics?: { alerts: string } },
): K8sCollectorConfig {
  const collectors = collectorsFields(config);
  return parseK8sFields(
    collectors.section('k8s'),
    parseCollectorsCommon(collectors, config.topics?.alerts),
    config.ingest?.k8s.cluster ?? null,
  );
}

export function parseK8sFields(
  f: Fields,
  common = parseCollectorsCommon(Fields.of(f.file, 'collectors', {})),
  cluster: string | null = null,
): K8sCollectorConfig {
  f.only(['cluster', 'silenceSeconds', 'receiver', 'tail']);
  const receiver = f.value.receiver === undefined ? null : parseReceiver(f.section('receiver'), join(common.checkpointDir, 'spool', 'k8s'));
  const tail = f.value.tail === undefined ? null : parseTail(f.section('tail'));
  if (!receiver && !tail) f.fail('receiver', 'configure collectors.k8s.receiver, collectors.k8s.tail, or both');
  return {
    cluster: f.optionalString('cluster') ?? cluster,
    silenceSeconds: f.number('silenceSeconds', common.silenceSeconds, { min: 1 }),
    checkpointDir: common.checkpointDir,
    alertsTopic: common.alertsTopic,
    metrics: common.metrics,
    receiver,
    tail,
  };
}

function parseReceiver(r: Fields, spoolDir: string): K8sReceiverConfig {
  r.only([
    'host',
    'port',
    'path',
    'tls',
    'token',
    'insecureHttp',
    'maxBodyBytes',
    'maxDecompressedBytes',
    'queueEvents',
    'queueBytes',
    'limits',
    'spool',
  ]);
  const path = r.string('path', '/audit');
  if (!path.startsWith('/')) r.fail('path', 'must start with /');
  const insecure = r.boolean('insecureHttp', false);
  const t = r.value.tls === undefined ? null : r.section('tls').only(['certFile', 'keyFile', 'clientCaFile']);
  if (!t && !insecure) r.fail('tls', 'is required (set insecureHttp: true only behind a TLS-terminating proxy)');
  const tls = t
    ? {
        cert: readPem(t, 'certFile'),
        key: readPem(t, 'keyFile'),
        clientCa: t.value.clientCaFile === undefined ? null : readPem(t, 'clientCaFile'),
      }
    : null;
  const token = r.optionalString('token');
  // An open audit endpoint lets anyone forge audit history: one authentication method is mandatory.
  if (!token && !tls?.clientCa) r.fail('token', 'set a bearer token, tls.clientCaFile (client certificates), or both');
  return {
    host: r.string('host', '127.0.0.1'),
    port: r.number('port', 9443, { min: 0, max: 65535, integer: true }),
    path,
    tls,
    token,
    maxBodyBytes: r.number('maxBodyBytes', 16 * 1024 * 1024, { min: 1024, integer: true }),
    maxDecompressedBytes: r.number('maxDecompressedBytes', DEFAULT_MAX_BODY_DECOMPRESSED_BYTES, { min: 1024, integer: true }),
    queueEvents: r.number('queueEvents', 20_000, { min: 1, integer: true }),
    queueBytes: r.number('queueBytes', 64 * 1024 * 1024, { min: 1024, integer: true }),
    limits: parseServerLimits(r),
    spool: parseSpool(r, spoolDir),
  };
}

function parseTail(t: Fields): K8sTailConfig {
  t.only(['file', 'startAt', 'pollIntervalMs', 'chunkBytes', 'maxLineBytes']);
  return {
    file: t.string('file'),
    startAt: t.oneOf('startAt', ['beginning', 'end'] as const, 'end'),
    pollIntervalMs: t.number('pollIntervalMs', 500, { min: 10 }),
    chunkBytes: t.number('chunkBytes', 4 * 1024 * 1024, { min: 1024, integer: true }),
    maxLineBytes: t.number('maxLineBytes', 64 * 1024 * 1024, { min: 1024, integer: true }),
  };
}
