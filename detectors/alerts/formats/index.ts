import { hostname } from 'node:os';
import { packageVersion } from '../../../core/paths.js';
import { type Alert, type CompleteAlert, completeAlert } from '../alert.js';
import { toEcs } from './ecs.js';
import { toOcsf } from './ocsf.js';

export const ALERT_FORMATS = ['native', 'ocsf', 'ecs'] as const;
export type AlertFormat = (typeof ALERT_FORMATS)[number];

/** The alert in the profile an output is configured with (`format: native | ocsf | ecs`). */
export function formatAlert(alert: Alert, format: AlertFormat = 'native'): Record<string, unknown> {
  if (format === 'native') return alert as unknown as Record<string, unknown>;
  // Outputs normally get alerts the dispatcher completed; one sent directly is completed here.
  const a = alert.schemaVersion ? (alert as CompleteAlert) : completeAlert({ ...alert }, { producer: localProducer() });
  switch (format) {
    case 'ocsf':
      return toOcsf(a);
    case 'ecs':
      return toEcs(a);
    default:
      return alert as unknown as Record<string, unknown>;
  }
}

let producer: CompleteAlert['producer'] | null = null;
export function localProducer(): CompleteAlert['producer'] {
  producer ??= { name: 'glasswatch', version: packageVersion(), instance: hostname() };
  return producer;
}

/** Subject of a grouped update: the session and how many alerts it carries. */
export function groupTitle(alerts: readonly CompleteAlert[]): string {
  const a = alerts[0];
  return `${alerts.length} update(s) in break-glass session ${a?.sessionId ?? '-'} of ${a?.identity ?? 'unknown'} (${a?.principal ?? 'unknown principal'})`;
}

/** Body of a grouped update: one line per alert, oldest first. */
export function groupText(alerts: readonly CompleteAlert[]): string {
  return alerts.map((a) => `${a.time} [${a.severity}] ${a.type}: ${a.summary}`).join('\n');
}
