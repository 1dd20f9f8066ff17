/**
 * Our input streams as Sigma logsources: the one place that maps a source name to
 * the logsource rules select, the raw fields that identify and time an event, and
 * the fields worth indexing. Data, not code, so that a new source is one entry.
 */
import type { LogSource } from './ir.js';

export type SourceName = 'cloudtrail' | 'okta' | 'k8s';

export interface SourceProfile {
  /** Rules apply when every logsource field they set equals this one (sigma-spec-notes §1). */
  logsource: LogSource;
  /** Raw field holding the source's own event id. */
  idField: string;
  /** Raw fields holding the event time, first present wins. */
  timeFields: string[];
  /** Equality fields preferred for the candidate index, best first. */
  indexFields: string[];
}

export const SOURCE_PROFILES: Readonly<Record<SourceName, SourceProfile>> = {
  cloudtrail: {
    logsource: { product: 'aws', service: 'cloudtrail' },
    idField: 'eventID',
    timeFields: ['eventTime'],
    indexFields: ['eventName', 'eventSource'],
  },
  okta: {
    logsource: { product: 'okta', service: 'okta' },
    idField: 'uuid',
    timeFields: ['published'],
    indexFields: ['eventType'],
  },
  k8s: {
    // SigmaHQ's Kubernetes audit rules mostly also set `category: application`.
    logsource: { category: 'application', product: 'kubernetes', service: 'audit' },
    idField: 'auditID',
    timeFields: ['requestReceivedTimestamp', 'stageTimestamp'],
    indexFields: ['verb', 'objectRef.resource'],
  },
};

export const SOURCE_NAMES = Object.keys(SOURCE_PROFILES) as SourceName[];

/** A rule applies to a stream when every category/product/service it sets matches. */
export function ruleAppliesTo(rule: LogSource, stream: LogSource): boolean {
  for (const key of ['category', 'product', 'service'] as const) {
    if (rule[key] !== undefined && rule[key] !== stream[key]) return false;
  }
  return true;
}

/**
 * Event time in epoch ms from the profile's time fields. Accepts ISO 8601 and the
 * space-separated form some exporters write (`2021-01-01 01:01:01.000000000`, UTC).
 */
export function eventTimeMs(source: SourceName, raw: Record<string, unknown>): number | undefined {
  for (const field of SOURCE_PROFILES[source].timeFields) {
    const v = raw[field];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v !== 'string') continue;
    const t = parseTimestamp(v);
    if (t !== undefined) return t;
  }
  return undefined;
}

export function parseTimestamp(text: string): number | undefined {
  let t = Date.parse(text);
  if (Number.isNaN(t)) {
    const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(text.trim());
    if (!m) return undefined;
    t = Date.parse(`${m[1]}T${m[2]}${(m[3] ?? '').slice(0, 4)}${m[4] ?? 'Z'}`);
  } else if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(text.trim()) && /T|\s\d/.test(text)) {
    // A date-time without zone is local time for Date.parse; audit logs mean UTC.
    t = Date.parse(`${text.trim()}Z`);
  }
  return Number.isNaN(t) ? undefined : t;
}
