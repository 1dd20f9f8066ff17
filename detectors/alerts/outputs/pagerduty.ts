import type { Alert, CompleteAlert, Severity } from '../alert.js';
import { formatAlert } from '../formats/index.js';
import type { AlertOutput, OutputRouting } from '../outputs.js';
import { postJson } from './http.js';

export interface PagerDutyOptions {
  name?: string;
  /** The 32-character integration key of an Events API v2 integration. A secret. */
  routingKey: string;
  /** @default https://events.pagerduty.com/v2/enqueue */
  url?: string;
  routing?: OutputRouting;
}

const SEVERITY: Record<Severity, 'critical' | 'error' | 'warning' | 'info'> = {
  critical: 'critical',
  high: 'error',
  medium: 'warning',
  low: 'info',
  informational: 'info',
};

/** One PagerDuty alert per break-glass session (dedup_key), resolved when the session is revoked or has ended. */
export function pagerDutyEvent(a: CompleteAlert, routingKey: string, format: OutputRouting['format']): Record<string, unknown> {
  const dedupKey = `glasswatch:${a.sessionId ?? a.id}`;
  if ((a.type === 'breakglass.revocation' && a.revocation?.outcome === 'revoked') || a.type === 'breakglass.session_closed')
    return { routing_key: routingKey, event_action: 'resolve', dedup_key: dedupKey };
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: dedupKey,
    client: 'glasswatch',
    payload: {
      summary: a.summary.slice(0, 1024),
      source: a.principal ?? a.identity ?? a.producer.instance,
      severity: SEVERITY[a.severity],
      timestamp: a.time,
      component: a.source ?? 'glasswatch',
      group: a.identity ?? a.type,
      class: a.type,
      custom_details: formatAlert(a, format),
    },
    ...(a.runbook && /^https:\/\//.test(a.runbook) ? { links: [{ href: a.runbook, text: 'Runbook' }] } : {}),
  };
}

export class PagerDutyOutput implements AlertOutput {
  readonly name: string;
  readonly routing: OutputRouting | undefined;
  constructor(readonly options: PagerDutyOptions) {
    this.name = options.name ?? 'pagerduty';
    this.routing = options.routing;
  }

  async send(alert: Alert): Promise<string | null> {
    const event = pagerDutyEvent(alert as CompleteAlert, this.options.routingKey, this.routing?.format);
    const reply = await postJson(this.name, 'BG_ALERT_PAGERDUTY', this.options.url ?? 'https://events.pagerduty.com/v2/enqueue', event);
    const key = (reply.body as { dedup_key?: unknown } | null)?.dedup_key;
    return typeof key === 'string' ? key : String(event.dedup_key);
  }
}
