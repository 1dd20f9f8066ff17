import { writeFile } from 'node:fs/promises';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/log.js';
import { connectStore, migrate, type Store } from '../core/store/index.js';
import { smtpTransport } from '../detectors/build.js';
import { ReportError } from '../reports/errors.js';
import { deliverReport } from '../reports/mail.js';
import { isAddress, parseReportsConfig } from '../reports/options.js';
import { parsePeriod } from '../reports/period.js';
import { buildReport, REPORTS, reportDefinition, rowsOf } from '../reports/registry.js';
import { FORMATS, type ReportFormat, renderReport } from '../reports/render/index.js';
import { REPORT_NAMES } from '../reports/types.js';
import { EXIT_CODES, parseFlags, timeFlag } from './args.js';
import { fail, say, terminalSafe } from './output.js';

export const REPORT_HELP = `glasswatch report <list|run|send> [options]

  list                              the reports and what they contain
  run <name> --from ISO --to ISO    build a report over [from, to) and print it
      --format json|csv|html        (default json)
      --out FILE                    write to FILE instead of stdout
  send <name> --from ISO --to ISO --mail-to ADDR [--mail-to ADDR ...]
                                    mail a report: HTML body, CSV attached (--format picks the attachment)

Common options:
  --config FILE    glasswatch config (YAML): store, reports, smtp
  --store PATH     the embedded store at PATH (never created: a missing store is an error)
  -h, --help       this help

Times: 2026-11-20 (UTC midnight) or 2026-11-20T09:00:00Z / +02:00; a time without a zone is an
error. The period is [--from, --to).

${EXIT_CODES}`;

const usage = (message: string) => new ReportError('BG_REPORT_USAGE', message, { stage: 'config', hint: 'glasswatch report --help' });

export async function reportCommand(argv: string[]): Promise<number> {
  let store: Store | null = null;
  try {
    const { values, positionals } = parseFlags('report', argv, {
      config: { type: 'string' },
      store: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      'mail-to': { type: 'string', multiple: true },
      format: { type: 'string' },
      out: { type: 'string' },
    });
    const [action, name, ...extra] = positionals;
    if (values.help || !action) {
      say(REPORT_HELP);
      return values.help ? 0 : 2;
    }
    if (action === 'list') {
      for (const n of REPORT_NAMES) process.stdout.write(`${n.padEnd(22)} ${REPORTS[n].description}\n`);
      return 0;
    }
    if (action !== 'run' && action !== 'send') throw usage(`unknown action "${action}" (known: list, run, send)`);
    if (!name) throw usage(`report ${action} needs a report name (${REPORT_NAMES.join(', ')})`);
    if (extra.length) throw usage(`unexpected argument "${extra[0]}"`);
    const def = reportDefinition(name);
    const format = (values.format ?? (action === 'run' ? 'json' : 'csv')) as ReportFormat;
    if (!(FORMATS as readonly string[]).includes(format)) throw usage(`--format must be one of ${FORMATS.join(', ')}, got "${format}"`);

    // Checked here for the flag's name in the error; parsePeriod checks the order.
    timeFlag('--from', values.from, 'report');
    timeFlag('--to', values.to, 'report');
    const period = parsePeriod(values.from, values.to);
    const recipients = values['mail-to'] ?? [];
    if (action === 'run' && recipients.length) throw usage('--mail-to is for report send; report run prints or writes --out');
    if (action === 'send') {
      if (recipients.length === 0) throw usage('report send needs at least one recipient: --mail-to ADDR');
      const bad = recipients.find((r) => !isAddress(r));
      if (bad) throw usage(`"${bad}" is not a mail address`);
    }

    const config = loadConfig(values.config, values.store ? { storePath: values.store } : {});
    const reports = parseReportsConfig(config);
    store = await connectStore(config.store, { create: false });
    await migrate(store, { retentionDays: config.retentionDays, evidenceRetentionDays: config.evidenceRetentionDays });
    const started = Date.now();
    const report = await buildReport(def.name, { store, period, rotation: reports.rotation });
    say(
      `${def.title}: ${rowsOf(report).length} ${def.rowsKey} from ${report.from} to ${report.to} in ${Date.now() - started} ms (digest ${report.digest.slice(0, 16)}…)`,
    );

    if (action === 'run') {
      const rendered = renderReport(report, format);
      if (values.out && values.out !== '-') {
        await writeFile(values.out, rendered.text);
        say(`  written to ${values.out}`);
      } else process.stdout.write(process.stdout.isTTY ? terminalSafe(rendered.text) : rendered.text);
      return 0;
    }
    if (!reports.from)
      throw new ReportError('BG_REPORT_USAGE', 'reports.from (the sender address) is not set in the config', {
        stage: 'config',
        hint: 'reports: { from: glasswatch@example.com }',
      });
    const record = await deliverReport(
      {
        store,
        transport: smtpTransport(config),
        from: reports.from,
        subjectPrefix: reports.subjectPrefix,
        retry: reports.delivery,
        log: createLogger(),
      },
      report,
      { recipients, schedule: null, format },
    );
    if (record.status === 'sent') {
      say(`  mailed to ${recipients.join(', ')}: message ${record.messageId} (delivery ${record.deliveryId})`);
      return 0;
    }
    say(`  mail FAILED after ${record.attempts} attempts: ${record.error} (recorded as delivery ${record.deliveryId})`);
    return 1;
  } catch (err) {
    return fail(err);
  } finally {
    await store?.close();
  }
}
