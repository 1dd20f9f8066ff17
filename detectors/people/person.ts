import type { AuditEvent, Source } from '../../core/event.js';
import { aliasKey, type PeopleOptions } from './config.js';

/** Who acted, as one human across planes: the person and the plane's own handle of the session. */
export interface PersonRef {
  /** The person: the `map` entry's name, or the login (lowercased) the planes share. */
  personId: string;
  /** The plane's session handle: Okta externalSessionId, AWS role-session ARN or IAM user, Kubernetes username. */
  key: string;
}

const ASSUMED_ROLE = /^arn:aws[\w-]*:sts::\d{12}:assumed-role\/([^/]+)\/(.+)$/;

type Raw = Record<string, unknown>;
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const first = (v: unknown): string | null => (Array.isArray(v) ? str(v[0]) : str(v));

/**
 * Maps an event to the person behind it:
 *  - Okta: the actor's login (`actor.alternateId`);
 *  - AWS: `AssumeRoleWithSAML` names the login (`userIdentity.userName`, the SAML NameID) and the
 *    role session it opens (`responseElements.assumedRoleUser.arn`), which is learnt; a role session
 *    of a federated role (IAM Identity Center's `AWSReservedSSO_*`, or `people.aws.federatedRoles`)
 *    is named after the login; an IAM user only through `people.map`;
 *  - Kubernetes: an OIDC user (`user.username` = prefix + login); an EKS user authenticated by an AWS
 *    role session (aws-iam-authenticator's `user.extra.arn`, or an access entry's username, which is
 *    that ARN) is the person of that role session.
 * `people.map` aliases win over the login. Failed events are nobody's activity.
 */
export class PersonMapper {
  /** Role-session ARN → person, learnt from `AssumeRoleWithSAML` (the role need not be in federatedRoles). */
  readonly #learnt = new Map<string, { personId: string; atMs: number }>();
  /**
   * Per plane, login → person, role-session ARN → person, Kubernetes username → ref (null: nobody):
   * a person's events repeat the same names, so the aliases and patterns are read once per name.
   */
  readonly #logins: Record<Source, Map<string, string>> = { cloudtrail: new Map(), okta: new Map(), k8s: new Map() };
  readonly #roleSessions = new Map<string, string | null>();
  readonly #k8sUsers = new Map<string, PersonRef | null>();
  readonly #iamUsers = new Map<string, string | null>();
  /** The plane's session handle of the event `of` last mapped (set with its answer: no object per event). */
  key = '';

  constructor(readonly options: PeopleOptions) {}

  /** The person behind the event, or null; `key` is then its session handle in its plane. */
  of(e: AuditEvent, timeMs: number): string | null {
    if (e.outcome === 'failure') return null;
    if (e.source === 'okta') {
      const login = e.actor.type === 'User' ? e.actor.name : null;
      if (!login) return null;
      this.key = e.actor.sessionKey ?? `user:${e.actor.id ?? login}`;
      return this.#person('okta', login);
    }
    if (e.source === 'cloudtrail') return this.#aws(e, timeMs);
    const ref = this.#k8s(e);
    if (!ref) return null;
    this.key = ref.key;
    return ref.personId;
  }

  /** A federated login (a SAML NameID, a role session name, an OIDC username) is the Okta login: its alias counts too. */
  #person(source: Source, login: string): string {
    const cache = this.#logins[source];
    let p = cache.get(login);
    if (p !== undefined) return p;
    const a = this.options.aliases;
    p = a.get(aliasKey(source, login)) ?? (source === 'okta' ? undefined : a.get(aliasKey('okta', login))) ?? login.toLowerCase();
    cached(cache, login, p);
    return p;
  }

  #aws(e: AuditEvent, timeMs: number): string | null {
    const raw = e.raw as Raw;
    const ui = raw.userIdentity as Raw | undefined;
    if (!ui) return null;
    const type = ui.type;
    if (type === 'SAMLUser' && raw.eventName === 'AssumeRoleWithSAML') {
      // principalId is "<issuer hash>:<NameID>"; userName is the NameID alone.
      const pid = str(ui.principalId);
      const login = str(ui.userName) ?? (pid ? pid.slice(pid.indexOf(':') + 1) : null);
      const arn = str(((raw.responseElements as Raw | null)?.assumedRoleUser as Raw | undefined)?.arn);
      if (!login || !arn) return null;
      const personId = this.#person('cloudtrail', login);
      this.#learnt.set(arn, { personId, atMs: timeMs });
      cached(this.#roleSessions, arn, personId);
      this.#k8sUsers.clear(); // an EKS user of this role session may have been read as nobody
      this.key = arn;
      return personId;
    }
    if (type === 'AssumedRole') {
      const arn = str(ui.arn);
      const personId = arn ? this.roleSession(arn) : null;
      if (personId && arn) this.key = arn;
      return personId;
    }
    if (type === 'IAMUser') {
      // Most CloudTrail traffic: an IAM user is someone only through `map`, looked up once per name.
      const name = str(ui.userName);
      if (!name) return null;
      let personId = this.#iamUsers.get(name);
      if (personId === undefined) {
        personId = this.options.aliases.get(aliasKey('cloudtrail', name)) ?? null;
        cached(this.#iamUsers, name, personId);
      }
      if (personId) this.key = `user:${name}`;
      return personId;
    }
    return null;
  }

  /** The person of an assumed-role ARN: learnt from SAML, a federated role's session name, or a map alias. */
  roleSession(arn: string): string | null {
    // One lookup per call on the hot path: a learnt session is in #roleSessions too (#learnt keeps its age).
    let p = this.#roleSessions.get(arn);
    if (p !== undefined) return p;
    const learnt = this.#learnt.get(arn);
    if (learnt) {
      cached(this.#roleSessions, arn, learnt.personId);
      return learnt.personId;
    }
    const m = ASSUMED_ROLE.exec(arn);
    p = !m
      ? null
      : (this.options.aliases.get(aliasKey('cloudtrail', m[2]!)) ??
        (this.options.federatedRoles.some((r) => r.test(m[1]!)) ? this.#person('cloudtrail', m[2]!) : null));
    cached(this.#roleSessions, arn, p);
    return p;
  }

  #k8s(e: AuditEvent): PersonRef | null {
    const user = (e.raw as Raw).user as Raw | undefined;
    const username = str(user?.username);
    if (!username || username.startsWith('system:')) return null;
    // An EKS username may be shared by every session of a role (aws-auth mappings): the session's ARN decides, uncached.
    if (user!.extra !== undefined) return this.#k8sUser(username, user!);
    let ref = this.#k8sUsers.get(username);
    if (ref !== undefined) return ref;
    ref = this.#k8sUser(username, user!);
    cached(this.#k8sUsers, username, ref);
    return ref;
  }

  #k8sUser(username: string, user: Raw): PersonRef | null {
    const alias = this.options.aliases.get(aliasKey('k8s', username));
    if (alias) return { personId: alias, key: username };
    // EKS: the IAM principal that authenticated (aws-iam-authenticator, access entries).
    const arn = first((user.extra as Raw | undefined)?.arn) ?? (username.startsWith('arn:') ? username : null);
    if (arn) {
      const personId = this.roleSession(arn);
      return personId ? { personId, key: username } : null;
    }
    const prefix = this.options.oidcUsernamePrefix;
    if (prefix === null || !username.startsWith(prefix)) return null;
    const login = username.slice(prefix.length);
    return login ? { personId: this.#person('k8s', login), key: username } : null;
  }

  /** Forgets SAML role sessions learnt before `beforeMs` (bounded by the link window). */
  forget(beforeMs: number): void {
    for (const [arn, l] of this.#learnt) {
      if (l.atMs >= beforeMs) continue;
      this.#learnt.delete(arn);
      this.#roleSessions.delete(arn);
    }
    this.#k8sUsers.clear();
  }
}

/** Names seen are many over a long run: a full cache starts over (bounded memory, a lookup again per name). */
const CACHE_LIMIT = 50_000;
function cached<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, value);
}
