import { appendFile } from 'node:fs/promises';
import type { Transporter } from 'nodemailer';
import type { Bus } from '../../core/bus/types.js';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import { openPrivateFile, PRIVATE_FILE_MODE } from '../../core/paths.js';
import { signedHeaders } from '../../core/signing.js';
import type { Alert } from './alert.js';

/** Where alerts go. `send` resolves when the receiver acknowledged; it throws a GlasswatchError otherwise. */
export interface AlertOutput {
  readonly name: string;
  /** Returns a receipt (message id) when the receiver gives one. */
  send(alert: Alert): Promise<string | null>;
  close?(): Promise<void>;
}

export interface WebhookOutputOptions {
  name?: string;
  url: string;
  /** HMAC-SHA256 key; every request is signed (see core/signing.ts). */
  secret: string;
  /** `json` = the alert as is; `slack` = a Slack-compatible `{text, blocks}` body (signature headers still sent). */
  format?: 'json' | 'slack';
  /** @default 5000 */
  timeoutMs?: number;
}

export class WebhookOutput implements AlertOutput {
  readonly name: string;
  constructor(readonly options: WebhookOutputOptions) {
    this.name = options.name ?? `webhook:${new URL(options.url).host}`;
  }

  async send(alert: Alert): Promise<string | null> {
    const body = JSON.stringify(this.options.format === 'slack' ? slackBody(alert) : alert);
    let res: Response;
    try {
      res = await fetch(this.options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': alert.id,
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
}

export class EmailOutput implements AlertOutput {
  readonly name: string;
  constructor(readonly options: EmailOutputOptions) {
    this.name = options.name ?? 'email';
  }

  async send(alert: Alert): Promise<string | null> {
    try {
      const info = await this.options.transport.sendMail({
        from: this.options.from,
        to: this.options.to,
        subject: `[glasswatch][${alert.severity.toUpperCase()}] ${alert.type}: ${alert.summary}`,
        text: `${alert.summary}\n\n${JSON.stringify(alert, null, 2)}\n`,
        headers: { 'X-Glasswatch-Alert-Id': alert.id },
        messageId: `<${alert.id}@glasswatch>`,
      });
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
  ) {
    this.name = `bus:${topic}`;
  }

  async send(alert: Alert): Promise<string | null> {
    await this.bus.publish(this.topic, [{ key: alert.id, value: JSON.stringify(alert), headers: { 'glasswatch-alert-type': alert.type } }]);
    return null;
  }
}

/** Alerts as JSON lines, in a 0600 file (a file found more open is tightened on the first alert). */
export class JsonLinesAlertOutput implements AlertOutput {
  readonly name: string;
  #ready: Promise<void> | null = null;
  constructor(readonly path: string) {
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
    await appendFile(this.path, `${JSON.stringify(alert)}\n`, { mode: PRIVATE_FILE_MODE });
    return null;
  }
}
