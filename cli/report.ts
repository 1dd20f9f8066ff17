import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { type GlasswatchConfig, loadConfig } from '../core/config.js';
import { createLogger } from '../core/log.js';
import { connectStore, migrate, type Store } from '../core/store/index.js';
import { smtpTransport } from '../detectors/build.js';
import { evidenceConfig } from '../evidence/config.js';
import { loadEvidenceKeys, readPublicKeys, storedPublicKeys } from '../evidence/keys.js';
import { startEvidence } from '../evidence/start.js';
import { ReportError } from '../reports/errors.js';
import { deliverReport } from '../reports/mail.js';
import { isAddress, parseReportsConfig } from '../reports/options.js';
import { parsePeriod } from '../reports/period.js';
import { buildReport, REPORTS, reportDefinition, rowsOf } from '../reports/registry.js';
import { renderHtml } from '../reports/render/html.js';
import { FORMATS, type ReportFormat, renderReport } from '../reports/render/index.js';
import { reconcileRetention, recordRetentionHorizon, storeRetention } from '../reports/retention.js';
import { detachedSignature, type ReportSigner, reportSigner } from '../reports/signing.js';
import { REPORT_NAMES } from '../reports/types.js';
import { signaturePathFor, verifyReport } from '../reports/verify.js';
import { EXIT_CODES, parseFlags, timeFlag } from './args.js';
import { fail, say, terminalSafe } from './output.js';

export const REPORT_HELP = `glasswatch report <list|run|send|verify> [options]

  list                              the reports and what they contain
  run <name> --from ISO --to ISO    build a report over [from, to) and print it
      --format json|csv|html        (default json)
      --out FILE                    write to FILE instead of stdout
  send <name> --from ISO --to ISO --mail-to ADDR [--mail-to ADDR ...]
                                    mail a report: HTML body, CSV attached (--format picks the attachment)
                                    and its signature as <report>_<from>_<to>.sig.json
  verify FILE [--public-key FILE]   check a report: its digest, its Ed25519 signature against a trusted
                                    key (--public-key, else the store's keys; never the file's own), a CSV
                                    or HTML against its .sig.json, and with --store/--config that the
                                    audit chain still holds the report's chain heads and the period's
                                    evidence rows, and that the report rebuilt from the store has the
                                    same digest. Exit 0 only when all hold, 1 when a check fails.

Every report is signed: JSON is one document (content, metadata, signature); --out NAME.csv or
NAME.html also writes NAME.sig.json beside it (the signed JSON plus the file's signed SHA-256). The key: evidence.signingKey, or one generated
beside the store (its public key: glasswatch audit key).

Common options:
  --config FILE    glasswatch config (YAML): store, reports, smtp, evidence
  --store PATH     the embedded store at PATH (never created: a missing store is an error)
  -h, --help       this help

Times: 2026-11-20 (UTC midnight) or 2026-11-20T09:00:00Z / +02:00; a time without a zone is an
error. The period is [--from, --to).

${EXIT_CODES}`;

/**
 * Keys and the audit chain for a report run: the signer, and today's retention horizon recorded in
 * the chain (purges happen in background merges; the chain says when rows stopped being kept).
 * Report deliveries are evidence rows: chained as they are stored.
 */
async function openEvidence(store: Store, config: GlasswatchConfig, organisation: string | null): Promise<ReportSigner> {
  const chain = await startEvidence(store, config, { command: 'report' });
  const keys = await loadEvidenceKeys({ signingKeyFile: evidenceConfig(config).signingKey, store });
  await recordRetentionHorizon(store, chain, await storeRetention(store), Date.now());
  return reportSigner({ store, config, organisation, keys });
}

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
      'public-key': { type: 'string' },
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
    if (action === 'verify') {
      if (!name) throw usage('report verify needs the report file: glasswatch report verify FILE');
      if (extra.length) throw usage(`unexpected argument "${extra[0]}"`);
      const useStore = values.store !== undefined || values.config !== undefined;
      if (!useStore && !values['public-key'])
        throw usage('report verify needs a trusted key: --public-key FILE, or --store PATH / --config FILE for the store’s keys');
      if (useStore) {
        const config = loadConfig(values.config, values.store ? { storePath: values.store } : {});
        store = await connectStore(config.store, { create: false });
        await migrate(store, { retentionDays: config.retentionDays, evidenceRetentionDays: config.evidenceRetentionDays });
      }
      // An explicit key is the trust anchor; the store's keys only when none is given.
      const trusted = values['public-key'] ? readPublicKeys(values['public-key']) : await storedPublicKeys(store as Store);
      const result = await verifyReport({ file: name, trusted, store });
      for (const c of result.checks) say(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.check.padEnd(9)} ${terminalSafe(c.detail)}`);
      say(`${result.ok ? 'VERIFIED' : 'NOT VERIFIED'}: ${result.report} ${result.digest}`);
      return result.ok ? 0 : 1;
    }
    if (action !== 'run' && action !== 'send') throw usage(`unknown action "${action}" (known: list, run, send, verify)`);
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
    const retention = { retentionDays: config.retentionDays, evidenceRetentionDays: config.evidenceRetentionDays };
    await migrate(store, retention);
    const changed = await reconcileRetention(store, retention);
    if (changed.length) say(`  retention applied from the config to ${changed.join(', ')}`);
    const signer = await openEvidence(store, config, reports.organisation);
    const started = Date.now();
    const report = await signer.sign(await buildReport(def.name, { store, period, rotation: reports.rotation }));
    say(
      `${def.title}: ${rowsOf(report).length} ${def.rowsKey} from ${report.from} to ${report.to} in ${Date.now() - started} ms (digest ${report.digest.slice(0, 16)}…)`,
    );

    if (action === 'run') {
      const text =
        format === 'html'
          ? renderHtml(report, { organisation: report.metadata.organisation, generatedAt: report.metadata.generatedAt })
          : renderReport(report, format).text;
      if (values.out && values.out !== '-') {
        await writeFile(values.out, text);
        say(`  written to ${values.out} (signed by key ${report.signature.keyId})`);
        let target = values.out;
        if (format !== 'json') {
          target = signaturePathFor(values.out);
          const sig = detachedSignature(report, basename(values.out), format, text, signer.keys);
          await writeFile(target, `${JSON.stringify(sig, null, 2)}\n`);
          say(`  signature and content in ${target}`);
        }
        say(`  verify: glasswatch report verify ${target} --public-key evidence-key.pub.pem   (the key: glasswatch audit key)`);
      } else {
        process.stdout.write(process.stdout.isTTY ? terminalSafe(text) : text);
        if (format !== 'json') say('  (no .sig.json for output on stdout: use --out FILE to keep a verifiable copy)');
      }
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
        signer,
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
