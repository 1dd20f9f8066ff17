import { createTask, type ScheduledTask } from 'node-cron';
import type { GlasswatchConfig } from '../core/config.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Store } from '../core/store/client.js';
import { insertRows } from '../core/store/writer.js';
import { type Alert, pipelineAlert } from '../detectors/alerts/alert.js';
import { AlertDispatcher, StoreDeliveryLedger } from '../detectors/alerts/dispatcher.js';
import { alertOutputs, smtpTransport } from '../detectors/build.js';
import { alertRow } from '../detectors/detector.js';
import { IdentityRegistry } from '../detectors/identities.js';
import {
  type DeliveryRecord,
  deliverReport,
  deliveryId,
  deliveryStatus,
  type MailContext,
  type MailTransport,
  recordDelivery,
} from './mail.js';
import { parseReportsConfig, parseSchedules, type ScheduleConfig } from './options.js';
import { previousPeriod } from './period.js';
import { buildReport } from './registry.js';
import { buildRotationReport } from './rotation.js';
import type { ReportSigner } from './signing.js';
import { iso } from './sql.js';
import type { AnyReport, Period, RotationFinding } from './types.js';

/** Where the alerts a scheduled report raises go: the dispatcher of the configured alert outputs, or the live pipeline's. */
export interface ReportAlertSink {
  dispatch(alert: Alert): Promise<unknown>;
  close?(): Promise<void>;
}

export interface SchedulerOptions {
  config: GlasswatchConfig;
  store: Store;
  log: Logger;
  /** @default the nodemailer SMTP transport of the `smtp:` section */
  transport?: MailTransport;
  /** @default the `schedules:` section */
  schedules?: ScheduleConfig[];
  /** Where `breakglass.rotation_missing` goes. @default an AlertDispatcher over the `alerts:` outputs, built on first use */
  alerts?: ReportAlertSink;
  /** Signs every mailed report (digest, metadata, detached signature, verify command). @default unsigned */
  signer?: ReportSigner | null;
}

/**
 * A rotation still missing when the rotation report runs: the credential of a break-glass use was
 * not rotated within `afterUseHours` of the use. One alert per use (the id is keyed by credential
 * and session), so a report run again for the same period raises it once.
 */
export function rotationMissingAlert(f: RotationFinding, afterUseHours: number, detectedAt: string): Alert {
  const source = f.kind === 'okta-user' ? 'okta' : f.kind === 'k8s-user' ? 'k8s' : 'cloudtrail';
  const where = f.scope ? ` in ${f.scope}` : '';
  const alert = pipelineAlert({
    type: 'breakglass.rotation_missing',
    severity: 'high',
    key: [f.identity, f.principal, f.scope ?? '', f.sessionId ?? ''],
    source,
    reason: 'rotation_missing',
    time: f.dueBy ?? f.usedAt ?? detectedAt,
    detectedAt,
    summary: `break-glass credential ${f.principal} (${f.identity}${where}) was not rotated within ${afterUseHours} h after its use ended at ${f.usedAt} (due by ${f.dueBy}; session ${f.sessionId})`,
  });
  return {
    ...alert,
    identity: f.identity,
    sessionId: f.sessionId,
    principal: f.principal,
    account: source === 'cloudtrail' ? f.scope : null,
    org: source === 'okta' ? f.scope : null,
    cluster: source === 'k8s' ? f.scope : null,
  };
}

/**
 * Runs the configured report schedules with node-cron. Each firing reports on the previous
 * calendar period in the schedule's zone and mails it; the report queries are asynchronous
 * (chDB runs them off the JavaScript thread, a server over HTTP), so detection sharing the
 * process keeps its event loop. Every outcome, including a report that could not be built,
 * is recorded in `report_deliveries` and logged; a period already mailed by the schedule is
 * skipped, so restarts and overlapping instances do not mail twice.
 */
export class ReportScheduler {
  readonly schedules: readonly ScheduleConfig[];
  readonly #mail: MailContext;
  readonly #config: GlasswatchConfig;
  readonly #tasks: ScheduledTask[] = [];
  readonly #running = new Set<Promise<unknown>>();
  #alerts: ReportAlertSink | null;
  readonly #ownAlerts: boolean;

  constructor(o: SchedulerOptions) {
    this.#config = o.config;
    this.#alerts = o.alerts ?? null;
    this.#ownAlerts = o.alerts === undefined;
    this.schedules = o.schedules ?? parseSchedules(o.config);
    const reports = parseReportsConfig(o.config);
    this.#mail = {
      store: o.store,
      transport: o.transport ?? (this.schedules.length ? smtpTransport(o.config) : { sendMail: async () => ({}) }),
      from: reports.from ?? 'glasswatch@localhost',
      subjectPrefix: reports.subjectPrefix,
      retry: reports.delivery,
      log: o.log.child({ component: 'reports' }),
      signer: o.signer ?? null,
    };
  }

  start(): void {
    if (this.#tasks.length) return;
    const log = this.#mail.log;
    for (const s of this.schedules) {
      const task = createTask(
        s.cron,
        (ctx) => {
          const run = this.runSchedule(s, ctx.date.getTime()).catch((err) =>
            log.error('report schedule failed', { schedule: s.name, error: errorMessage(err) }),
          );
          this.#running.add(run);
          return run.finally(() => this.#running.delete(run));
        },
        {
          name: `report:${s.name}`,
          timezone: s.timezone,
          noOverlap: true,
          logger: {
            info: (m) => log.debug(m, { schedule: s.name }),
            warn: (m) => log.warn(m, { schedule: s.name }),
            error: (m) => log.error(String(m), { schedule: s.name }),
            debug: (m) => log.debug(String(m), { schedule: s.name }),
          },
        },
      );
      task.start();
      this.#tasks.push(task);
    }
    if (this.schedules.length)
      log.info('report schedules started', { schedules: this.schedules.map((s) => `${s.name} (${s.cron} ${s.timezone})`) });
  }

  /** One firing: the previous period relative to `firedAtMs`; null when that period was already mailed. */
  async runSchedule(s: ScheduleConfig, firedAtMs: number): Promise<DeliveryRecord | null> {
    const period = previousPeriod(s.period, firedAtMs, s.timezone);
    const request = { recipients: s.recipients, schedule: s.name, format: s.format };
    const id = deliveryId({ report: s.report, from: iso(period.fromMs), to: iso(period.toMs) }, request, firedAtMs);
    if ((await deliveryStatus(this.#mail.store, id)) === 'sent') {
      this.#mail.log.debug('report already mailed for this period', { schedule: s.name, from: iso(period.fromMs), to: iso(period.toMs) });
      return null;
    }
    let report: Awaited<ReturnType<typeof buildReport>>;
    try {
      report = await buildReport(s.report, { store: this.#mail.store, period, rotation: parseReportsConfig(this.#config).rotation });
    } catch (err) {
      const record: DeliveryRecord = {
        deliveryId: id,
        report: s.report,
        schedule: s.name,
        from: iso(period.fromMs),
        to: iso(period.toMs),
        recipients: s.recipients,
        status: 'failed',
        attempts: 0,
        messageId: null,
        digest: '',
        error: `report could not be built: ${errorMessage(err)}`,
        at: new Date().toISOString(),
      };
      this.#mail.log.error('scheduled report could not be built', { schedule: s.name, report: s.report, error: record.error });
      await recordDelivery(this.#mail.store, record);
      return record;
    }
    await this.#raiseFindings(s.name, report, period);
    return deliverReport(this.#mail, report, request, firedAtMs);
  }

  /**
   * Alerts a report's findings call for: a `missing` rotation after a use raises
   * `breakglass.rotation_missing`, stored (so in the audit chain) and sent to the alert outputs.
   * A use near the end of the previous period was still `pending` in that period's report, so the
   * alerts are judged over the period widened back by `afterUseHours`, at this period's end; the
   * alert id is keyed by credential and session, so a use judged twice raises one alert.
   * A failure is logged as an error and the report is still mailed: it lists the same finding.
   */
  async #raiseFindings(schedule: string, report: AnyReport, period: Period): Promise<void> {
    if (report.report !== 'rotation-compliance') return;
    const log = this.#mail.log;
    try {
      const options = { afterUseHours: report.afterUseHours, maxAgeDays: report.maxAgeDays };
      const judged = await buildRotationReport(
        this.#mail.store,
        { fromMs: period.fromMs - options.afterUseHours * 3_600_000, toMs: period.toMs },
        options,
      );
      const missing = judged.findings.filter((f) => f.check === 'after-use' && f.status === 'missing');
      if (missing.length === 0) return;
      const at = new Date().toISOString();
      const alerts = missing.map((f) => rotationMissingAlert(f, options.afterUseHours, at));
      await insertRows(this.#mail.store, 'alerts', alerts.map(alertRow));
      const sink = this.#alertSink();
      for (const a of alerts) await sink.dispatch(a);
      log.warn('break-glass credentials not rotated after use', { schedule, alerts: alerts.length });
    } catch (err) {
      log.error('breakglass.rotation_missing alerts could not be raised', { schedule, error: errorMessage(err) });
    }
  }

  #alertSink(): ReportAlertSink {
    if (!this.#alerts) {
      const c = this.#config;
      const ids = new Set(IdentityRegistry.fromConfig(c.sections.identities, c.file).identities.map((i) => i.id));
      this.#alerts = new AlertDispatcher(alertOutputs(c, null, null, ids), new StoreDeliveryLedger(this.#mail.store), this.#mail.log);
    }
    return this.#alerts;
  }

  /** Stops the timers and waits for firings in progress to record their outcome. */
  async stop(): Promise<void> {
    for (const t of this.#tasks.splice(0)) await t.destroy();
    await Promise.allSettled([...this.#running]);
    if (this.#ownAlerts) await this.#alerts?.close?.();
  }
}
