import { parseConsoleSection, startConsole } from '../console/index.js';
import { type GlasswatchConfig, loadConfig } from '../core/config.js';
import { GlasswatchError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { connectStore, migrate, type Store } from '../core/store/index.js';
import { EXIT_CODES, parseFlags, usageError } from './args.js';
import { busOf, untilSignal } from './live.js';
import { fail, say } from './output.js';
import { instanceId } from './roles.js';

const HELP = `glasswatch console --config FILE [--instance ID]

Serves the break-glass console (Now, Requests, Alerts, session detail, Health; the JSON API under
/api with a bearer token in the Authorization header; live updates over server-sent events) as its own process,
reading the store (a ClickHouse server: store.url, or a chDB folder no other process holds) and
following the pipeline's Kafka topics. The console: section gives host (default 127.0.0.1), port
(default 8480), tokens ([{ name, token: \${VAR} }]) and tls ({ certFile, keyFile }).

With glasswatch start on an embedded chDB store, the store is locked by that process: give its
config a console: section and it serves the console itself.

Options:
  --config FILE    glasswatch config (YAML), required
  --instance ID    names this console's consumer groups (default: GLASSWATCH_INSTANCE, else host-pid)
  -h, --help       this help

${EXIT_CODES}`;

export async function consoleCommand(argv: string[]): Promise<number> {
  let store: Store | null = null;
  try {
    const { values } = parseFlags('console', argv, { config: { type: 'string' }, instance: { type: 'string' } }, false);
    if (values.help) {
      say(HELP);
      return 0;
    }
    if (!values.config) throw usageError('console needs --config FILE', 'console');
    const config = loadConfig(values.config);
    const options = parseConsoleSection(config);
    requireKafka(config);
    const log = createLogger();
    store = await openConsoleStore(config);
    await migrate(store, { retentionDays: config.retentionDays });
    const bus = busOf(config, log);
    const running = await startConsole({ config, options, store, bus, log, instance: instanceId(values.instance) });
    say(`glasswatch console: ${running.url} (${store.describe}; bus kafka; ${options.tokens.length} token(s)) — Ctrl-C to stop`);
    const signal = await untilSignal();
    say(`glasswatch console: ${signal}, stopping ...`);
    await running.stop();
    await bus.close();
    return 0;
  } catch (err) {
    return fail(err);
  } finally {
    await store?.close();
  }
}

function requireKafka(config: GlasswatchConfig): void {
  if (config.bus.kind === 'kafka') return;
  throw new GlasswatchError('BG_CLI_USAGE', `${config.file}: bus.kind is memory: a console process of its own would see no live change`, {
    stage: 'config',
    hint: 'set bus.kind: kafka (and bus.brokers), or add a console: section to the config of glasswatch start, which then serves it',
  });
}

/** The store must exist; a chDB folder held by glasswatch start is one clear error saying where the console is. */
async function openConsoleStore(config: GlasswatchConfig): Promise<Store> {
  try {
    return await connectStore(config.store, { create: false });
  } catch (err) {
    if (err instanceof GlasswatchError && err.code === 'BG_STORE_CHDB_OPEN')
      throw new GlasswatchError('BG_CONSOLE_STORE_LOCKED', `${err.message}: the embedded store is held by another glasswatch process`, {
        stage: 'config',
        cause: err,
        hint: 'add a console: section to the config of the running glasswatch start (it serves the console over its own store), or use a ClickHouse server (store.url)',
      });
    throw err;
  }
}
