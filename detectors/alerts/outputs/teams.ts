import type { Alert, CompleteAlert } from '../alert.js';
import { groupText, groupTitle } from '../formats/index.js';
import type { AlertOutput, OutputRouting } from '../outputs.js';
import { postJson } from './http.js';

export interface TeamsOptions {
  name?: string;
  /** The Workflow's "When a Teams webhook request is received" URL (signed: a secret). */
  url: string;
  routing?: OutputRouting;
}

/**
 * Adaptive Card text is a Markdown subset (emphasis, lists, `[text](url)` links): audited names must
 * not become links or formatting. Only those characters are escaped, so IPs and ARNs stay readable.
 */
export function plain(text: string): string {
  return text.replace(/[\\*_[\]()]/g, (c) => `\\${c}`);
}

function card(body: unknown[], runbook: string | null): Record<string, unknown> {
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body,
          ...(runbook && /^https:\/\//.test(runbook) ? { actions: [{ type: 'Action.OpenUrl', title: 'Runbook', url: runbook }] } : {}),
        },
      },
    ],
  };
}

/** The alert as an Adaptive Card in the incoming-webhook message format. */
export function teamsCard(a: CompleteAlert): Record<string, unknown> {
  const facts = [
    ['Type', a.type],
    ['Severity', a.severity],
    ['Identity', a.identity],
    ['Principal', a.principal],
    ['Action', a.action],
    ['Account', a.account],
    ['Cluster', a.cluster],
    ['Source IP', a.sourceIp],
    ['Reason', a.reason],
    ['Ticket', a.ticketId],
    ['Revocation', a.revocation ? `${a.revocation.outcome} (${a.revocation.target})` : a.revocationMode],
    ['Next step', a.revocation?.nextStep ?? null],
    ['Rule', a.ruleTitle],
    ['Event time', a.time],
    ['Session', a.sessionId],
    ['Alert', a.id],
  ]
    .filter(([, v]) => v)
    .map(([title, value]) => ({ title: String(title), value: plain(String(value)) }));
  return card(
    [
      { type: 'TextBlock', text: plain(a.summary), wrap: true, weight: 'Bolder', color: a.severityId >= 4 ? 'Attention' : 'Default' },
      { type: 'FactSet', facts },
    ],
    a.runbook,
  );
}

export class TeamsOutput implements AlertOutput {
  readonly name: string;
  readonly routing: OutputRouting | undefined;
  constructor(readonly options: TeamsOptions) {
    this.name = options.name ?? 'teams';
    this.routing = options.routing;
  }

  async send(alert: Alert): Promise<string | null> {
    await postJson(this.name, 'BG_ALERT_TEAMS', this.options.url, teamsCard(alert as CompleteAlert));
    return null;
  }

  async sendGroup(alerts: CompleteAlert[]): Promise<string | null> {
    const body = [
      { type: 'TextBlock', text: plain(groupTitle(alerts)), wrap: true, weight: 'Bolder' },
      { type: 'TextBlock', text: plain(groupText(alerts)).slice(0, 20_000), wrap: true },
    ];
    await postJson(this.name, 'BG_ALERT_TEAMS', this.options.url, card(body, alerts[0]?.runbook ?? null));
    return null;
  }
}
