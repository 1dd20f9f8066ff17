import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config.js';
import { GlasswatchError } from '../core/errors.js';
import { isSource } from '../core/event.js';
import { createLogger } from '../core/log.js';
import { signedHeaders } from '../core/signing.js';
import { migrate, openStore } from '../core/store/index.js';
import { TicketLedger } from '../detectors/tickets/ledger.js';
import { TicketService } from '../detectors/tickets/service.js';
import { loadTicketFile } from '../detectors/tickets/sources.js';
import { fail, say, terminalSafe } from './output.js';

const HELP = `glasswatch tickets <command>

  validate <files...>                       check ticket files; errors name the file, line and field
  import <files...> [--store PATH] [--config FILE]
                                            store every ticket version in the audit store
  submit <files...> --url URL               send tickets to a running glasswatch tickets endpoint,
                                            signed with the secret in $GLASSWATCH_TICKETS_SECRET
  check --identity ID --time ISO [--account A] [--org O] [--cluster C] --tickets FILE... [--grace SECONDS]
                                            explain the verdict a use would get
Ticket format (JSON array, one object, or JSON lines):
  {"id","identities":[...],"requester","approvers":[...],"status":"requested|approved|rejected|revoked|closed",
   "notBefore","notAfter","scope":{"accounts","orgs","clusters"},"reason","updatedAt"}`;

export async function ticketsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    const { values, positionals } = parseArgs({
      args: rest,
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
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (!sub || sub === 'help' || sub === '--help' || values.help) {
      say(HELP);
      return sub ? 0 : 2;
    }
    if (sub === 'validate') {
      let n = 0;
      for (const f of positionals) n += loadTicketFile(f).length;
      say(`${n} ticket versions in ${positionals.length} file(s): valid`);
      return 0;
    }
    if (sub === 'import') {
      const config = loadConfig(values.config, values.store ? { storePath: values.store } : {});
      const store = openStore(config.store);
      try {
        await migrate(store, { retentionDays: config.retentionDays });
        const service = new TicketService(new TicketLedger(), { store, log: createLogger({ level: 'warn' }) });
        let added = 0;
        for (const f of positionals) added += await service.accept(loadTicketFile(f), `cli:${f}`);
        say(`imported ${added} ticket versions into ${store.describe}`);
        return 0;
      } finally {
        await store.close();
      }
    }
    if (sub === 'submit') {
      const secret = process.env.GLASSWATCH_TICKETS_SECRET;
      if (!values.url) throw new GlasswatchError('BG_CLI_USAGE', 'submit needs --url of the tickets endpoint', { stage: 'config' });
      if (!secret)
        throw new GlasswatchError('BG_CLI_USAGE', 'GLASSWATCH_TICKETS_SECRET is not set', {
          stage: 'config',
          hint: 'export the shared HMAC secret of the tickets endpoint',
        });
      for (const f of positionals) {
        loadTicketFile(f); // validate locally first: a clear error beats a 400
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
    if (sub === 'check') {
      if (!values.identity || !values.time)
        throw new GlasswatchError('BG_CLI_USAGE', 'check needs --identity and --time', { stage: 'config' });
      const source = values.source ?? (values.cluster ? 'k8s' : values.org ? 'okta' : 'cloudtrail');
      if (!isSource(source)) throw new GlasswatchError('BG_CLI_USAGE', `--source must be cloudtrail, okta or k8s`, { stage: 'config' });
      const timeMs = Date.parse(values.time);
      if (Number.isNaN(timeMs))
        throw new GlasswatchError('BG_CLI_USAGE', `--time is not an ISO 8601 time: "${values.time}"`, { stage: 'config' });
      const ledger = new TicketLedger();
      for (const f of values.tickets ?? []) for (const t of loadTicketFile(f)) ledger.add(t);
      const c = ledger.evaluate(
        {
          identity: values.identity,
          source,
          timeMs,
          account: values.account ?? null,
          org: values.org ?? null,
          cluster: values.cluster ?? null,
        },
        Number(values.grace ?? 0) * 1000,
      );
      process.stdout.write(terminalSafe(`${JSON.stringify({ verdict: c.verdict, reason: c.reason, ticket: c.ticket?.id ?? null })}\n`));
      return c.verdict === 'authorized' ? 0 : 4;
    }
    say(`glasswatch tickets: unknown command "${sub}"\n\n${HELP}`);
    return 2;
  } catch (err) {
    return fail(err);
  }
}
