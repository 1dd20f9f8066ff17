import { loadConfig } from '../core/config.js';
import { connectStore, migrate, type Store } from '../core/store/index.js';
import { evidenceConfig } from '../evidence/config.js';
import { generatedKeyFile, loadEvidenceKeys, readPublicKeys } from '../evidence/keys.js';
import { verifyAudit } from '../evidence/verify.js';
import { EXIT_CODES, parseFlags, timeFlag, usageError } from './args.js';
import { fail, say, terminalSafe } from './output.js';

/** `audit verify`: the evidence does not hold (a finding was printed). Distinct from 1 (could not check). */
export const EXIT_EVIDENCE_BROKEN = 4;

const HELP = `glasswatch audit <verify|key> [options]

  verify   recompute every writer's audit chain, check every checkpoint signature, and check that
           every row of the evidence tables (sessions, alerts, tickets, revocations, alert and report
           deliveries, triage) is in the chain with the same content: a changed, deleted or inserted
           row is reported with its table, key and chain sequence number
      --from ISO --to ISO     check only the evidence rows whose own time is in [from, to]
                              (the chains are always checked whole)
      --public-key FILE       trust these Ed25519 public keys (PEM, one or several blocks; get them
                              with glasswatch audit key). Without it the keys the store recorded
                              are used, which proves integrity only against someone who cannot
                              also write that table: keep the key file apart from the store.
  key      print the evidence public key (PEM) and its key id; the private key is
           evidence.signingKey, or generated on first use beside the store (0600)

Options:
  --config FILE   glasswatch config (YAML): store, evidence
  --store PATH    the embedded store at PATH (never created: a missing store is an error)
  -h, --help      this help

${EXIT_CODES}
  ${EXIT_EVIDENCE_BROKEN}  (audit verify) the evidence does not hold: findings are listed`;

export async function auditCommand(argv: string[]): Promise<number> {
  let store: Store | null = null;
  try {
    const { values, positionals } = parseFlags('audit', argv, {
      config: { type: 'string' },
      store: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      'public-key': { type: 'string' },
    });
    const action = positionals[0];
    if (values.help || !action) {
      say(HELP);
      return values.help ? 0 : 2;
    }
    if (action !== 'verify' && action !== 'key') throw usageError(`unknown action "${action}" (verify, key)`, 'audit');
    if (positionals.length > 1) throw usageError(`unexpected argument ${positionals[1]}`, 'audit');
    if (action === 'key' && (values.from || values.to || values['public-key']))
      throw usageError('audit key takes only --config and --store', 'audit');
    const from = values.from === undefined ? null : new Date(timeFlag('--from', values.from, 'audit')).toISOString();
    const to = values.to === undefined ? null : new Date(timeFlag('--to', values.to, 'audit')).toISOString();
    const trustedKeys = values['public-key'] ? readPublicKeys(values['public-key']) : null;
    const config = loadConfig(values.config, values.store ? { storePath: values.store } : {});
    const settings = evidenceConfig(config);
    store = await connectStore(config.store, { create: false });
    // The whole config: its retention settings are the schema options.
    await migrate(store, config);

    if (action === 'key') {
      const keys = await loadEvidenceKeys({ signingKeyFile: settings.signingKey, store });
      process.stdout.write(keys.publicKeyPem);
      say(`key id ${keys.keyId} (${settings.signingKey ? 'evidence.signingKey' : `generated, kept in ${generatedKeyFile(store)}`})`);
      return 0;
    }

    const started = performance.now();
    const result = await verifyAudit(store, { from, to, trustedKeys });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    say(
      `audit verify: ${store.describe}: ${result.writers.length} writer(s), ${result.records.toLocaleString('en-US')} chain records, ${result.rowsChecked.toLocaleString('en-US')} evidence rows checked${from || to ? ` (rows from ${from ?? 'the start'} to ${to ?? 'now'})` : ''} in ${seconds} s`,
    );
    say(
      result.keySource === 'public-key'
        ? `  signatures checked against --public-key ${values['public-key']} (key ids ${result.trustedKeyIds.join(', ')})`
        : `  signatures checked against the keys recorded in the store (key ids ${result.trustedKeyIds.join(', ') || 'none'}); give --public-key for a check that does not trust the store`,
    );
    for (const w of result.writers)
      say(`  writer ${terminalSafe(w.writer)}: records 1..${w.head}, ${w.checkpoints} checkpoint(s), signed through ${w.signedThrough}`);
    for (const warning of result.warnings) say(`  note: ${terminalSafe(warning)}`);
    for (const f of result.findings) {
      const where = [
        f.table ? `${f.table}` : null,
        f.key ? `key ${f.key}` : null,
        f.writer ? `writer ${f.writer}` : null,
        f.seq !== null ? `seq ${f.seq}` : null,
      ]
        .filter(Boolean)
        .join(' ');
      say(`BROKEN ${terminalSafe(where)}: ${terminalSafe(f.problem)}`);
    }
    if (result.records === 0 && result.rowsChecked === 0) say('  the store holds no evidence yet');
    say(result.ok ? 'result: intact' : `result: BROKEN (${result.findings.length} finding(s))`);
    return result.ok ? 0 : EXIT_EVIDENCE_BROKEN;
  } catch (err) {
    return fail(err);
  } finally {
    await store?.close();
  }
}
