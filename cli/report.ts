import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/log.js';
import { migrate, openStore, type Store } from '../core/store/index.js';
import { smtpTransport } from '../detectors/build.js';
import { ReportError } from '../reports/errors.js';
import { deliverReport } from '../reports/mail.js';
import { isAddress, parseReportsConfig } from '../reports/options.js';
import { parsePeriod } from '../reports/period.js';
import { buildReport, REPORTS, reportDefinition, rowsOf } from '../reports/registry.js';
import { FORMATS, type ReportFormat, renderReport } from '../reports/render/index.js';
import { REPORT_NAMES } from '../reports/types.js';
import { fail, say, terminalSafe } from './output.js';

export const REPORT_HELP = `glasswatch report <list|run|send> [options]

  list                              the reports and what they contain
  run <name> --from ISO --to ISO    build a report over [from, to) and print it
      --format json|csv|html        (default json)
      --out FILE                    write to FILE instead of stdout
  send <name> --to ADDR... --from ISO --to ISO
                                    mail a report: HTML body, CSV attached (--format picks the attachment)

Common options:
  --config FILE    glasswatch config (YAML): store, reports, smtp
  --store PATH     the embedded store at PATH

Dates: 2026-11-20 (UTC midnight) or 2026-11-20T09:00:00Z / +02:00. In "send", --to takes
both the recipients (anything with an @) and the end of the period; --until ISO also works.

Exit status: 0 done, 1 the report or the mail failed, 2 usage or config errors.`;

const usage = (message: string) => new ReportError('BG_REPORT_USAGE', message, { stage: 'config', hint: 'glasswatch report --help' });

export async function reportCommand(argv: string[]): Promise<number> {
  let store: Store | null = null;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        store: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string', multiple: true },
        until: { type: 'string' },
        format: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
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

    // `--to` is the end of the period, and in `send` also the recipients: addresses have an @.
    const toValues = values.to ?? [];
    const recipients = action === 'send' ? toValues.filter((v) => v.includes('@')) : [];
    const ends = [...toValues.filter((v) => !(action === 'send' && v.includes('@'))), ...(values.until ? [values.until] : [])];
    if (ends.length > 1) throw usage(`the period has one end, got --to ${ends.join(', --to ')}`);
    const period = parsePeriod(values.from, ends[0]);
    if (action === 'send') {
      if (recipients.length === 0) throw usage('report send needs at least one recipient: --to ADDR');
      const bad = recipients.find((r) => !isAddress(r));
      if (bad) throw usage(`"${bad}" is not a mail address`);
    }

    const config = loadConfig(values.config, values.store ? { storePath: values.store } : {});
    const reports = parseReportsConfig(config);
    store = openStore(config.store);
    await migrate(store, { retentionDays: config.retentionDays });
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
