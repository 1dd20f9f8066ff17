import { Fields } from '../../core/config.js';
import type { Source } from '../../core/event.js';

/** How far apart (event time) a person's sessions in two planes may be and still be linked. */
export const DEFAULT_LINK_WINDOW_MINUTES = 60;
/** IAM Identity Center's roles: their role session name is the user's login. */
export const DEFAULT_FEDERATED_ROLES: readonly string[] = ['AWSReservedSSO_*'];

/**
 * `detector.people`: how one human's logins map across Okta, AWS and Kubernetes.
 *
 * ```yaml
 * detector:
 *   people:
 *     windowMinutes: 60
 *     aws: { federatedRoles: ['AWSReservedSSO_*', 'OktaAdmin*'] }   # session name = Okta login
 *     k8s: { oidcUsernamePrefix: 'oidc:' }                           # the API server's --oidc-username-prefix
 *     map:
 *       - { person: alice, okta: alice@example.com, aws: [alice], k8s: [alice-admin] }
 * ```
 */
export interface PeopleOptions {
  windowMs: number;
  /** Role-name globs whose role session name is the person's login (SAML via Okta, IAM Identity Center). */
  federatedRoles: RegExp[];
  /** The Kubernetes OIDC username prefix; null = no Kubernetes user is read as an OIDC login. */
  oidcUsernamePrefix: string | null;
  /** `plane\0login` (lowercased) → person, from `map`. */
  aliases: ReadonlyMap<string, string>;
}

const PLANES: Record<'okta' | 'aws' | 'k8s', Source> = { okta: 'okta', aws: 'cloudtrail', k8s: 'k8s' };

/** A role-name glob (`*` any run of characters) as an anchored, case-sensitive expression (IAM role names are). */
function glob(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
}

export function aliasKey(source: Source, login: string): string {
  return `${source}\u0000${login.toLowerCase()}`;
}

/** `detector.people`, validated; null when absent (no linking: the detector does no per-event work for it). */
export function peopleOptionsOf(detector: Fields): PeopleOptions | null {
  if (detector.value.people === undefined || detector.value.people === null) return null;
  const p = detector.section('people').only(['windowMinutes', 'aws', 'k8s', 'map']);
  const windowMs = p.number('windowMinutes', DEFAULT_LINK_WINDOW_MINUTES, { min: 1, max: 7 * 1440 }) * 60_000;
  const aws = p.section('aws').only(['federatedRoles']);
  const roles = aws.strings('federatedRoles', [...DEFAULT_FEDERATED_ROLES]);
  for (const r of roles)
    if (!/^[\w+=,.@*-]{1,64}$/.test(r))
      aws.fail('federatedRoles', `"${r}" is not an IAM role name pattern (letters, digits, +=,.@_- and *)`);
  const k8s = p.section('k8s').only(['oidcUsernamePrefix']);
  const prefixValue = k8s.value.oidcUsernamePrefix;
  // The API server's own default prefix is the issuer URL and '#'; '' is a valid choice ("-" on its flag).
  if (prefixValue !== undefined && prefixValue !== null && typeof prefixValue !== 'string')
    k8s.fail('oidcUsernamePrefix', 'must be a string (the API server --oidc-username-prefix; "" for none)');
  const aliases = new Map<string, string>();
  const rawMap = p.value.map;
  if (rawMap !== undefined && rawMap !== null && !Array.isArray(rawMap)) p.fail('map', 'must be a list of { person, okta, aws, k8s }');
  for (const [n, entry] of ((rawMap as unknown[] | undefined) ?? []).entries()) {
    const at = `${p.path}.map[${n}]`;
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) p.fail(`map[${n}]`, 'must be a mapping { person, okta, aws, k8s }');
    const m = new Fields(p.file, at, entry as Record<string, unknown>);
    m.only(['person', 'okta', 'aws', 'k8s']);
    const person = m.string('person').toLowerCase();
    let logins = 0;
    for (const plane of ['okta', 'aws', 'k8s'] as const) {
      for (const login of m.strings(plane, [])) {
        const key = aliasKey(PLANES[plane], login);
        const other = aliases.get(key);
        if (other !== undefined && other !== person) m.fail(plane, `"${login}" is mapped to person "${other}" already`);
        aliases.set(key, person);
        logins++;
      }
    }
    if (logins === 0) m.fail('person', 'names no login: give okta, aws or k8s logins of this person');
  }
  return {
    windowMs,
    federatedRoles: roles.map(glob),
    oidcUsernamePrefix: typeof prefixValue === 'string' ? prefixValue : null,
    aliases,
  };
}
