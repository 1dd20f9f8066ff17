import { Fields } from '../../core/config.js';
import type { AlertContext, AlertType, Severity } from './alert.js';
import { defaultProducer } from './dispatcher.js';
import { ALERT_FORMATS } from './formats/index.js';
import { PagerDutyOutput } from './outputs/pagerduty.js';
import { SlackBotOutput } from './outputs/slack.js';
import { SyslogOutput } from './outputs/syslog.js';
import { TeamsOutput } from './outputs/teams.js';
import type { AlertOutput, OutputRouting } from './outputs.js';
import { isAlertType, RuleMatchThrottle, type ThrottleSettings } from './routing.js';

/** Keys every output accepts besides its own. */
export const ROUTING_KEYS = ['format', 'minSeverity', 'types', 'identities'];
/** Plus this for human outputs (e-mail, chat). */
export const GROUP_KEYS = [...ROUTING_KEYS, 'groupWindowSeconds'];
const SEVERITIES: readonly Severity[] = ['informational', 'low', 'medium', 'high', 'critical'];

/** `format`, `minSeverity`, `types`, `identities` (and `groupWindowSeconds` for human outputs) of one output. */
export function routingOf(f: Fields, grouped: boolean, identityIds?: ReadonlySet<string>): OutputRouting {
  const r: OutputRouting = { format: f.oneOf('format', ALERT_FORMATS, 'native'), filter: {} };
  if (f.value.minSeverity !== undefined) r.filter = { minSeverity: f.oneOf('minSeverity', SEVERITIES) };
  if (f.value.types !== undefined) {
    const types = f.strings('types');
    for (const t of types) if (!isAlertType(t)) f.fail('types', `unknown alert type "${t}" (see docs/alerts.md)`);
    r.filter = { ...r.filter, types: types as AlertType[] };
  }
  if (f.value.identities !== undefined) {
    const ids = f.strings('identities');
    // A typo here would silently route an identity's alerts nowhere: fail closed.
    if (identityIds) for (const id of ids) if (!identityIds.has(id)) f.fail('identities', `unknown identity "${id}"`);
    r.filter = { ...r.filter, identities: ids };
  }
  if (grouped) r.groupWindowSeconds = f.number('groupWindowSeconds', 60, { min: 0, max: 86_400, integer: true });
  return r;
}

/** `alerts.instance`, `alerts.runbooks` (identity id or `default` → URL or text). */
export function alertContextOf(a: Fields, ruleReferences: ReadonlyMap<string, readonly string[]>): AlertContext {
  const instance = a.optionalString('instance');
  const runbooks: Record<string, string> = {};
  const rb = a.section('runbooks');
  for (const k of Object.keys(rb.value)) runbooks[k] = rb.string(k);
  return { producer: defaultProducer(instance ?? undefined), runbooks, ruleReferences };
}

/** `alerts.ruleMatch: { dedupSeconds, threshold, rules: { <rule id>: { dedupSeconds, threshold } } }`. */
export function throttleOf(a: Fields): RuleMatchThrottle {
  const r = a.section('ruleMatch').only(['dedupSeconds', 'threshold', 'rules']);
  const settings = (f: Fields, d: ThrottleSettings): ThrottleSettings => ({
    dedupSeconds: f.number('dedupSeconds', d.dedupSeconds, { min: 0, max: 7 * 86_400 }),
    threshold: f.number('threshold', d.threshold, { min: 1, max: 1_000_000, integer: true }),
  });
  const global = settings(r, { dedupSeconds: 0, threshold: 1 });
  const perRule = new Map<string, ThrottleSettings>();
  const rules = r.section('rules');
  for (const id of Object.keys(rules.value)) perRule.set(id, settings(rules.section(id).only(['dedupSeconds', 'threshold']), global));
  return new RuleMatchThrottle(global, perRule);
}

/** Every key of the `alerts:` section. */
export const ALERT_SECTION_KEYS = [
  'jsonl',
  'webhooks',
  'email',
  'kafka',
  'pagerduty',
  'teams',
  'syslog',
  'slack',
  'instance',
  'runbooks',
  'ruleMatch',
  // Retry policy of the delivery workers (detectors/stages/policy.ts).
  'delivery',
];

/** A list of outputs, or a single mapping for one. */
function each(a: Fields, key: string, fn: (f: Fields) => AlertOutput): AlertOutput[] {
  const v = a.value[key];
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((item, i) => fn(Fields.of(a.file, Array.isArray(v) ? `alerts.${key}[${i}]` : `alerts.${key}`, item)));
}

/** The outputs SOCs already run: PagerDuty, Teams, syslog, Slack with a bot token. */
export function socOutputsOf(a: Fields, ids: ReadonlySet<string>): AlertOutput[] {
  const named = (f: Fields) => {
    const name = f.optionalString('name');
    return name ? { name } : {};
  };
  return [
    ...each(a, 'pagerduty', (f) => {
      f.only(['routingKey', 'url', 'name', ...ROUTING_KEYS]);
      const routing = routingOf(f, false, ids);
      // Paging is for what needs a human now: high and critical unless told otherwise.
      if (!routing.filter?.minSeverity) routing.filter = { ...routing.filter, minSeverity: 'high' };
      const url = f.optionalString('url');
      return new PagerDutyOutput({ routingKey: f.string('routingKey'), routing, ...(url ? { url } : {}), ...named(f) });
    }),
    ...each(a, 'teams', (f) => {
      f.only(['url', 'name', ...GROUP_KEYS]);
      return new TeamsOutput({ url: f.string('url'), routing: routingOf(f, true, ids), ...named(f) });
    }),
    ...each(a, 'syslog', (f) => {
      f.only(['host', 'port', 'tls', 'caFile', 'rejectUnauthorized', 'facility', 'sdId', 'name', ...ROUTING_KEYS]);
      const tls = f.boolean('tls', true);
      const sdId = f.optionalString('sdId');
      if (sdId && !/^[\x21-\x7e]{1,32}$/.test(sdId.replace(/[=\]"\s]/g, ' ')))
        f.fail('sdId', 'must be 1-32 printable ASCII characters without = ] " or space');
      return new SyslogOutput({
        host: f.string('host'),
        port: f.number('port', tls ? 6514 : 601, { min: 1, max: 65_535, integer: true }),
        tls,
        caFile: f.optionalString('caFile'),
        rejectUnauthorized: f.boolean('rejectUnauthorized', true),
        facility: f.number('facility', 10, { min: 0, max: 23, integer: true }),
        ...(sdId ? { sdId } : {}),
        routing: routingOf(f, false, ids),
        ...named(f),
      });
    }),
    ...each(a, 'slack', (f) => {
      f.only(['token', 'channel', 'apiUrl', 'name', ...GROUP_KEYS]);
      const apiUrl = f.optionalString('apiUrl');
      return new SlackBotOutput({
        token: f.string('token'),
        channel: f.string('channel'),
        routing: routingOf(f, true, ids),
        ...(apiUrl ? { apiUrl } : {}),
        ...named(f),
      });
    }),
  ];
}
