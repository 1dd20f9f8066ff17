import { createHash } from 'node:crypto';
import type { SendMailOptions } from 'nodemailer';
import { errorMessage, withRetry } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Store } from '../core/store/client.js';
import { insertRows } from '../core/store/writer.js';
import { smtpFailureText, smtpRetriable } from '../detectors/alerts/outputs.js';
import type { DeliveryRetry } from './options.js';
import { REPORTS } from './registry.js';
import { renderHtml } from './render/html.js';
import { type ReportFormat, renderReport } from './render/index.js';
import { detachedSignature, type ReportSigner, reportFileStem, type SignedReport } from './signing.js';
import { runQuery } from './sql.js';
import type { AnyReport } from './types.js';

/** What report mail needs of a nodemailer transport (a test can hand in its own). */
export interface MailTransport {
  sendMail(mail: SendMailOptions): Promise<{ messageId?: string }>;
}

export interface MailContext {
  store: Store;
  transport: MailTransport;
  /** Sender address. */
  from: string;
  subjectPrefix: string;
  retry: DeliveryRetry;
  log: Logger;
  /**
   * Signs every mailed report (reports/signing.ts): the body carries digest, signature and the
   * verify command, and `<stem>.sig.json` is attached. Without one the body says "Unsigned report".
   */
  signer?: ReportSigner | null;
}

export interface DeliveryRequest {
  recipients: string[];
  /** Schedule name, or null for a one-off `report send`. */
  schedule: string | null;
  /** Attachment format; the body is always HTML. */
  format: ReportFormat;
}

export interface DeliveryRecord {
  deliveryId: string;
  report: string;
  schedule: string | null;
  from: string;
  to: string;
  recipients: string[];
  status: 'sent' | 'failed';
  attempts: number;
  messageId: string | null;
  digest: string;
  error: string | null;
  at: string;
}

/**
 * A schedule's delivery id names the schedule, report, period and recipients, so the same
 * period is never mailed twice by one schedule (a restart, or two instances firing); a one-off
 * send adds its own time, because sending again on purpose is a new delivery.
 */
export function deliveryId(report: Pick<AnyReport, 'report' | 'from' | 'to'>, request: DeliveryRequest, nowMs: number): string {
  const parts = [
    request.schedule ?? `adhoc@${nowMs}`,
    report.report,
    report.from,
    report.to,
    [...request.recipients].sort().join(','),
    request.format,
  ];
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32);
}

export { smtpRetriable } from '../detectors/alerts/outputs.js';

function subject(ctx: MailContext, report: AnyReport): string {
  const title = REPORTS[report.report].title;
  const totals = Object.entries(report.totals)
    .slice(0, 3)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  return `${ctx.subjectPrefix} ${title} ${report.from.slice(0, 10)} to ${report.to.slice(0, 10)}: ${totals}`.trim();
}

/**
 * Mails one report (HTML body, the chosen format attached) with retries and backoff, then
 * records the outcome in `report_deliveries`: `sent` with the message id, or `failed` with the
 * error (also logged). A failure is returned, not thrown, so a scheduler keeps running; only a
 * failure to record the outcome throws.
 */
export async function deliverReport(
  ctx: MailContext,
  report: AnyReport,
  request: DeliveryRequest,
  nowMs = Date.now(),
): Promise<DeliveryRecord> {
  const id = deliveryId(report, request, nowMs);
  const signed = 'signature' in report ? (report as SignedReport) : ctx.signer ? await ctx.signer.sign(report) : null;
  const shown = signed ?? report;
  const html = renderHtml(shown, {
    organisation: signed?.metadata.organisation ?? null,
    ...(signed ? { generatedAt: signed.metadata.generatedAt } : {}),
  });
  const attachment =
    request.format === 'html'
      ? { text: html, contentType: 'text/html; charset=utf-8', extension: 'html' }
      : renderReport(shown, request.format);
  const filename = `${reportFileStem(report)}.${attachment.extension}`;
  const attachments: NonNullable<SendMailOptions['attachments']> = [
    { filename, content: attachment.text, contentType: attachment.contentType },
  ];
  if (signed && ctx.signer) {
    const sig = detachedSignature(signed, filename, request.format, attachment.text, ctx.signer.keys);
    attachments.push({
      filename: `${reportFileStem(report)}.sig.json`,
      content: `${JSON.stringify(sig, null, 2)}\n`,
      contentType: 'application/json; charset=utf-8',
    });
  }
  const mail: SendMailOptions = {
    from: ctx.from,
    to: request.recipients,
    subject: subject(ctx, report),
    html,
    attachments,
    headers: {
      'X-Glasswatch-Report': report.report,
      'X-Glasswatch-Digest': report.digest,
      'X-Glasswatch-Delivery': id,
      ...(signed ? { 'X-Glasswatch-Signature-Key': signed.signature.keyId } : {}),
    },
  };
  let attempts = 0;
  let messageId: string | null = null;
  let error: string | null = null;
  try {
    const info = await withRetry(
      async () => {
        attempts++;
        return ctx.transport.sendMail(mail);
      },
      {
        retries: ctx.retry.retries,
        initialDelayMs: ctx.retry.initialDelayMs,
        maxDelayMs: ctx.retry.maxDelayMs,
        shouldRetry: smtpRetriable,
        onRetry: (err, attempt, delayMs) =>
          ctx.log.warn('report mail failed, retrying', {
            report: report.report,
            deliveryId: id,
            attempt,
            delayMs,
            error: errorMessage(err),
          }),
      },
    );
    messageId = info.messageId ?? '';
  } catch (err) {
    error = smtpFailureText(err);
    ctx.log.error('report mail failed', {
      report: report.report,
      schedule: request.schedule,
      deliveryId: id,
      attempts,
      recipients: request.recipients.length,
      error,
    });
  }
  const record: DeliveryRecord = {
    deliveryId: id,
    report: report.report,
    schedule: request.schedule,
    from: report.from,
    to: report.to,
    recipients: request.recipients,
    status: error === null ? 'sent' : 'failed',
    attempts,
    messageId,
    digest: report.digest,
    error,
    at: new Date().toISOString(),
  };
  await recordDelivery(ctx.store, record);
  if (record.status === 'sent')
    ctx.log.info('report mailed', {
      report: report.report,
      schedule: request.schedule,
      deliveryId: id,
      messageId,
      recipients: request.recipients.length,
    });
  return record;
}

export async function recordDelivery(store: Store, r: DeliveryRecord): Promise<void> {
  await insertRows(store, 'report_deliveries', [
    {
      delivery_id: r.deliveryId,
      report: r.report,
      schedule: r.schedule ?? '',
      period_from: r.from,
      period_to: r.to,
      recipients: r.recipients,
      status: r.status,
      attempts: r.attempts,
      message_id: r.messageId ?? '',
      digest: r.digest,
      error: r.error ?? '',
      at: r.at,
    },
  ]);
}

/** The latest recorded outcome of a delivery, or null when it was never attempted. */
export async function deliveryStatus(store: Store, id: string): Promise<'sent' | 'failed' | null> {
  const rows = await runQuery<{ status: string }>(store, 'delivery-status', { id });
  const s = rows[0]?.status;
  return s === 'sent' || s === 'failed' ? s : null;
}
