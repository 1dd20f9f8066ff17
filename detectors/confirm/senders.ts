import type { Transporter } from 'nodemailer';
import { GlasswatchError } from '../../core/errors.js';
import { signedHeaders } from '../../core/signing.js';
import { postJson } from '../alerts/outputs/http.js';
import { slackEscape, smtpFailureText, smtpRetriable } from '../alerts/outputs.js';
import type { ConfirmSettings, ConfirmVia } from './config.js';

/** One "was this you?" as it is sent: what happened, when, where, and the link that answers it. */
export interface Question {
  confirmationId: string;
  sessionId: string;
  identity: string;
  alertId: string;
  owner: string;
  via: ConfirmVia;
  link: string;
  askedAtMs: number;
  dueAtMs: number;
  principal: string;
  sourceIp: string;
  action: string;
  eventTime: string;
  where: string;
}

/** Sends a question; resolves with what the receiver answered (message id, status), throws a GlasswatchError. */
export type QuestionSender = (q: Question) => Promise<string>;

function lines(q: Question): string[] {
  return [
    `Break-glass identity ${q.identity} was used without an approved ticket.`,
    '',
    `  who:     ${q.principal}`,
    `  what:    ${q.action}`,
    `  when:    ${q.eventTime}`,
    `  where:   ${q.where} from ${q.sourceIp}`,
    `  session: ${q.sessionId}`,
    '',
    `Was this you? Answer before ${new Date(q.dueAtMs).toISOString()}: ${q.link}`,
    'If you answer "no", or nobody answers by then, the session is revoked.',
  ];
}

/** The configured way of asking, per `via` (the e-mail path of the alert outputs, the signed webhook, Slack's format). */
export function questionSenders(settings: ConfirmSettings, transport: () => Transporter): Record<ConfirmVia, QuestionSender> {
  return {
    email: async (q) => {
      try {
        const info = await transport().sendMail({
          from: settings.from ?? '',
          to: q.owner,
          subject: `[glasswatch] Was this you? ${q.identity} used at ${q.eventTime}`,
          text: `${lines(q).join('\n')}\n`,
          headers: { 'X-Glasswatch-Confirmation-Id': q.confirmationId, 'X-Glasswatch-Alert-Id': q.alertId },
          messageId: `<${q.confirmationId}@glasswatch>`,
        });
        return `mail ${String(info.messageId ?? '')}`;
      } catch (cause) {
        throw new GlasswatchError('BG_CONFIRM_EMAIL', `confirmation mail not sent: ${smtpFailureText(cause)}`, {
          stage: 'sending',
          retriable: smtpRetriable(cause),
          cause,
        });
      }
    },
    webhook: async (q) => {
      const hook = settings.webhook!;
      const payload = {
        type: 'glasswatch.confirmation',
        confirmationId: q.confirmationId,
        sessionId: q.sessionId,
        identity: q.identity,
        alertId: q.alertId,
        owner: q.owner,
        question: lines(q).join('\n'),
        principal: q.principal,
        action: q.action,
        eventTime: q.eventTime,
        where: q.where,
        sourceIp: q.sourceIp,
        link: q.link,
        dueAt: new Date(q.dueAtMs).toISOString(),
      };
      // postJson sends JSON.stringify(payload): the very bytes signed here.
      const reply = await postJson(
        'confirmation webhook',
        'BG_CONFIRM_WEBHOOK',
        hook.url,
        payload,
        signedHeaders(hook.secret, JSON.stringify(payload)),
      );
      return `webhook HTTP ${reply.status}`;
    },
    slack: async (q) => {
      const e = slackEscape;
      const text = `<@${q.owner}> was this you? Break-glass identity ${e(q.identity)} was used by ${e(q.principal)} without an approved ticket.`;
      const reply = await postJson('confirmation slack', 'BG_CONFIRM_SLACK', settings.slack!.url, {
        text,
        unfurl_links: false,
        blocks: [
          { type: 'section', text: { type: 'mrkdwn', text: `:question: ${text}` } },
          {
            type: 'section',
            fields: [
              ['What', q.action],
              ['When', q.eventTime],
              ['Where', `${q.where} from ${q.sourceIp}`],
              ['Session', q.sessionId],
            ].map(([k, v]) => ({ type: 'mrkdwn', text: `*${k}*\n${e(String(v))}` })),
          },
          {
            type: 'section',
            text: {
              type: 'mrkdwn',
              text: `<${q.link}|Answer here> before ${new Date(q.dueAtMs).toISOString()}: "no" or no answer revokes the session.`,
            },
          },
        ],
      });
      return `slack HTTP ${reply.status}`;
    },
  };
}
