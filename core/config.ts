import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { GlasswatchError } from './errors.js';
import { redactText, registerSecret } from './log.js';
import type { StoreConfig } from './store/client.js';
import { validClusterName } from './store/cluster.js';

/**
 * The glasswatch configuration file: YAML, validated once at start-up, then frozen.
 * `${NAME}` in a string value is replaced by the environment variable NAME, so secrets
 * stay out of the file; an unset variable is an error, never an empty secret.
 *
 * Each component owns a section and its validator; this file holds the shared ones and
 * the registry of known sections, so a typo in a top-level key is caught at the edge.
 */
export interface BusConfig {
  kind: 'memory' | 'kafka';
  /** host:port list. Required for kafka. */
  brokers: string[];
  /** @default "glasswatch" */
  clientId: string;
  ssl: boolean;
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
}

export interface TopicsConfig {
  /** Normalized events, keyed by identity. @default "glasswatch.events" */
  events: string;
  /** Input that could not be normalized, with the reason in a header. @default "glasswatch.dead-letters" */
  deadLetters: string;
  /** Alerts, keyed by alert id. @default "glasswatch.alerts" */
  alerts: string;
  /** Ticket versions, keyed by `id@updatedAt` (compacted: every version kept). @default "glasswatch.tickets" */
  tickets: string;
  /** Revocation orders of the detector, one per target, keyed by session; revocation workers consume them. @default "glasswatch.revocations" */
  revocations: string;
  /**
   * Person sightings (detector.people with several detector members): each member publishes the
   * cross-plane activity it sees and reads every other member's, keyed by plane and handle.
   * @default "glasswatch.people"
   */
  people: string;
}

export interface GlasswatchConfig {
  store: StoreConfig;
  retentionDays: number;
  /** Days evidence (sessions, alerts, tickets, revocations, deliveries, audit log) is kept. @default 2557 (7 years) */
  evidenceRetentionDays: number;
  bus: BusConfig;
  topics: TopicsConfig;
  /** Stamped on replayed events, which do not name them: the Kubernetes cluster and the Okta org host (`acme.okta.com`). */
  ingest: { k8s: { cluster: string | null }; okta: { org: string | null } };
  /** Sections owned by later stages (detectors, reports, collectors), validated by them. */
  sections: Record<string, unknown>;
  /** File the config came from, for error messages. */
  file: string | null;
}

const OWNED_ELSEWHERE = [
  'identities',
  'tickets',
  'detector',
  'alerts',
  'revocation',
  'reports',
  'schedules',
  'smtp',
  'collectors',
  'rules',
  'evidence',
  'console',
];

export class ConfigError extends GlasswatchError {
  constructor(file: string | null, path: string, message: string) {
    super('BG_CONFIG', redactText(`${file ?? 'config'}: ${path}: ${message}`), { stage: 'config', context: { file, path } });
  }
}

/** Config fields whose values are secrets: never quoted in an error, redacted from every log line. */
export const SECRET_FIELD = /(pass(word|wd|phrase)?|secret|token|bearer|key|authorization|credential)s?$/i;

/**
 * Registers every secret of a config document with the redactor (core/log.ts): values of secret
 * fields, whatever their type (a YAML password `123456` is a number), and the userinfo of URLs,
 * even malformed ones. Runs before validation, so a validation error cannot quote them.
 */
export function registerConfigSecrets(value: unknown, key = ''): void {
  if (Array.isArray(value)) for (const v of value) registerConfigSecrets(v, key);
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) registerConfigSecrets(v, k);
  else if (SECRET_FIELD.test(key) && (typeof value === 'string' || typeof value === 'number')) registerSecret(value);
  else if (typeof value === 'string') {
    const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(value.trim())?.[1];
    if (userinfo) {
      registerSecret(userinfo);
      const colon = userinfo.indexOf(':');
      if (colon >= 0) {
        const password = userinfo.slice(colon + 1);
        registerSecret(password);
        try {
          registerSecret(decodeURIComponent(password));
        } catch {
          // not percent-encoded: the raw form is registered
        }
      }
    }
  }
}

/** A typed reader over one config object that names the file and the field in every error. */
export class Fields {
  constructor(
    readonly file: string | null,
    readonly path: string,
    readonly value: Record<string, unknown>,
  ) {}

  static of(file: string | null, path: string, value: unknown): Fields {
    if (value === undefined || value === null) return new Fields(file, path, {});
    if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(file, path, `must be a mapping, got ${typeName(value)}`);
    return new Fields(file, path, value as Record<string, unknown>);
  }

  #at(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  fail(key: string, message: string): never {
    throw new ConfigError(this.file, this.#at(key), message);
  }

  /** A value as quoted in an error: the type only for a secret field. */
  #shown(key: string, v: unknown): string {
    return SECRET_FIELD.test(key) ? `${typeName(v).split(' ')[0]} (a secret: value not shown)` : typeName(v);
  }

  only(keys: string[]): this {
    for (const k of Object.keys(this.value)) if (!keys.includes(k)) this.fail(k, `unknown key (known: ${keys.join(', ')})`);
    return this;
  }

  string(key: string, fallback?: string): string {
    const v = this.value[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) this.fail(key, 'is required');
      return fallback;
    }
    if (typeof v !== 'string' || v === '') this.fail(key, `must be a non-empty string, got ${this.#shown(key, v)}`);
    return v;
  }

  optionalString(key: string): string | null {
    const v = this.value[key];
    return v === undefined || v === null ? null : this.string(key);
  }

  /**
   * An ISO 8601 date-time with a zone (`Z` or `±hh:mm`), or a date (UTC midnight). A time without a
   * zone would be read in the host's zone, so it is an error naming the field.
   */
  optionalInstant(key: string): string | null {
    const v = this.optionalString(key);
    if (v === null) return null;
    if (!ZONED_INSTANT.test(v) || Number.isNaN(Date.parse(v)))
      this.fail(key, `must be an ISO 8601 time with a zone (Z or ±hh:mm), e.g. 2026-11-20T09:00:00Z, got "${v}"`);
    return v;
  }

  number(key: string, fallback: number, { min = -Infinity, max = Infinity, integer = false } = {}): number {
    const v = this.value[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || Number.isNaN(v) || (integer && !Number.isInteger(v)))
      this.fail(key, `must be ${integer ? 'an integer' : 'a number'}, got ${this.#shown(key, v)}`);
    if (v < min || v > max)
      this.fail(key, `must be between ${min} and ${max}, got ${SECRET_FIELD.test(key) ? 'a secret (value not shown)' : v}`);
    return v;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.value[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${this.#shown(key, v)}`);
    return v;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T {
    const v = this.string(key, fallback);
    if (!(allowed as readonly string[]).includes(v))
      this.fail(key, `must be one of ${allowed.join(', ')}, got ${SECRET_FIELD.test(key) ? 'a secret (value not shown)' : `"${v}"`}`);
    return v as T;
  }

  strings(key: string, fallback?: string[]): string[] {
    const v = this.value[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) this.fail(key, 'is required');
      return fallback;
    }
    const list = typeof v === 'string' ? v.split(',').map((s) => s.trim()) : v;
    if (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s === '')) this.fail(key, 'must be a list of non-empty strings');
    return list as string[];
  }

  section(key: string): Fields {
    return Fields.of(this.file, this.#at(key), this.value[key]);
  }
}

const ZONED_INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

export function expandEnv(value: unknown, file: string | null, path = '', env: NodeJS.ProcessEnv = process.env): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (_m, name: string) => {
      const v = env[name];
      if (v === undefined) throw new ConfigError(file, path || '(root)', `environment variable ${name} is not set`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, file, `${path}[${i}]`, env));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandEnv(v, file, path ? `${path}.${k}` : k, env)]));
  }
  return value;
}

export interface ConfigOverrides {
  /** `--store PATH` on the command line: an embedded store at PATH. */
  storePath?: string;
}

export function parseConfig(input: unknown, file: string | null, overrides: ConfigOverrides = {}): GlasswatchConfig {
  const expanded = expandEnv(input, file);
  registerConfigSecrets(expanded);
  const root = Fields.of(file, '', expanded);
  root.only(['store', 'bus', 'topics', 'ingest', ...OWNED_ELSEWHERE]);

  const s = root
    .section('store')
    .only(['path', 'url', 'username', 'password', 'database', 'retentionDays', 'evidenceRetentionDays', 'tls', 'cluster']);
  let store: StoreConfig;
  if (overrides.storePath) store = { kind: 'chdb', path: overrides.storePath };
  else if (s.value.url !== undefined) {
    if (s.value.path !== undefined) s.fail('path', 'give either store.path (embedded chDB) or store.url (ClickHouse server), not both');
    const tls = s.section('tls').only(['caCertFile', 'certFile', 'keyFile']);
    const ca = tls.optionalString('caCertFile');
    const url = s.string('url');
    if (!URL.canParse(url)) s.fail('url', `is not a URL: "${url}"`);
    store = {
      kind: 'clickhouse',
      url,
      username: s.string('username', 'default'),
      password: s.string('password', ''),
      database: s.string('database', 'glasswatch'),
      ...(s.value.cluster === undefined ? {} : { cluster: clusterName(s) }),
      ...(ca
        ? {
            tls: {
              caCert: readFileSync(ca),
              ...(tls.optionalString('certFile') ? { cert: readFileSync(tls.string('certFile')) } : {}),
              ...(tls.optionalString('keyFile') ? { key: readFileSync(tls.string('keyFile')) } : {}),
            },
          }
        : {}),
    };
  } else {
    if (s.value.cluster !== undefined) s.fail('cluster', 'needs store.url: an embedded chDB store is one process, not a cluster');
    store = { kind: 'chdb', path: s.string('path', '.glasswatch/store') };
  }

  const b = root.section('bus').only(['kind', 'brokers', 'clientId', 'ssl', 'sasl']);
  const kind = b.oneOf('kind', ['memory', 'kafka'] as const, 'memory');
  const saslFields = b.value.sasl === undefined ? null : b.section('sasl').only(['mechanism', 'username', 'password']);
  const bus: BusConfig = {
    kind,
    brokers: kind === 'kafka' ? b.strings('brokers') : b.strings('brokers', []),
    clientId: b.string('clientId', 'glasswatch'),
    ssl: b.boolean('ssl', false),
    ...(saslFields
      ? {
          sasl: {
            mechanism: saslFields.oneOf('mechanism', ['plain', 'scram-sha-256', 'scram-sha-512'] as const),
            username: saslFields.string('username'),
            password: saslFields.string('password'),
          },
        }
      : {}),
  };

  const t = root.section('topics').only(['events', 'deadLetters', 'alerts', 'tickets', 'revocations', 'people']);
  const topics: TopicsConfig = {
    events: t.string('events', 'glasswatch.events'),
    deadLetters: t.string('deadLetters', 'glasswatch.dead-letters'),
    alerts: t.string('alerts', 'glasswatch.alerts'),
    tickets: t.string('tickets', 'glasswatch.tickets'),
    revocations: t.string('revocations', 'glasswatch.revocations'),
    people: t.string('people', 'glasswatch.people'),
  };
  const ingestSection = root.section('ingest').only(['k8s', 'okta']);
  const k8s = ingestSection.section('k8s').only(['cluster']);
  const okta = ingestSection.section('okta').only(['org']);

  const sections: Record<string, unknown> = {};
  for (const key of OWNED_ELSEWHERE) if (root.value[key] !== undefined) sections[key] = root.value[key];

  return deepFreeze({
    store,
    retentionDays: s.number('retentionDays', 400, { min: 1, max: 20_000, integer: true }),
    evidenceRetentionDays: evidenceRetentionDays(s),
    bus,
    topics,
    ingest: { k8s: { cluster: k8s.optionalString('cluster') }, okta: { org: okta.optionalString('org') } },
    sections,
    file,
  });
}

/** Evidence must outlive the raw events it was judged from: a shorter evidence retention would drop verdicts first. */
function evidenceRetentionDays(s: Fields): number {
  const raw = s.number('retentionDays', 400, { min: 1, max: 20_000, integer: true });
  const evidence = s.number('evidenceRetentionDays', 2557, { min: 1, max: 20_000, integer: true });
  if (evidence < raw)
    s.fail('evidenceRetentionDays', `(${evidence}) must be at least store.retentionDays (${raw}): evidence outlives raw events`);
  return evidence;
}

export function loadConfig(file: string | undefined, overrides: ConfigOverrides = {}): GlasswatchConfig {
  if (!file) return parseConfig({}, null, overrides);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new GlasswatchError('BG_CONFIG_READ', `cannot read config file "${file}": ${(cause as Error).message}`, {
      stage: 'config',
      cause,
    });
  }
  let doc: unknown;
  try {
    doc = parse(text, { uniqueKeys: true });
  } catch (cause) {
    // The parser's message quotes the offending source lines, which may hold a secret: its first line names line and column.
    const first = (cause as Error).message.split('\n')[0]?.replace(/:$/, '') ?? 'syntax error';
    throw new GlasswatchError('BG_CONFIG_YAML', redactText(`${file}: not valid YAML: ${first}`), {
      stage: 'config',
      context: { linePos: (cause as { linePos?: unknown }).linePos ?? null },
      hint: 'fix the YAML at that line and column (the line is not quoted here: it may hold a secret)',
    });
  }
  return parseConfig(doc, file, overrides);
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** `store.cluster`: DDL takes no parameters, so the name is held to an identifier here, at the edge. */
function clusterName(s: Fields): string {
  const name = s.string('cluster');
  if (!validClusterName(name)) s.fail('cluster', `must be a cluster name (letters, digits, _ . -), got "${name}"`);
  return name;
}
