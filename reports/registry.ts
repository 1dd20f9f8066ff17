import type { Store } from '../core/store/client.js';
import { withDigest } from './digest.js';
import { ReportError } from './errors.js';
import { daysBefore, type RetentionNotice, retentionNotice, storeRetention } from './retention.js';
import { buildRotationReport, DEFAULT_ROTATION, type RotationOptions } from './rotation.js';
import { buildActivityReport, buildUnauthorizedReport } from './sessions.js';
import { buildCoverageReport } from './tickets.js';
import { type AnyReport, type Period, REPORT_NAMES, type ReportName } from './types.js';

export interface BuildContext {
  store: Store;
  period: Period;
  rotation?: RotationOptions;
  /** The clock retention horizons are computed against. @default Date.now() */
  nowMs?: number;
}

export interface ReportDefinition {
  name: ReportName;
  title: string;
  description: string;
  /** Where the rows are in the JSON report. */
  rowsKey: 'sessions' | 'incidents' | 'findings';
  /** The row field the HTML chart counts rows by. */
  chartBy: string;
  build(ctx: BuildContext): Promise<AnyReport>;
}

export const REPORTS: Record<ReportName, ReportDefinition> = {
  'breakglass-activity': {
    name: 'breakglass-activity',
    title: 'Break-glass activity',
    description: 'every break-glass session: verdict, ticket, duration, activity, time to detect and to revoke',
    rowsKey: 'sessions',
    chartBy: 'verdict',
    build: (c) => buildActivityReport(c.store, c.period),
  },
  'unauthorized-use': {
    name: 'unauthorized-use',
    title: 'Unauthorized break-glass use',
    description: 'incidents (unauthorized sessions) with reasons, response times and revocation outcomes',
    rowsKey: 'incidents',
    chartBy: 'reason',
    build: (c) => buildUnauthorizedReport(c.store, c.period),
  },
  'ticket-coverage': {
    name: 'ticket-coverage',
    title: 'Ticket coverage',
    description: 'approved tickets never used, uses without tickets, self-approvals, window overruns',
    rowsKey: 'findings',
    chartBy: 'kind',
    build: (c) => buildCoverageReport(c.store, c.period),
  },
  'rotation-compliance': {
    name: 'rotation-compliance',
    title: 'Break-glass credential rotation',
    description: 'credentials not rotated within N hours of a use, or older than the rotation period',
    rowsKey: 'findings',
    chartBy: 'status',
    build: (c) => buildRotationReport(c.store, c.period, c.rotation ?? DEFAULT_ROTATION),
  },
};

export function isReportName(name: string): name is ReportName {
  return (REPORT_NAMES as readonly string[]).includes(name);
}

export function reportDefinition(name: string): ReportDefinition {
  if (!isReportName(name))
    throw new ReportError('BG_REPORT_USAGE', `unknown report "${name}"`, {
      stage: 'config',
      hint: `known reports: ${REPORT_NAMES.join(', ')}`,
    });
  return REPORTS[name];
}

export function rowsOf(report: AnyReport): Record<string, unknown>[] {
  return (report as unknown as Record<string, Record<string, unknown>[]>)[REPORTS[report.report].rowsKey] ?? [];
}

export async function buildReport(name: string, ctx: BuildContext): Promise<AnyReport> {
  const def = reportDefinition(name);
  if (!(ctx.period.fromMs < ctx.period.toMs))
    throw new ReportError(
      'BG_REPORT_USAGE',
      `the period is empty: from ${new Date(ctx.period.fromMs).toISOString()} is not before to ${new Date(ctx.period.toMs).toISOString()}`,
      {
        stage: 'config',
      },
    );
  // The TTLs are read while the report is built (its rows are not affected by them).
  const [report, retention] = await Promise.all([def.build(ctx), storeRetention(ctx.store)]);
  const notice = retentionNotice(ctx.period, retention, ctx.nowMs ?? Date.now());
  return notice ? withRetention(report, ctx.period, notice) : report;
}

/**
 * A period reaching before a retention horizon says so in its content (so in its digest): the
 * notice itself, and in the totals the days of the period whose raw events (and evidence) are gone.
 */
function withRetention(report: AnyReport, period: Period, notice: RetentionNotice): AnyReport {
  const { digest: _old, ...content } = report as AnyReport & Record<string, unknown>;
  const totals = {
    ...report.totals,
    rawEventDaysRemoved: daysBefore(period, notice.rawEventsFrom),
    evidenceDaysRemoved: daysBefore(period, notice.evidenceFrom),
  };
  return withDigest({ ...content, totals, retention: notice } as unknown as Omit<AnyReport, 'digest'>) as AnyReport;
}
