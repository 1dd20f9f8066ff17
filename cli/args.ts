import { type ParseArgsConfig, parseArgs } from 'node:util';
import { GlasswatchError } from '../core/errors.js';
import { parseInstant } from '../reports/period.js';

/**
 * The one flag parser of every command: an unknown or malformed option is one usage line
 * (`unknown option --bogus; see glasswatch replay --help`, exit 2), never a Node stack trace.
 * Commands owned elsewhere (tickets, rules) can adopt it by swapping their `parseArgs` call.
 */
export type Options = NonNullable<ParseArgsConfig['options']>;

export function usageError(message: string, command: string): GlasswatchError {
  return new GlasswatchError('BG_CLI_USAGE', `${message}; see glasswatch ${command} --help`, { stage: 'config' });
}

let current = '';

/** The command being run (`tickets validate`), for usage lines of commands that call Node's parseArgs themselves. */
export function setCurrentCommand(name: string): void {
  current = name;
}

/** Node's parseArgs errors (thrown by commands that parse their own flags) as our one usage line; null for anything else. */
export function asUsageError(err: unknown): GlasswatchError | null {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) return null;
  return usageError(describeParseError(err), current || 'glasswatch');
}

export function parseFlags<O extends Options>(command: string, argv: string[], options: O, allowPositionals = true) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals,
      strict: true,
      options: { ...options, help: { type: 'boolean', short: 'h', default: false } } as O & {
        help: { type: 'boolean'; short: 'h'; default: false };
      },
    });
  } catch (err) {
    throw usageError(describeParseError(err), command);
  }
}

/** Node's parseArgs messages, shortened to what the operator typed. */
function describeParseError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const message = e.message ?? String(err);
  const quoted = /'([^']+)'/.exec(message)?.[1] ?? '';
  const flag = quoted.split(/[ ,]/)[0] ?? quoted;
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${flag}`;
  if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `unexpected argument ${flag}`;
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (message.includes('argument missing')) return `option ${flag} needs a value`;
    return `option ${flag} takes no value`;
  }
  return message.split('\n')[0] ?? message;
}

/**
 * A time from a flag: `2026-11-20` (UTC midnight) or a date-time with `Z` / `±hh:mm`. A time
 * without a zone would mean a different instant on every host, so it is an error naming the flag.
 */
export function timeFlag(flag: string, value: string | undefined, command: string): number {
  if (value === undefined || value === '') throw usageError(`${flag} is required (e.g. 2026-11-20T09:00:00Z)`, command);
  try {
    return parseInstant(value, flag);
  } catch {
    throw new GlasswatchError('BG_CLI_TIME', `${flag} "${value}" has no time zone or is not ISO 8601`, {
      stage: 'config',
      hint: `give a zone: ${flag} 2026-11-20T09:00:00Z (or +02:00), or a date (UTC midnight)`,
    });
  }
}

/** The exit statuses every command shares, for the help texts. */
export const EXIT_CODES = `Exit status:
  0  done
  1  a run-time failure (a delivery, a mail, a source that failed)
  2  usage or configuration error: unknown option, missing or zone-less time, store missing or unreachable,
     nothing to run, no identities for the detector
  3  (replay) done, but some records were dead-lettered
  4  (audit verify) the evidence does not hold`;
