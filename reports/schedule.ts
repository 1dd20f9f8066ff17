import { createTask, type ScheduledTask } from 'node-cron';
import type { GlasswatchConfig } from '../core/config.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Store } from '../core/store/client.js';
import { smtpTransport } from '../detectors/build.js';
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
import { iso } from './sql.js';

export interface SchedulerOptions {
  config: GlasswatchConfig;
  store: Store;
  log: Logger;
  /** @default the nodemailer SMTP transport of the `smtp:` section */
  transport?: MailTransport;
  /** @default the `schedules:` section */
  schedules?: ScheduleConfig[];
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

  constructor(o: SchedulerOptions) {
    this.#config = o.config;
    this.schedules = o.schedules ?? parseSchedules(o.config);
    const reports = parseReportsConfig(o.config);
    this.#mail = {
      store: o.store,
      transport: o.transport ?? (this.schedules.length ? smtpTransport(o.config) : { sendMail: async () => ({}) }),
      from: reports.from ?? 'glasswatch@localhost',
      subjectPrefix: reports.subjectPrefix,
      retry: reports.delivery,
      log: o.log.child({ component: 'reports' }),
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
    return deliverReport(this.#mail, report, request, firedAtMs);
  }

  /** Stops the timers and waits for firings in progress to record their outcome. */
  async stop(): Promise<void> {
    for (const t of this.#tasks.splice(0)) await t.destroy();
    await Promise.allSettled([...this.#running]);
  }
}
