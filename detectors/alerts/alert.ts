import { createHash } from 'node:crypto';
import type { Source } from '../../core/event.js';

export const ALERT_TYPES = [
  'breakglass.unauthorized',
  'breakglass.authorized',
  'breakglass.attempt',
  'breakglass.activity',
  'rule.match',
  'pipeline.silence',
  'pipeline.ticket_forged',
  'pipeline.poison',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];
export type Severity = 'informational' | 'low' | 'medium' | 'high' | 'critical';
export type ActivityCategory = 'command' | 'data' | 'config';

/** The one alert schema every output carries. Field names are a contract for SOC tooling. */
export interface Alert {
  /** Deterministic: the same finding always gets the same id, so deliveries are idempotent across replays and restarts. */
  id: string;
  type: AlertType;
  severity: Severity;
  identity: string | null;
  source: Source | null;
  /** The triggering event first. */
  eventIds: string[];
  ticketId: string | null;
  reason: string | null;
  category: ActivityCategory | null;
  ruleId: string | null;
  ruleTitle: string | null;
  /** Sigma rule author, kept as the Detection Rule License requires. */
  ruleAuthor: string | null;
  sessionId: string | null;
  principal: string | null;
  sourceIp: string | null;
  /** Event time of the triggering event. */
  time: string;
  /** When glasswatch raised it (in replay: event time plus the measured processing time). */
  detectedAt: string;
  summary: string;
}

export function alertId(...parts: (string | null)[]): string {
  return `gw-${createHash('sha256')
    .update(parts.map((p) => p ?? '').join('\u0000'))
    .digest('hex')
    .slice(0, 24)}`;
}

export const SEVERITY_RANK: Record<Severity, number> = { informational: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** Sigma `level` to alert severity. */
export function severityOfLevel(level: string | null | undefined): Severity {
  switch (level) {
    case 'critical':
      return 'critical';
    case 'high':
      return 'high';
    case 'medium':
      return 'medium';
    case 'low':
      return 'low';
    default:
      return 'informational';
  }
}
