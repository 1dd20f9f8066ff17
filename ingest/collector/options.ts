/**
 * The shared part of the `collectors:` config section; each source validates its own subsection
 * (`collectors.okta` in ingest/okta/options.ts, `collectors.k8s` in ingest/k8s/options.ts,
 * `collectors.cloudtrail` by the CloudTrail collector).
 *
 * ```yaml
 * collectors:
 *   checkpointDir: .glasswatch/checkpoints   # one <collector>.json per collector
 *   alertsTopic: glasswatch.alerts            # where pipeline alerts go (default: topics.alerts)
 *   silenceSeconds: 3600                      # default for every collector; each may override
 *   metrics: { host: 127.0.0.1, port: 9464 }  # GET /metrics, /healthz; omit to disable
 *   okta: { ... }
 *   k8s: { ... }
 *   cloudtrail: { ... }
 * ```
 */
import { readFileSync } from 'node:fs';
import { Fields, type GlasswatchConfig } from '../../core/config.js';
import { DEFAULT_SERVER_LIMITS, type ServerLimits } from './http.js';

export interface CollectorsCommonConfig {
  /** @default ".glasswatch/checkpoints" */
  checkpointDir: string;
  /** Where pipeline.silence / pipeline.poison / pipeline.tamper go. @default topics.alerts ("glasswatch.alerts"): the delivery workers' topic */
  alertsTopic: string;
  /** Seconds without events before a `pipeline.silence` alert. @default 3600 */
  silenceSeconds: number;
  /** The `/metrics` server; null when not configured. */
  metrics: { host: string; port: number } | null;
}

/** Subsections the `collectors:` mapping may hold; unknown keys are config errors. */
export const COLLECTOR_SECTIONS = ['okta', 'k8s', 'cloudtrail'] as const;
const COMMON_KEYS = ['checkpointDir', 'alertsTopic', 'silenceSeconds', 'metrics'];

/** The `collectors` mapping of a loaded config as `Fields` (empty when absent). */
export function collectorsFields(config: Pick<GlasswatchConfig, 'sections' | 'file'>): Fields {
  return Fields.of(config.file, 'collectors', config.sections.collectors).only([...COMMON_KEYS, ...COLLECTOR_SECTIONS]);
}

/** Validates the shared keys. Throws `ConfigError` naming file and field. */
export function parseCollectorsCommon(f: Fields, defaultAlertsTopic = 'glasswatch.alerts'): CollectorsCommonConfig {
  const m = f.value.metrics === undefined ? null : f.section('metrics').only(['host', 'port']);
  return {
    checkpointDir: f.string('checkpointDir', '.glasswatch/checkpoints'),
    alertsTopic: f.string('alertsTopic', defaultAlertsTopic),
    silenceSeconds: f.number('silenceSeconds', 3600, { min: 1 }),
    metrics: m ? { host: m.string('host', '127.0.0.1'), port: m.number('port', 9464, { min: 0, max: 65535, integer: true }) } : null,
  };
}

/** Reads a PEM file named by a config field; the error names the field, never the contents. */
export function readPem(f: Fields, key: string): Buffer {
  const file = f.string(key);
  try {
    return readFileSync(file);
  } catch (err) {
    f.fail(key, `cannot read "${file}": ${(err as Error).message}`);
  }
}

/** Keys of a receiver's `limits:` mapping (see `ServerLimits` in http.ts for the defaults and why). */
export const SERVER_LIMIT_KEYS = Object.keys(DEFAULT_SERVER_LIMITS) as (keyof ServerLimits)[];

/**
 * A receiver's optional `limits:` mapping, e.g. `limits: { maxConnectionsPerIp: 256 }` behind a
 * proxy that funnels every client through one address. Unset keys keep the defaults.
 */
export function parseServerLimits(receiver: Fields): ServerLimits {
  const l = receiver.section('limits').only(SERVER_LIMIT_KEYS);
  const out = { ...DEFAULT_SERVER_LIMITS };
  for (const key of SERVER_LIMIT_KEYS) out[key] = l.number(key, DEFAULT_SERVER_LIMITS[key], { min: 1, integer: true });
  return out;
}

/** A receiver's on-disk spool (ingest/collector/spool.ts). */
export interface SpoolConfig {
  /** @default "<checkpointDir>/spool/<collector>" */
  dir: string;
  /** Unacknowledged bytes at most; beyond, 503 + Retry-After. @default 1073741824 (1 GiB) */
  maxBytes: number;
  /** @default 33554432 (32 MiB) */
  segmentBytes: number;
}

/**
 * A receiver's optional `spool:` mapping, e.g. `spool: { dir: /var/lib/glasswatch/spool/k8s, maxBytes: 4294967296 }`.
 * `spool: false` answers only after Kafka acknowledged (no disk; a broker outage is then a 503 outage).
 */
export function parseSpool(receiver: Fields, defaultDir: string): SpoolConfig | null {
  if (receiver.value.spool === false) return null;
  const s = receiver.section('spool').only(['dir', 'maxBytes', 'segmentBytes']);
  const segmentBytes = s.number('segmentBytes', 32 * 1024 * 1024, { min: 1024, integer: true });
  const maxBytes = s.number('maxBytes', 1024 * 1024 * 1024, { min: 1024, integer: true });
  if (maxBytes < segmentBytes) s.fail('maxBytes', `must be at least segmentBytes (${segmentBytes})`);
  return { dir: s.string('dir', defaultDir), maxBytes, segmentBytes };
}
