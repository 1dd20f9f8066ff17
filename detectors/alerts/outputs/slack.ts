import { GlasswatchError } from '../../../core/errors.js';
import type { Alert, CompleteAlert } from '../alert.js';
import type { AlertOutput, OutputRouting } from '../outputs.js';
import { slackBody, slackGroupBody } from '../outputs.js';
import { postJson } from './http.js';

export interface SlackBotOptions {
  name?: string;
  /** Bot token (`xoxb-…`) with chat:write. A secret. */
  token: string;
  /** Channel ID. */
  channel: string;
  /** @default https://slack.com/api */
  apiUrl?: string;
  routing?: OutputRouting;
}

/** Slack errors that resending the same message will not fix. */
const PERMANENT = new Set([
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'msg_too_long',
  'msg_blocks_too_long',
  'missing_scope',
]);
const URGENT = new Set([
  'breakglass.unauthorized',
  'breakglass.revocation',
  'breakglass.revocation_ineffective',
  'breakglass.linked_session',
]);

/**
 * Slack through chat.postMessage with a bot token: the first message of a session opens a thread
 * and the session's later alerts and updates go into it (`thread_ts` = the parent's `ts`); the
 * unauthorized and revocation alerts are also broadcast to the channel.
 */
export class SlackBotOutput implements AlertOutput {
  readonly name: string;
  readonly routing: OutputRouting | undefined;
  /** Session id → parent message ts; bounded, oldest session forgotten first. */
  readonly threads = new Map<string, string>();
  constructor(readonly options: SlackBotOptions) {
    this.name = options.name ?? `slack:${options.channel}`;
    this.routing = options.routing;
  }

  async send(alert: Alert): Promise<string | null> {
    return this.#post(slackBody(alert), alert.sessionId, URGENT.has(alert.type));
  }

  async sendGroup(alerts: CompleteAlert[]): Promise<string | null> {
    return this.#post(slackGroupBody(alerts), alerts[0]?.sessionId ?? null, false);
  }

  async #post(body: Record<string, unknown>, sessionId: string | null, broadcast: boolean): Promise<string | null> {
    const thread = sessionId ? this.threads.get(sessionId) : undefined;
    const message = {
      channel: this.options.channel,
      ...body,
      unfurl_links: false,
      ...(thread ? { thread_ts: thread, ...(broadcast ? { reply_broadcast: true } : {}) } : {}),
    };
    const reply = await postJson(
      this.name,
      'BG_ALERT_SLACK',
      `${this.options.apiUrl ?? 'https://slack.com/api'}/chat.postMessage`,
      message,
      {
        authorization: `Bearer ${this.options.token}`,
      },
    );
    const r = reply.body as { ok?: boolean; ts?: string; error?: string } | null;
    if (!r?.ok) {
      const error = r?.error ?? 'no ok in the reply';
      throw new GlasswatchError('BG_ALERT_SLACK', `${this.name}: chat.postMessage: ${error}`, {
        stage: 'sending',
        retriable: !PERMANENT.has(error),
        hint: error === 'not_in_channel' ? 'invite the bot to the channel (/invite @bot)' : undefined,
      });
    }
    if (sessionId && !thread && r.ts) {
      this.threads.set(sessionId, r.ts);
      if (this.threads.size > 10_000) this.threads.delete(this.threads.keys().next().value as string);
    }
    return r.ts ?? null;
  }
}
