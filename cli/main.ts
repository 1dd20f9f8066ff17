import { packageVersion } from '../core/paths.js';
import { EXIT_CODES, setCurrentCommand } from './args.js';
import { auditCommand } from './audit.js';
import { consoleCommand } from './console.js';
import { deliverCommand } from './deliver.js';
import { demoCommand } from './demo.js';
import { huntCommand } from './hunt.js';
import { collectCommand, startCommand } from './live.js';
import { fail, say } from './output.js';
import { replayCommand } from './replay.js';
import { reportCommand } from './report.js';
import { revokeCommand } from './revoke.js';
import { detectCommand, sinkCommand } from './roles.js';
import { rulesCommand } from './rules.js';
import { storeCommand } from './store.js';
import { ticketsCommand } from './tickets.js';

const version = packageVersion();

interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  start: { summary: 'run the live pipeline: collectors, store, detector, report schedules', run: startCommand },
  collect: { summary: 'run one collector (cloudtrail, okta, k8s) into Kafka', run: collectCommand },
  detect: { summary: 'run only the break-glass detector on Kafka (add processes to scale out)', run: detectCommand },
  sink: { summary: 'run only the store sink: the one writer of events and dead letters into the store', run: sinkCommand },
  deliver: { summary: 'run only alert delivery from Kafka: one worker per output, retried until maxAge', run: deliverCommand },
  revoke: { summary: 'run only revocation from Kafka: one worker per target, retried until maxAge', run: revokeCommand },
  console: { summary: 'serve the break-glass console (live sessions, requests, alerts, health; JSON API)', run: consoleCommand },
  demo: { summary: 'run the pipeline on the bundled demo incident (embedded store, no Kafka)', run: demoCommand },
  replay: { summary: 'normalize audit files and write events as JSON lines (optionally into the store)', run: replayCommand },
  report: { summary: 'compliance reports: list, run (json|csv|html), send by email', run: reportCommand },
  hunt: { summary: 'retro-hunt: run Sigma rules as SQL over the stored events of a period', run: huntCommand },
  rules: { summary: 'Sigma rules: validate files, match them over event files', run: rulesCommand },
  tickets: { summary: 'approved-access tickets: validate, import, submit to the endpoint, explain a verdict', run: ticketsCommand },
  store: { summary: 'audit store maintenance: migrate, status', run: storeCommand },
  audit: { summary: 'evidence: verify the audit chain and its signatures (audit verify), print the public key', run: auditCommand },
};

export const HELP = `glasswatch ${version} — break-glass access detection and audit

Usage: glasswatch <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

Run "glasswatch <command> --help" (or -h) for a command's options.
Every command takes --from/--to for periods; a time without a zone (Z or ±hh:mm) is an error.

${EXIT_CODES}`;

/** The command names, for checks such as the docker-compose validation. */
export const COMMAND_NAMES: readonly string[] = Object.keys(COMMANDS);

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    say(HELP);
    return 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    say(`glasswatch: unknown command "${name}"`);
    say('  next: glasswatch --help lists the commands');
    return 2;
  }
  // Commands with subcommands name both in their usage lines (`see glasswatch tickets check --help`).
  const sub = rest[0] && !rest[0].startsWith('-') && (name === 'tickets' || name === 'rules') ? ` ${rest[0]}` : '';
  setCurrentCommand(`${name}${sub}`);
  try {
    return await command.run(rest);
  } catch (err) {
    return fail(err);
  }
}
