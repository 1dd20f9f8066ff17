import { ConfigError } from '../core/config.js';
import { type AuditEvent, isSource, type Source } from '../core/event.js';
import { compileSelection } from '../rules/engine/index.js';
import { type ConfirmPolicy, parseConfirm } from './confirm/config.js';
import type { RevocationMode } from './revoke/dispatcher.js';

export const REVOCATION_TARGET_KINDS = ['webhook', 'okta', 'aws', 'k8s'] as const;
export type RevocationTargetKind = (typeof REVOCATION_TARGET_KINDS)[number];

/** One break-glass identity of the registry (the `identities:` contract of the config file). */
export interface Identity {
  id: string;
  source: Source;
  /** The Sigma selection as written, kept for reports and `rules sql`. */
  match: unknown;
  matches: (raw: unknown) => boolean;
  /** `followLinked`: revoking an unauthorized session also revokes the person's linked sessions in the other planes (detectors/people). */
  revocation: { mode: RevocationMode; targets: RevocationTargetKind[]; role?: string; followLinked?: boolean };
  /** Ask the owner "was this you?" before revoking (detectors/confirm); absent: revoke as configured. */
  confirm?: ConfirmPolicy;
}

/**
 * The break-glass identities, each recognised by a Sigma detection selection over the
 * raw event (map = AND, list of maps = OR, modifiers allowed). An event belongs to the
 * first identity, in config order, whose source and selection match.
 */
export class IdentityRegistry {
  readonly #bySource = new Map<Source, Identity[]>();
  readonly identities: readonly Identity[];

  constructor(identities: Identity[]) {
    this.identities = identities;
    for (const i of identities) {
      let list = this.#bySource.get(i.source);
      if (!list) {
        list = [];
        this.#bySource.set(i.source, list);
      }
      list.push(i);
    }
  }

  get(id: string): Identity | undefined {
    return this.identities.find((i) => i.id === id);
  }

  match(e: AuditEvent): Identity | null {
    const list = this.#bySource.get(e.source);
    if (!list) return null;
    for (const i of list) if (i.matches(e.raw)) return i;
    return null;
  }

  /** Validates the `identities:` section; errors name the file and the path of the bad entry. */
  static fromConfig(section: unknown, file: string | null): IdentityRegistry {
    if (section === undefined || section === null) return new IdentityRegistry([]);
    if (!Array.isArray(section)) throw new ConfigError(file, 'identities', 'must be a list of identities');
    const seen = new Set<string>();
    const out: Identity[] = section.map((entry, n) => {
      const at = `identities[${n}]`;
      if (!entry || typeof entry !== 'object' || Array.isArray(entry))
        throw new ConfigError(file, at, 'must be a mapping with id, source and match');
      const e = entry as Record<string, unknown>;
      for (const k of Object.keys(e))
        if (!['id', 'source', 'match', 'revocation', 'description', 'confirm'].includes(k))
          throw new ConfigError(file, `${at}.${k}`, 'unknown key (known: id, source, match, revocation, description, confirm)');
      if (typeof e.id !== 'string' || !/^[A-Za-z0-9_.:-]{1,128}$/.test(e.id))
        throw new ConfigError(file, `${at}.id`, 'must be a name of letters, digits, _ . : -');
      if (seen.has(e.id)) throw new ConfigError(file, `${at}.id`, `duplicate identity id "${e.id}"`);
      seen.add(e.id);
      if (!isSource(e.source))
        throw new ConfigError(file, `${at}.source`, `must be cloudtrail, okta or k8s, got ${JSON.stringify(e.source)}`);
      if (e.match === undefined || e.match === null) throw new ConfigError(file, `${at}.match`, 'is required (a Sigma selection)');
      let matches: (raw: unknown) => boolean;
      try {
        matches = compileSelection(e.match, { path: `${at}.match` });
      } catch (err) {
        throw new ConfigError(file, `${at}.match`, (err as Error).message);
      }
      return {
        id: e.id,
        source: e.source,
        match: e.match,
        matches,
        revocation: parseRevocation(e.revocation, e.source, file, `${at}.revocation`),
        ...(e.confirm === undefined ? {} : confirmOf(e.confirm, file, `${at}.confirm`)),
      };
    });
    return new IdentityRegistry(out);
  }
}

function confirmOf(value: unknown, file: string | null, at: string): { confirm?: ConfirmPolicy } {
  const confirm = parseConfirm(value, file, at);
  return confirm ? { confirm } : {};
}

const DEFAULT_TARGET: Record<Source, RevocationTargetKind> = { cloudtrail: 'aws', okta: 'okta', k8s: 'k8s' };

function parseRevocation(value: unknown, source: Source, file: string | null, at: string): Identity['revocation'] {
  // Without a word from the operator, glasswatch alerts and asks a human: cutting sessions is opt-in.
  if (value === undefined || value === null) return { mode: 'manual', targets: [DEFAULT_TARGET[source]] };
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(file, at, 'must be a mapping: { mode, targets, role }');
  const r = value as Record<string, unknown>;
  for (const k of Object.keys(r))
    if (!['mode', 'target', 'targets', 'role', 'followLinked'].includes(k))
      throw new ConfigError(file, `${at}.${k}`, 'unknown key (known: mode, target, targets, role, followLinked)');
  const mode = r.mode ?? 'manual';
  if (mode !== 'auto' && mode !== 'manual' && mode !== 'off')
    throw new ConfigError(file, `${at}.mode`, `must be auto, manual or off, got ${JSON.stringify(mode)}`);
  const raw = r.targets ?? (r.target !== undefined ? [r.target] : [DEFAULT_TARGET[source]]);
  if (!Array.isArray(raw) || raw.length === 0) throw new ConfigError(file, `${at}.targets`, 'must be a non-empty list');
  for (const t of raw) {
    if (!(REVOCATION_TARGET_KINDS as readonly unknown[]).includes(t))
      throw new ConfigError(file, `${at}.targets`, `unknown target ${JSON.stringify(t)} (known: ${REVOCATION_TARGET_KINDS.join(', ')})`);
  }
  if (r.role !== undefined && (typeof r.role !== 'string' || r.role === ''))
    throw new ConfigError(file, `${at}.role`, 'must be an IAM role name');
  if (r.followLinked !== undefined && typeof r.followLinked !== 'boolean')
    throw new ConfigError(file, `${at}.followLinked`, `must be true or false, got ${JSON.stringify(r.followLinked)}`);
  // Following needs targets that act: a manual or switched-off identity cannot cut a linked session either.
  if (r.followLinked === true && mode !== 'auto') throw new ConfigError(file, `${at}.followLinked`, `needs mode: auto (mode is ${mode})`);
  return {
    mode,
    targets: raw as RevocationTargetKind[],
    ...(typeof r.role === 'string' ? { role: r.role } : {}),
    ...(r.followLinked === true ? { followLinked: true } : {}),
  };
}
