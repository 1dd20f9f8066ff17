import type { AuditEvent, Source } from '../core/event.js';

/** Where a record came from: enough for a human to open the file and find it. */
export interface Origin {
  /** File path, or a collector-specific locator such as `s3://bucket/key` or `okta:/api/v1/logs`. */
  file: string;
  /** 1-based line for JSON-lines input; null for a single JSON document. */
  line: number | null;
  /** 0-based index of the record inside its envelope (Records[], items[], data.events[], an array). */
  index: number | null;
  /**
   * Where the record sits inside the parsed document, e.g. `Records[3]`, `[2].data.Records[0]`,
   * `input.message`; absent for a record that is the whole document or line.
   */
  path?: string;
}

export type NormalizeResult =
  | { kind: 'event'; event: AuditEvent; origin: Origin }
  /**
   * Recognised input that is not an audit event we handle: counted, not an error.
   * `what` is a stable kind such as `cloudtrail-digest`, `eventbridge-non-cloudtrail:GuardDuty Finding`,
   * `gke-cloud-audit-log`.
   */
  | { kind: 'skipped'; source: Source | null; what: string; origin: Origin }
  /** Input that could not be normalized: goes to the dead-letter store with the reason and the text. */
  | { kind: 'dead'; source: Source | null; reason: string; origin: Origin; text: string };

export interface NormalizeOptions {
  /** Cluster name stamped on Kubernetes events (the audit Event itself does not carry it). */
  cluster?: string;
  /**
   * Restrict auto-detection to one source (a collector knows what it reads): a record of another
   * source is dead-lettered, and a record of no recognisable shape goes through this source's
   * normalizer, so the dead letter names the missing field.
   */
  source?: Source;
  /** Okta org host (e.g. `acme.okta.com`) stamped as `org` on Okta events. @default the Event Hook `source` host, else null */
  oktaOrg?: string;
  /** AWS Organization id stamped as `org` on CloudTrail events. @default the `o-…` segment of an org-trail S3 key, else null */
  awsOrg?: string;
  /**
   * Deepest nesting of objects and arrays accepted in one record (the record itself is level 1), and
   * of envelopes around records. Deeper is a dead letter: `raw` is serialized by recursive code
   * downstream (JSON.stringify overflows the stack at a few thousand levels). @default 512
   */
  maxDepth?: number;
  /** Largest record accepted, in bytes of its JSON text (estimated for records inside a document). @default 1 MiB */
  maxRecordBytes?: number;
  /** Output budget when gzip input is inflated. @default 256 MiB (DEFAULT_MAX_OBJECT_DECOMPRESSED_BYTES) */
  maxDecompressedBytes?: number;
}

/** Real audit records nest under 20 levels; 512 leaves room for any genuine payload and stays far from the stack. */
export const DEFAULT_MAX_DEPTH = 512;
/**
 * CloudTrail documents records of up to 256 KB, Okta events are a few KB, and the API server truncates
 * audit events to 100 KiB when asked; Kafka's default `message.max.bytes` (1 MiB) could not carry a
 * larger event anyway.
 */
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;
