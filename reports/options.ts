import { validate as validCron } from 'node-cron';
import { ConfigError, Fields, type GlasswatchConfig } from '../core/config.js';
import { checkTimeZone, PERIOD_KINDS, type PeriodKind } from './period.js';
import { FORMATS, type ReportFormat } from './render/index.js';
import type { RotationOptions } from './rotation.js';
import { REPORT_NAMES, type ReportName } from './types.js';

/** The `reports:` section. */
export interface ReportsConfig {
  /** Sender address of report mail. Required when reports are mailed. */
  from: string | null;
  /** @default "[glasswatch]" */
  subjectPrefix: string;
  /** Named in every report's signed metadata and page header. @default null */
  organisation: string | null;
  rotation: RotationOptions;
  delivery: DeliveryRetry;
}

export interface DeliveryRetry {
  /** Further tries after the first failed one. @default 4 */
  retries: number;
  /** @default 2000 */
  initialDelayMs: number;
  /** @default 60000 */
  maxDelayMs: number;
}

/** One entry of the `schedules:` section. */
export interface ScheduleConfig {
  name: string;
  /** node-cron expression (5 fields, or 6 with seconds first). */
  cron: string;
  /** IANA zone the cron fires in and the period is computed in. @default "UTC" */
  timezone: string;
  report: ReportName;
  period: PeriodKind;
  recipients: string[];
  /** Format of the attachment; the body is always HTML. @default "csv" */
  format: ReportFormat;
}

const ADDRESS = /^[^\s@<>,;]+@[^\s@<>,;]+$/;

export function isAddress(text: string): boolean {
  return ADDRESS.test(text);
}

export function parseReportsConfig(config: GlasswatchConfig): ReportsConfig {
  const r = Fields.of(config.file, 'reports', config.sections.reports).only([
    'from',
    'subjectPrefix',
    'organisation',
    'rotation',
    'delivery',
  ]);
  const from = r.optionalString('from');
  if (from !== null && !isAddress(from.replace(/^.*<([^>]+)>\s*$/, '$1'))) r.fail('from', `must be a mail address, got "${from}"`);
  const rot = r.section('rotation').only(['afterUseHours', 'maxAgeDays']);
  const d = r.section('delivery').only(['retries', 'initialDelayMs', 'maxDelayMs']);
  return {
    from,
    subjectPrefix: r.string('subjectPrefix', '[glasswatch]'),
    organisation: r.optionalString('organisation'),
    rotation: {
      afterUseHours: rot.number('afterUseHours', 24, { min: 1, max: 24 * 366 }),
      maxAgeDays: rot.number('maxAgeDays', 90, { min: 1, max: 3660 }),
    },
    delivery: {
      retries: d.number('retries', 4, { min: 0, max: 20, integer: true }),
      initialDelayMs: d.number('initialDelayMs', 2000, { min: 0, max: 3_600_000, integer: true }),
      maxDelayMs: d.number('maxDelayMs', 60_000, { min: 0, max: 3_600_000, integer: true }),
    },
  };
}

export function parseSchedules(config: GlasswatchConfig): ScheduleConfig[] {
  const file = config.file;
  const section = config.sections.schedules;
  if (section === undefined || section === null) return [];
  if (!Array.isArray(section))
    throw new ConfigError(file, 'schedules', 'must be a list of { name, cron, timezone, report, period, recipients, format }');
  const names = new Set<string>();
  const schedules = (section as unknown[]).map((entry, i) => {
    const s = Fields.of(file, `schedules[${i}]`, entry).only(['name', 'cron', 'timezone', 'report', 'period', 'recipients', 'format']);
    const name = s.string('name');
    if (names.has(name)) s.fail('name', `duplicate schedule name "${name}"`);
    names.add(name);
    const cron = s.string('cron');
    if (!validCron(cron)) s.fail('cron', `is not a cron expression: "${cron}" (5 fields, or 6 with seconds first)`);
    const timezone = s.string('timezone', 'UTC');
    try {
      checkTimeZone(timezone);
    } catch {
      s.fail('timezone', `is not an IANA time zone: "${timezone}"`);
    }
    const recipients = s.strings('recipients');
    const bad = recipients.find((a) => !isAddress(a));
    if (bad !== undefined) s.fail('recipients', `"${bad}" is not a mail address`);
    if (recipients.length === 0) s.fail('recipients', 'needs at least one address');
    return {
      name,
      cron,
      timezone,
      report: s.oneOf('report', REPORT_NAMES),
      period: s.oneOf('period', PERIOD_KINDS),
      recipients,
      format: s.oneOf('format', FORMATS, 'csv'),
    };
  });
  if (schedules.length > 0) {
    if (!parseReportsConfig(config).from)
      throw new ConfigError(file, 'reports.from', 'is required when schedules mail reports (the sender address)');
    if (config.sections.smtp === undefined)
      throw new ConfigError(file, 'smtp', 'is required when schedules mail reports (host, port, secure, user, password)');
  }
  return schedules;
}
