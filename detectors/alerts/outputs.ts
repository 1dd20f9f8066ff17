import { appendFile } from 'node:fs/promises';
import type { Transporter } from 'nodemailer';
import type { Bus } from '../../core/bus/types.js';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import { openPrivateFile, PRIVATE_FILE_MODE } from '../../core/paths.js';
import { signedHeaders } from '../../core/signing.js';
import type { Alert, CompleteAlert } from './alert.js';
import { type AlertFormat, formatAlert, groupText, groupTitle } from './formats/index.js';
import type { RouteFilter } from './routing.js';

/** Where alerts go. `send` resolves when the receiver acknowledged; it throws a GlasswatchError otherwise. */
export interface AlertOutput {
  readonly name: string;
  /** Returns a receipt (message id) when the receiver gives one. */
  send(alert: Alert): Promise<string | null>;
  /** Human outputs (e-mail, chat): one message for several alerts of a session (a grouped update). */
  sendGroup?(alerts: CompleteAlert[]): Promise<string | null>;
  /** Filters and grouping of this output (config: minSeverity, types, identities, groupWindowSeconds). */
  readonly routing?: OutputRouting;
  close?(): Promise<void>;
}

export interface OutputRouting {
  filter?: RouteFilter;
  /** Only for outputs with `sendGroup`; 0 sends every alert on its own. @default 60 */
  groupWindowSeconds?: number;
  /** @default native */
  format?: AlertFormat;
}

export interface WebhookOutputOptions {
  name?: string;
  url: string;
  /** HMAC-SHA256 key; every request is signed (see core/signing.ts). */
  secret: string;
  /**
   * `json`/`native` = the alert as is; `ocsf`/`ecs` = that profile; `slack` = a Slack-compatible
   * `{text, blocks}` body (signature headers still sent), with a session's activity grouped.
   */
  format?: 'json' | AlertFormat | 'slack';
  /** @default 5000 */
  timeoutMs?: number;
  routing?: OutputRouting;
}

export class WebhookOutput implements AlertOutput {
  readonly name: string;
  readonly routing: OutputRouting | undefined;
  readonly sendGroup: ((alerts: CompleteAlert[]) => Promise<string | null>) | undefined;
  constructor(readonly options: WebhookOutputOptions) {
    this.name = options.name ?? `webhook:${new URL(options.url).host}`;
    this.routing = options.routing;
    // Chat is read by people: a session's activity comes as updates. A JSON webhook feeds machines and gets every alert.
    this.sendGroup = options.format === 'slack' ? (alerts) => this.#post(slackGroupBody(alerts), alerts[0]?.id ?? '') : undefined;
  }

  async send(alert: Alert): Promise<string | null> {
    const f = this.options.format;
    return this.#post(f === 'slack' ? slackBody(alert) : formatAlert(alert, f === 'json' || !f ? 'native' : f), alert.id);
  }

  async #post(payload: unknown, idempotencyKey: string): Promise<string | null> {
    const body = JSON.stringify(payload);
    let res: Response;
    try {
      res = await fetch(this.options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': idempotencyKey,
          'user-agent': 'glasswatch',
          ...signedHeaders(this.options.secret, body),
        },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
      });
    } catch (cause) {
      throw new GlasswatchError('BG_ALERT_WEBHOOK', `${this.name}: request failed: ${(cause as Error).message}`, {
        stage: 'sending',
        retriable: true,
        cause,
      });
    }
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) {
      // 4xx other than 408/429 will not heal by retrying the same body.
      const retriable = res.status >= 500 || res.status === 408 || res.status === 429;
      throw new GlasswatchError('BG_ALERT_WEBHOOK', `${this.name}: HTTP ${res.status}`, {
        stage: 'sending',
        retriable,
        context: { status: res.status },
      });
    }
    return res.headers.get('x-request-id');
  }
}

/**
 * Slack's three control characters, escaped as Slack documents: names and summaries come from
 * audited systems, and `<!channel>`, `<@U123>` or `<https://evil|click>` in a principal name
 * must reach the channel as text, not as a mention or a disguised link.
 */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** One Slack message for a grouped update of a session: what happened since the last message. */
export function slackGroupBody(alerts: CompleteAlert[]): Record<string, unknown> {
  const e = slackEscape;
  return {
    text: e(groupTitle(alerts)),
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `:information_source: *${e(groupTitle(alerts))}*` } },
      { type: 'section', text: { type: 'mrkdwn', text: e(groupText(alerts)).slice(0, 2900) } },
    ],
  };
}

export function slackBody(alert: Alert): Record<string, unknown> {
  const icon =
    alert.type === 'breakglass.unauthorized'
      ? ':rotating_light:'
      : alert.type === 'breakglass.attempt'
        ? ':warning:'
        : ':information_source:';
  const e = slackEscape;
  const fields = [
    ['Identity', alert.identity],
    ['Principal', alert.principal],
    ['Reason', alert.reason],
    ['Ticket', alert.ticketId],
    ['Category', alert.category],
    ['Rule', alert.ruleTitle ? `${alert.ruleTitle} (${alert.ruleAuthor ?? 'unknown author'})` : null],
    ['Source IP', alert.sourceIp],
    ['Event time', alert.time],
  ].filter(([, v]) => v);
  return {
    text: `${icon} [${e(alert.severity.toUpperCase())}] ${e(alert.type)}: ${e(alert.summary)}`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `${icon} *${e(alert.type)}* — ${e(alert.summary)}` } },
      { type: 'section', fields: fields.map(([k, v]) => ({ type: 'mrkdwn', text: `*${k}*\n${e(String(v))}` })) },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: e(`alert ${alert.id} · session ${alert.sessionId ?? '-'} · events ${alert.eventIds.join(', ')}`),
          },
        ],
      },
    ],
  };
}

/**
 * An SMTP failure as the operator needs to read it. nodemailer's ETLS comes from `requireTLS`
 * (set whenever auth is configured): the server offered no STARTTLS, or TLS itself failed.
 */
export function smtpFailureText(err: unknown): string {
  const e = err as { code?: unknown; command?: unknown; responseCode?: unknown };
  const text = errorMessage(err);
  if (e.code !== 'ETLS') return text;
  if (e.command === 'STARTTLS' && typeof e.responseCode === 'number')
    return (
      `${text}: the SMTP server does not offer STARTTLS, and glasswatch never sends the SMTP password and the mail in clear text. ` +
      'Enable STARTTLS on the server, or use implicit TLS (smtp.secure: true, usually port 465); ' +
      'for a local test server only, set smtp.allowInsecureAuth: true'
    );
  return `${text}: TLS with the SMTP server failed; check smtp.host, smtp.port, smtp.secure and the server certificate (smtp.caFile)`;
}

/** 5xx replies, rejected credentials and TLS refusals will not heal by retrying; connection errors and 4xx might. */
export function smtpRetriable(err: unknown): boolean {
  const e = err as { responseCode?: unknown; code?: unknown };
  if (typeof e.responseCode === 'number' && e.responseCode >= 500) return false;
  return e.code !== 'EAUTH' && e.code !== 'ETLS';
}

export interface EmailOutputOptions {
  name?: string;
  transport: Transporter;
  from: string;
  to: string[];
  routing?: OutputRouting;
}

export class EmailOutput implements AlertOutput {
  readonly name: string;
  readonly routing: OutputRouting | undefined;
  constructor(readonly options: EmailOutputOptions) {
    this.name = options.name ?? 'email';
    this.routing = options.routing;
  }

  /** One mail for a session's activity since the last mail (`groupWindowSeconds`). */
  async sendGroup(alerts: CompleteAlert[]): Promise<string | null> {
    const first = alerts[0];
    if (!first) return null;
    const top = alerts.reduce((m, a) => (a.severityId > m.severityId ? a : m), first);
    return this.#mail({
      subject: `[glasswatch][${top.severity.toUpperCase()}] ${groupTitle(alerts)}`,
      text: `${groupText(alerts)}\n\n${alerts.map((a) => JSON.stringify(formatAlert(a, this.routing?.format), null, 2)).join('\n\n')}\n`,
      headers: { 'X-Glasswatch-Alert-Id': alerts.map((a) => a.id).join(' ') },
      messageId: `<${first.id}.group@glasswatch>`,
    });
  }

  async send(alert: Alert): Promise<string | null> {
    return this.#mail({
      subject: `[glasswatch][${alert.severity.toUpperCase()}] ${alert.type}: ${alert.summary}`,
      text: `${alert.summary}\n\n${JSON.stringify(formatAlert(alert, this.routing?.format), null, 2)}\n`,
      headers: { 'X-Glasswatch-Alert-Id': alert.id },
      messageId: `<${alert.id}@glasswatch>`,
    });
  }

  async #mail(m: { subject: string; text: string; headers: Record<string, string>; messageId: string }): Promise<string | null> {
    try {
      const info = await this.options.transport.sendMail({ from: this.options.from, to: this.options.to, ...m });
      return typeof info.messageId === 'string' ? info.messageId : null;
    } catch (cause) {
      throw new GlasswatchError('BG_ALERT_EMAIL', `${this.name}: SMTP delivery failed: ${smtpFailureText(cause)}`, {
        stage: 'sending',
        retriable: smtpRetriable(cause),
        cause,
      });
    }
  }
}

export class KafkaAlertOutput implements AlertOutput {
  readonly name: string;
  constructor(
    readonly bus: Bus,
    readonly topic: string,
    readonly routing?: OutputRouting,
  ) {
    this.name = `bus:${topic}`;
  }

  async send(alert: Alert): Promise<string | null> {
    const value = JSON.stringify(formatAlert(alert, this.routing?.format));
    await this.bus.publish(this.topic, [{ key: alert.id, value, headers: { 'glasswatch-alert-type': alert.type } }]);
    return null;
  }
}

/** Alerts as JSON lines, in a 0600 file (a file found more open is tightened on the first alert). */
export class JsonLinesAlertOutput implements AlertOutput {
  readonly name: string;
  #ready: Promise<void> | null = null;
  constructor(
    readonly path: string,
    readonly routing?: OutputRouting,
  ) {
    this.name = `file:${path}`;
  }

  async send(alert: Alert): Promise<string | null> {
    this.#ready ??= openPrivateFile(this.path, 'a').then((h) => h.close());
    try {
      await this.#ready;
    } catch (err) {
      this.#ready = null;
      throw err;
    }
    await appendFile(this.path, `${JSON.stringify(formatAlert(alert, this.routing?.format))}\n`, { mode: PRIVATE_FILE_MODE });
    return null;
  }
}
