import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Fields, type GlasswatchConfig, loadConfig } from '../core/config.js';
import { GlasswatchError } from '../core/errors.js';
import { isSource } from '../core/event.js';
import { createLogger } from '../core/log.js';
import { signedHeaders } from '../core/signing.js';
import { migrate, openStore } from '../core/store/index.js';
import { judgeUse } from '../detectors/detector.js';
import { IdentityRegistry } from '../detectors/identities.js';
import { type Coverage, TicketLedger, ticketChecks, type Use } from '../detectors/tickets/ledger.js';
import { TicketService } from '../detectors/tickets/service.js';
import { loadTicketFile } from '../detectors/tickets/sources.js';
import { type ParseTicketOptions, suggest, TicketError, zonedTime } from '../detectors/tickets/ticket.js';
import { startEvidence } from '../evidence/start.js';
import { asUsageError, setCurrentCommand } from './args.js';
import { fail, say, terminalSafe } from './output.js';

const HELP = `glasswatch tickets <command>

  validate <files...> [--config FILE]       check ticket files like config: every problem of every file in one
                                            pass, naming file, line and field; with --config, identities the
                                            config does not define are errors
  import <files...> [--store PATH] [--config FILE]
                                            store every ticket version in the audit store
  submit <files...> --url URL               send tickets to a running glasswatch tickets endpoint,
                                            signed with the secret in $GLASSWATCH_TICKETS_SECRET
  check --identity ID --time TIME [--account A] [--org O] [--cluster C] [--source S]
        [--tickets FILE...] [--config FILE] [--grace SECONDS] [--session-ticket ID] [--explain]
                                            the verdict a use would get, by the detector's own code;
                                            --config adds its ticket files, graceSeconds, nearWindowMinutes
                                            and identities; --explain lists every check of every ticket
Times carry a zone: 2026-11-20T09:00:00Z or 2026-11-20T10:00:00+01:00 (a zone-less time is an error).
Ticket format (JSON array, one object, or JSON lines):
  {"id","identities":[...],"requester","approvers":[...],"status":"requested|approved|rejected|revoked|closed",
   "notBefore","notAfter","scope":{"accounts","orgs","clusters"},"reason","updatedAt"}
Exit status: 0 valid / authorized, 4 unauthorized (check), 2 invalid tickets or usage, 1 other failure.`;

const STEPS: Record<NonNullable<Coverage['step']>, string> = {
  1: 'the ticket the session was authorized under',
  2: 'the closest ticket whose window holds the use',
  3: 'the nearest approved window',
  4: 'no ticket of this identity holds the use or is near it',
};

const usage = (message: string) => new GlasswatchError('BG_CLI_USAGE', `${message}; see glasswatch tickets --help`, { stage: 'config' });

/** Every problem of a ticket file is printed, one per line; exit 2 like a config error. */
function reportTicketError(err: TicketError): number {
  say(`glasswatch: ${err.problems.length} problem(s) in tickets [${err.code}]`);
  for (const p of err.problems) say(`  ${p}`);
  return 2;
}

/** The identities of the config, when one is given: tickets and --identity are checked against them. */
function configIdentities(config: GlasswatchConfig | null): ParseTicketOptions {
  if (!config) return {};
  return { identities: IdentityRegistry.fromConfig(config.sections.identities, config.file).identities.map((i) => i.id) };
}

export async function ticketsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    let parsed: ReturnType<typeof parse>;
    try {
      parsed = parse(rest);
    } catch (err) {
      // The one usage line of every command: `unknown option --bogus; see glasswatch tickets validate --help`.
      setCurrentCommand(sub && !sub.startsWith('-') ? `tickets ${sub}` : 'tickets');
      throw asUsageError(err) ?? usage((err as Error).message.split('\n')[0]!);
    }
    const { values, positionals } = parsed;
    if (!sub || sub === 'help' || sub === '--help' || sub === '-h' || values.help) {
      say(HELP);
      return sub ? 0 : 2;
    }
    const config = values.config ? loadConfig(values.config, values.store ? { storePath: values.store } : {}) : null;
    const known = configIdentities(config);
    if (sub === 'validate') {
      if (positionals.length === 0) throw usage('validate needs at least one tickets file');
      let n = 0;
      const problems: string[] = [];
      for (const f of positionals) {
        try {
          n += loadTicketFile(f, known).length;
        } catch (err) {
          if (!(err instanceof TicketError)) throw err;
          problems.push(...err.problems);
        }
      }
      if (problems.length) return reportTicketError(new TicketError('tickets', problems));
      say(`${n} ticket versions in ${positionals.length} file(s): valid${config ? ` (identities checked against ${config.file})` : ''}`);
      return 0;
    }
    if (sub === 'import') {
      const importConfig = config ?? loadConfig(undefined, values.store ? { storePath: values.store } : {});
      const versions = positionals.map((f) => ({ f, tickets: loadTicketFile(f, known) }));
      const store = openStore(importConfig.store);
      try {
        await migrate(store, { retentionDays: importConfig.retentionDays, evidenceRetentionDays: importConfig.evidenceRetentionDays });
        await startEvidence(store, importConfig, { command: 'tickets-import' });
        const service = new TicketService(new TicketLedger(), { store, log: createLogger({ level: 'warn' }), ...known });
        let added = 0;
        for (const { f, tickets } of versions) added += await service.accept(tickets, `cli:${f}`);
        say(`imported ${added} ticket versions into ${store.describe}`);
        return 0;
      } finally {
        await store.close();
      }
    }
    if (sub === 'submit') {
      const secret = process.env.GLASSWATCH_TICKETS_SECRET;
      if (!values.url) throw usage('submit needs --url of the tickets endpoint');
      if (!secret)
        throw new GlasswatchError('BG_CLI_USAGE', 'GLASSWATCH_TICKETS_SECRET is not set', {
          stage: 'config',
          hint: 'export the shared HMAC secret of the tickets endpoint',
        });
      for (const f of positionals) {
        loadTicketFile(f, known); // validate locally first: a clear error beats a 400
        const body = readFileSync(f);
        const res = await fetch(values.url, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json', ...signedHeaders(secret, body) },
        });
        const text = await res.text();
        say(`${f}: HTTP ${res.status} ${text}`);
        if (!res.ok) return 1;
      }
      return 0;
    }
    if (sub === 'check') return check(values, config, known);
    say(`glasswatch tickets: unknown command "${sub}"\n\n${HELP}`);
    return 2;
  } catch (err) {
    if (err instanceof TicketError) return reportTicketError(err);
    return fail(err);
  }
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      store: { type: 'string' },
      config: { type: 'string' },
      url: { type: 'string' },
      identity: { type: 'string' },
      source: { type: 'string' },
      time: { type: 'string' },
      account: { type: 'string' },
      org: { type: 'string' },
      cluster: { type: 'string' },
      tickets: { type: 'string', multiple: true },
      grace: { type: 'string' },
      'session-ticket': { type: 'string' },
      explain: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

/** `tickets check`: one use judged by `judgeUse`, the detector's own function, with the config's settings. */
function check(values: ReturnType<typeof parse>['values'], config: GlasswatchConfig | null, known: ParseTicketOptions): number {
  if (!values.identity || !values.time) throw usage('check needs --identity and --time');
  if (known.identities && !known.identities.includes(values.identity)) {
    const s = suggest(values.identity, known.identities);
    throw usage(
      `--identity "${values.identity}" is not an identity of ${config?.file} (known: ${known.identities.join(', ') || 'none'})${s ? `; did you mean ${s}?` : ''}`,
    );
  }
  const identity = config ? IdentityRegistry.fromConfig(config.sections.identities, config.file).get(values.identity) : undefined;
  const source = values.source ?? identity?.source ?? (values.cluster ? 'k8s' : values.org ? 'okta' : 'cloudtrail');
  if (!isSource(source)) throw usage('--source must be cloudtrail, okta or k8s');
  const timeMs = zonedTime(values.time);
  if (timeMs === null)
    throw usage(`--time "${values.time}" has no time zone or is no ISO 8601 time: write Z or ±hh:mm (e.g. 2026-11-20T09:00:00Z)`);
  let graceSeconds = 0;
  let nearWindowMinutes: number | undefined;
  const files = [...(values.tickets ?? [])];
  if (config) {
    // The detector's settings, read as buildDetector reads them.
    const d = Fields.of(config.file, 'detector', config.sections.detector);
    graceSeconds = d.number('graceSeconds', 0, { min: 0, max: 86_400 });
    nearWindowMinutes = d.number('nearWindowMinutes', 120, { min: 0, max: 10_080 });
    files.unshift(...Fields.of(config.file, 'tickets', config.sections.tickets).strings('files', []));
  }
  if (values.grace !== undefined) {
    graceSeconds = Number(values.grace);
    if (!Number.isFinite(graceSeconds) || graceSeconds < 0) throw usage(`--grace must be a number of seconds, got "${values.grace}"`);
  }
  const ledger = new TicketLedger();
  for (const f of files) for (const t of loadTicketFile(f, known)) ledger.add(t);
  const use: Use = {
    identity: values.identity,
    source,
    timeMs,
    account: values.account ?? null,
    org: values.org ?? null,
    cluster: values.cluster ?? null,
  };
  const c = judgeUse(ledger, use, {
    graceSeconds,
    ...(nearWindowMinutes === undefined ? {} : { nearWindowMinutes }),
    sessionTicketId: values['session-ticket'] ?? null,
  });
  process.stdout.write(
    terminalSafe(`${JSON.stringify({ verdict: c.verdict, reason: c.reason, ticket: c.ticket?.id ?? null, step: c.step })}\n`),
  );
  if (values.explain) explain(ledger, use, c);
  return c.verdict === 'authorized' ? 0 : 4;
}

/** Every ticket of the identity, each check with pass or fail, then the rule step that chose the explanation. */
function explain(ledger: TicketLedger, use: Use, c: Coverage): void {
  const ids = [...new Set([...ledger.tickets()].filter((t) => t.identities.includes(use.identity)).map((t) => t.id))].sort();
  if (ids.length === 0) say(`no ticket lists ${use.identity}`);
  for (const id of ids) {
    const v = ledger.versionAt(id, use.timeMs);
    if (!v) {
      say(`ticket ${id}: not in force at the use (its first version was updated after it)`);
      continue;
    }
    say(`ticket ${id} (version updated ${v.updatedAt}, in force at the use)`);
    for (const k of ticketChecks(v, use)) say(`  ${k.pass ? 'pass' : 'FAIL'}  ${k.check.padEnd(15)}  ${k.detail}`);
  }
  if (c.verdict === 'authorized') say(`verdict: authorized by ${c.ticket.id}`);
  else say(`verdict: unauthorized, ${c.reason}, ${c.ticket ? `ticket ${c.ticket.id}` : 'no ticket'} (step ${c.step}: ${STEPS[c.step]})`);
}
