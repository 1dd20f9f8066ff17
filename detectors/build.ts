import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import nodemailer from 'nodemailer';
import type { Bus } from '../core/bus/types.js';
import { ConfigError, Fields, type GlasswatchConfig } from '../core/config.js';
import { GlasswatchError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { packageRoot } from '../core/paths.js';
import type { Store } from '../core/store/client.js';
import { insertRows, StoreWriter } from '../core/store/writer.js';
import { type LoadedRules, loadRules, SigmaEngine } from '../rules/engine/index.js';
import type { Alert } from './alerts/alert.js';
import { ALERT_SECTION_KEYS, alertContextOf, GROUP_KEYS, ROUTING_KEYS, routingOf, socOutputsOf, throttleOf } from './alerts/config.js';
import { AlertDispatcher, MemoryDeliveryLedger, StoreDeliveryLedger } from './alerts/dispatcher.js';
import { type AlertOutput, EmailOutput, JsonLinesAlertOutput, KafkaAlertOutput, WebhookOutput } from './alerts/outputs.js';
import { confirmationGateOf } from './confirm/build.js';
import { BreakGlassDetector } from './detector.js';
import { IdentityRegistry } from './identities.js';
import { peopleOptionsOf } from './people/config.js';
import { openSessionsFromStore } from './restore.js';
import { AwsRevoker } from './revoke/aws.js';
import { MemoryRevocationLedger, RevocationDispatcher, type RevocationPolicy, StoreRevocationLedger } from './revoke/dispatcher.js';
import { K8sRevoker } from './revoke/k8s.js';
import { OktaRevoker } from './revoke/okta.js';
import type { RevocationTarget } from './revoke/types.js';
import { verifyOptionsOf } from './revoke/verify.js';
import { WebhookRevoker } from './revoke/webhook.js';
import { AlertAppender } from './stages/alert-stage.js';
import { RevocationAppender } from './stages/revocation-stage.js';
import { TicketLedger } from './tickets/ledger.js';
import { ticketRow } from './tickets/service.js';
import { loadTicketFile } from './tickets/sources.js';
import type { TicketVersion } from './tickets/ticket.js';

export interface DetectorBuild {
  detector: BreakGlassDetector;
  ledger: TicketLedger;
  registry: IdentityRegistry;
  rulesLoaded: number;
  rulesRejected: string[];
  /** False when `detector.builtinRules: false` dropped the bundled break-glass pack. */
  builtinRules: boolean;
  /**
   * Lines every summary must show (replay summary, `start` status line): rules that did not
   * load under `detector.allowRuleErrors: true`, or the built-in pack switched off.
   */
  ruleWarnings: string[];
}

/** The warnings a summary of this detector must print (empty when the rules are complete). */
export function ruleLoadWarnings(build: Pick<DetectorBuild, 'ruleWarnings'>): string[] {
  return build.ruleWarnings;
}

export interface BuildOptions {
  config: GlasswatchConfig;
  store: Store | null;
  bus?: Bus | null;
  log: Logger;
  clock: 'replay' | 'live';
  /** Extra ticket files (`--tickets`). */
  ticketFiles?: string[];
  /** Extra alert output (`--alerts-out FILE`). */
  alertsOut?: string | null;
  /** false: the configured outputs (alerts: jsonl, webhooks, email, kafka) are not called; replay without --deliver. @default true */
  deliver?: boolean;
  onAlert?: (a: Alert) => void;
  /** Keep every session in memory for a summary (default: in replay only). */
  keepSessions?: boolean;
  /**
   * Live: alerts and automatic revocations are appended to these topics for the delivery and
   * revocation workers (detectors/stages) instead of being sent inline. Replay sends inline.
   */
  stages?: { bus: Bus; onAlertAppended?: (alertId: string) => void; onOrderAppended?: (revocationId: string) => void };
}

/** The bundled rule pack: activity review inside break-glass sessions. */
export function breakGlassPackDir(): string {
  return join(packageRoot(), 'rules', 'breakglass');
}

/** Builds the detector and everything it calls from the validated config. */
export async function buildDetector(o: BuildOptions): Promise<DetectorBuild> {
  const { config, store, log } = o;
  const file = config.file;
  const sections = config.sections;
  const registry = IdentityRegistry.fromConfig(sections.identities, file);

  const d = Fields.of(file, 'detector', sections.detector).only([
    'graceSeconds',
    'sessionIdleSeconds',
    'rules',
    'builtinRules',
    'allowRuleErrors',
    'ruleMatchAlerts',
    'placeholders',
    'nearWindowMinutes',
    'people',
  ]);
  // `detector.rules` adds to the bundled pack: a custom folder must not silently drop the
  // break-glass review rules. Dropping them takes an explicit `builtinRules: false`.
  const builtinRules = d.boolean('builtinRules', true);
  const allowRuleErrors = d.boolean('allowRuleErrors', false);
  const pack = breakGlassPackDir();
  // The pack named again in `detector.rules` (older configs did this) must not load twice.
  const extra = d.strings('rules', []).filter((p) => !builtinRules || resolve(p) !== resolve(pack));
  const rulePaths = [...(builtinRules ? [pack] : []), ...extra];
  // `expand` placeholders (`%admins%`) of the loaded rules, e.g. { admins: [alice, bob] }.
  const ph = d.section('placeholders');
  const placeholders: Record<string, string[]> = {};
  for (const name of Object.keys(ph.value))
    Object.defineProperty(placeholders, name, { value: ph.strings(name), enumerable: true, writable: true, configurable: true });
  const loaded = loadRules(rulePaths, { placeholders });
  if (builtinRules) overridePackRules(loaded, pack);
  const rulesRejected = loaded.rejected.map((r) => `[${r.code}] ${r.message}`);
  const ruleWarnings: string[] = [];
  if (rulesRejected.length) {
    // Fail closed: a rule that does not load is detection that silently does not happen.
    if (!allowRuleErrors)
      throw new GlasswatchError(
        'BG_CONFIG_RULES',
        `${file ?? 'config'}: detector.rules: ${rulesRejected.length} detection rule document(s) failed to load:\n${rulesRejected.map((m) => `  - ${m}`).join('\n')}`,
        {
          stage: 'config',
          hint: 'fix or remove these rules (check them with `glasswatch rules validate <folder>`), or set detector.allowRuleErrors: true to run without them',
          context: { file, path: 'detector.rules', rejected: rulesRejected.length },
        },
      );
    log.warn('detection rules were rejected and are not running (detector.allowRuleErrors: true)', {
      count: rulesRejected.length,
      rejected: rulesRejected,
    });
    ruleWarnings.push(
      `WARNING: ${rulesRejected.length} detection rule document(s) failed to load and are not running (detector.allowRuleErrors: true); see \`glasswatch rules validate\``,
    );
  }
  if (!builtinRules) ruleWarnings.push('WARNING: the built-in break-glass rule pack is off (detector.builtinRules: false)');

  const ledger = new TicketLedger();
  const t = Fields.of(file, 'tickets', sections.tickets).only([
    'files',
    'http',
    'jira',
    'servicenow',
    'topic',
    'secret',
    'previousSecrets',
    'approvalSlaMinutes',
  ]);
  const ticketFiles = [...t.strings('files', []), ...(o.ticketFiles ?? [])];
  const added: TicketVersion[] = [];
  // Replay refuses tickets naming identities the config does not define (a typo would quietly authorize nothing).
  const identityIds = registry.identities.map((i) => i.id);
  for (const f of ticketFiles)
    for (const ticket of loadTicketFile(f, { identities: identityIds })) if (ledger.add(ticket)) added.push(ticket);
  if (store && added.length)
    await insertRows(
      store,
      'tickets',
      added.map((v) => ticketRow(v, 'file')),
    );

  const identitySet = new Set(identityIds);
  const outputs = o.deliver === false ? [] : alertOutputs(config, o.bus ?? null, o.alertsOut ?? null, identitySet);
  const alertSection = Fields.of(file, 'alerts', config.sections.alerts);
  const ruleReferences = new Map<string, readonly string[]>();
  for (const r of loaded.rules) if (r.references.length) for (const k of [r.key, r.id]) if (k) ruleReferences.set(k, r.references);
  const deliveryLedger = store ? new StoreDeliveryLedger(store) : new MemoryDeliveryLedger();
  const dispatcherOptions = {
    context: alertContextOf(alertSection, ruleReferences),
    throttle: throttleOf(alertSection),
    clock: o.clock === 'live' ? ('live' as const) : ('event' as const),
  };
  const stages = o.stages;
  const onAlertAppended = stages?.onAlertAppended;
  const alerts = stages
    ? new AlertAppender(stages.bus, config.topics.alerts, deliveryLedger, log, {
        ...dispatcherOptions,
        ...(onAlertAppended ? { onAppend: (a: { id: string }) => onAlertAppended(a.id) } : {}),
      })
    : new AlertDispatcher(outputs, deliveryLedger, log, undefined, dispatcherOptions);
  const policies = revocationPolicies(registry, config);
  // One writer per detector: sessions, alerts and revocation records of a batch in one insert per table.
  const writer = store ? new StoreWriter(store, { batchSize: 1000 }) : null;
  const revocationLedger = store ? new StoreRevocationLedger(store, writer) : new MemoryRevocationLedger();
  const onOrderAppended = stages?.onOrderAppended;
  const revocations = stages
    ? new RevocationAppender(
        policies,
        revocationLedger,
        log,
        stages.bus,
        config.topics.revocations,
        onOrderAppended ? { onAppend: onOrderAppended } : {},
      )
    : new RevocationDispatcher(policies, revocationLedger, log);
  const confirm = confirmationGateOf({ registry, config, store, log, clock: o.clock, transport: () => smtpTransport(config) });

  const detector = new BreakGlassDetector(
    {
      registry,
      ledger,
      engine: loaded.rules.length ? new SigmaEngine(loaded) : null,
      alerts,
      revocations,
      writer,
      log,
      clock: o.clock,
      graceSeconds: d.number('graceSeconds', 0, { min: 0, max: 86_400 }),
      nearWindowMinutes: d.number('nearWindowMinutes', 120, { min: 0, max: 10_080 }),
      sessionIdleSeconds: d.number('sessionIdleSeconds', 1800, { min: 1, max: 7 * 86_400 }),
      ruleMatchAlerts: d.boolean('ruleMatchAlerts', true),
      verify: verifyOptionsOf(Fields.of(file, 'revocation', config.sections.revocation)),
      ...(confirm ? { confirm } : {}),
      people: peopleOptionsOf(d),
      ...(o.keepSessions === undefined ? {} : { keepSessions: o.keepSessions }),
    },
    o.onAlert ? { onAlert: o.onAlert } : {},
  );
  if (confirm) {
    confirm.attach(detector);
    await confirm.start();
  }
  if (o.clock === 'live' && store) {
    const open = await openSessionsFromStore(store, d.number('sessionIdleSeconds', 1800, { min: 1, max: 7 * 86_400 }));
    detector.sessions.restore(open);
    if (open.length) log.info('continuing open break-glass sessions', { count: open.length });
  }
  return { detector, ledger, registry, rulesLoaded: loaded.rules.length, rulesRejected, builtinRules, ruleWarnings };
}

export { ticketRow } from './tickets/service.js';

/**
 * A rule of `detector.rules` with the id of a pack rule replaces the pack's copy: tuning a
 * copied pack rule must not run both (duplicate alerts, doubled activity counts).
 */
function overridePackRules(loaded: LoadedRules, pack: string): void {
  const inPack = (file: string): boolean => !relative(pack, file).startsWith('..');
  const custom = new Set(loaded.rules.filter((r) => r.id && !inPack(r.file)).map((r) => r.id));
  loaded.rules = loaded.rules.filter((r) => !(r.id && custom.has(r.id) && inPack(r.file)));
}

export function alertOutputs(config: GlasswatchConfig, bus: Bus | null, alertsOut: string | null, ids: ReadonlySet<string>): AlertOutput[] {
  const file = config.file;
  const a = Fields.of(file, 'alerts', config.sections.alerts).only(ALERT_SECTION_KEYS);
  const out: AlertOutput[] = [];
  // `jsonl: path`, or `jsonl: { path, format, minSeverity, types, identities }`.
  if (typeof a.value.jsonl === 'string') out.push(new JsonLinesAlertOutput(a.string('jsonl')));
  else if (a.value.jsonl !== undefined) {
    const j = a.section('jsonl').only(['path', ...ROUTING_KEYS]);
    out.push(new JsonLinesAlertOutput(j.string('path'), routingOf(j, false, ids)));
  }
  if (alertsOut) out.push(new JsonLinesAlertOutput(alertsOut));
  const hooks = a.value.webhooks;
  if (hooks !== undefined) {
    if (!Array.isArray(hooks)) return a.fail('webhooks', 'must be a list of { url, secret, format }');
    (hooks as unknown[]).forEach((h, i) => {
      const w = Fields.of(file, `alerts.webhooks[${i}]`, h).only(['url', 'secret', 'name', ...GROUP_KEYS]);
      const name = w.optionalString('name');
      const format = w.oneOf('format', ['json', 'native', 'ocsf', 'ecs', 'slack'] as const, 'json');
      const routing = routingOf(Fields.of(file, `alerts.webhooks[${i}]`, { ...w.value, format: undefined }), format === 'slack', ids);
      out.push(
        new WebhookOutput({
          url: w.string('url'),
          secret: w.string('secret'),
          format,
          routing,
          ...(name ? { name } : {}),
        }),
      );
    });
  }
  if (a.value.email !== undefined) {
    const e = a.section('email').only(['from', 'to', ...GROUP_KEYS]);
    out.push(
      new EmailOutput({ transport: smtpTransport(config), from: e.string('from'), to: e.strings('to'), routing: routingOf(e, true, ids) }),
    );
  }
  if (a.value.kafka !== undefined) {
    const k = a.section('kafka').only(['topic', ...ROUTING_KEYS]);
    if (!bus) throw new ConfigError(file, 'alerts.kafka', 'needs a bus (bus.kind: kafka, or the in-process bus of the live pipeline)');
    out.push(new KafkaAlertOutput(bus, k.string('topic', 'glasswatch.alerts'), routingOf(k, false, ids)));
  }
  out.push(...socOutputsOf(a, ids));
  return out;
}

/** One nodemailer SMTP transport from the `smtp:` section (TLS, auth). */
export function smtpTransport(config: GlasswatchConfig) {
  const s = Fields.of(config.file, 'smtp', config.sections.smtp).only([
    'host',
    'port',
    'secure',
    'user',
    'password',
    'rejectUnauthorized',
    'caFile',
    'allowInsecureAuth',
  ]);
  const user = s.optionalString('user');
  // With auth, never send the password (and then the reports) in clear text: a server without STARTTLS is refused.
  const allowInsecureAuth = s.boolean('allowInsecureAuth', false);
  const ca = s.optionalString('caFile');
  return nodemailer.createTransport({
    host: s.string('host'),
    port: s.number('port', 587, { min: 1, max: 65_535, integer: true }),
    secure: s.boolean('secure', false),
    ...(user ? { auth: { user, pass: s.string('password') }, requireTLS: !allowInsecureAuth } : {}),
    tls: { rejectUnauthorized: s.boolean('rejectUnauthorized', true), ...(ca ? { ca: readFileSync(ca) } : {}) },
  });
}

export function revocationPolicies(registry: IdentityRegistry, config: GlasswatchConfig): Map<string, RevocationPolicy> {
  const file = config.file;
  const r = Fields.of(file, 'revocation', config.sections.revocation).only(['webhook', 'okta', 'aws', 'k8s', 'retry', 'verify', 'confirm']);
  const targets = new Map<string, () => RevocationTarget>();
  if (r.value.webhook !== undefined) {
    const w = r.section('webhook').only(['url', 'secret']);
    const opts = { url: w.string('url'), secret: w.string('secret') };
    targets.set('webhook', () => new WebhookRevoker(opts));
  }
  if (r.value.okta !== undefined) {
    const k = r.section('okta').only(['orgUrl', 'token', 'bearer', 'suspend', 'oauthTokens']);
    const token = k.optionalString('token');
    const bearer = k.optionalString('bearer');
    if (!token && !bearer) k.fail('token', 'give an API token (token) or an OAuth access token (bearer)');
    const opts = {
      orgUrl: k.string('orgUrl'),
      authorization: token ? `SSWS ${token}` : `Bearer ${bearer}`,
      suspend: k.boolean('suspend', false),
      oauthTokens: k.boolean('oauthTokens', true),
    };
    targets.set('okta', () => new OktaRevoker(opts));
  }
  const awsSection =
    r.value.aws !== undefined ? r.section('aws').only(['region', 'endpoint', 'accessKeyId', 'secretAccessKey', 'sessionToken']) : null;
  if (r.value.k8s !== undefined) {
    const k = r.section('k8s').only(['server', 'token', 'caFile']);
    const ca = k.optionalString('caFile');
    const opts = { server: k.string('server'), token: k.string('token'), ...(ca ? { caCert: readFileSync(ca, 'utf8') } : {}) };
    targets.set('k8s', () => new K8sRevoker(opts));
  }
  const policies = new Map<string, RevocationPolicy>();
  for (const identity of registry.identities) {
    const list: RevocationTarget[] = [];
    const aws = (role: string | undefined): AwsRevoker => {
      const a = awsSection ?? Fields.of(file, 'revocation.aws', {});
      const keyId = a.optionalString('accessKeyId');
      const endpoint = a.optionalString('endpoint');
      return new AwsRevoker({
        region: a.string('region', 'us-east-1'),
        ...(endpoint ? { endpoint } : {}),
        ...(keyId
          ? {
              credentials: {
                accessKeyId: keyId,
                secretAccessKey: a.string('secretAccessKey'),
                ...(a.optionalString('sessionToken') ? { sessionToken: a.string('sessionToken') } : {}),
              },
            }
          : {}),
        ...(role ? { role } : {}),
      });
    };
    if (identity.revocation.mode === 'auto') {
      for (const kind of identity.revocation.targets) {
        if (kind === 'aws') {
          list.push(aws(identity.revocation.role));
          continue;
        }
        const make = targets.get(kind);
        if (!make)
          throw new ConfigError(file, `revocation.${kind}`, `identity "${identity.id}" revokes through ${kind}, which is not configured`);
        list.push(make());
      }
    }
    // followLinked: the linked session's own plane (AWS through the SDK's default chain when revocation.aws is absent).
    const follow = identity.revocation.followLinked
      ? [...(['okta', 'k8s'] as const).flatMap((k) => targets.get(k)?.() ?? []), aws(undefined)]
      : undefined;
    policies.set(identity.id, { mode: identity.revocation.mode, targets: list, ...(follow ? { follow } : {}) });
  }
  return policies;
}
