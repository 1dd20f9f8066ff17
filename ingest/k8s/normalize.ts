/**
 * One Kubernetes `audit.k8s.io` Event (v1, v1beta1, and the 2017-era shape with `timestamp`) →
 * AuditEvent.
 *
 * Time: `requestReceivedTimestamp`, falling back to `stageTimestamp`, then the legacy `timestamp`.
 * The request time is when the act happened and is the same for every stage of one auditID; the
 * ResponseComplete `stageTimestamp` of an exec or watch can be minutes or hours later.
 *
 * Actor: the authenticated `user` (the holder of the credential, e.g. a `system:masters` cert),
 * not `impersonatedUser`; an impersonated identity is listed as a target of type `ImpersonatedUser`
 * so rules can still see it.
 */
import type { AuditEvent, Outcome, Target } from '../../core/event.js';
import { badField, type JsonObject, looseString, optObject, optString, WRONG_TYPE } from '../fields.js';
import { toIsoMillis } from '../time.js';

export interface K8sContext {
  /** Cluster name: the Event does not carry one (option, or the AKS wrapper's resource id). */
  cluster?: string | null;
}

const NO_CONTEXT: K8sContext = {};

/** Control-plane identities; other `system:` names (e.g. minikube's `system:admin`) are people with a cert. */
const SYSTEM_COMPONENT = /^system:(?:kube-|apiserver|volume-scheduler|aggregator|controller:|cloud-controller-manager|konnectivity)/;

/** Principal kind from the username conventions of the API server's authenticators. */
function principalType(username: string | null): string | null {
  if (username === null) return null;
  if (username.startsWith('system:serviceaccount:')) return 'ServiceAccount';
  if (username.startsWith('system:node:')) return 'Node';
  if (username === 'system:anonymous') return 'Anonymous';
  if (SYSTEM_COMPONENT.test(username)) return 'SystemComponent';
  return 'User';
}

/** `ns/name`, `ns/*` for a collection, `name` when cluster-scoped. */
function objectName(namespace: string | null, name: string | null): string | null {
  if (namespace === null) return name;
  return `${namespace}/${name ?? '*'}`;
}

/** The path of a non-resource request (`/healthz?verbose` → `/healthz`). */
function requestPath(uri: string | null): string {
  if (uri === null) return '-';
  const query = uri.indexOf('?');
  return query >= 0 ? uri.slice(0, query) : uri;
}

/**
 * Map one audit Event. Returns the event, or a string saying why the record cannot be one (naming
 * the field); the caller adds the source and location. `record` becomes `raw` untouched.
 */
export function normalizeK8sEvent(record: JsonObject, context: K8sContext = NO_CONTEXT): AuditEvent | string {
  const id = record.auditID;
  if (typeof id !== 'string' || id.length === 0) return badField('auditID', 'a non-empty string', id);
  const timeField =
    record.requestReceivedTimestamp !== undefined
      ? 'requestReceivedTimestamp'
      : record.stageTimestamp !== undefined
        ? 'stageTimestamp'
        : 'timestamp';
  const time = toIsoMillis(record[timeField]);
  if (time === null) {
    if (record[timeField] === undefined) return 'requestReceivedTimestamp is missing (and no stageTimestamp or timestamp)';
    return badField(timeField, 'a timestamp', record[timeField]);
  }
  const verb = record.verb;
  if (typeof verb !== 'string' || verb.length === 0) return badField('verb', 'a non-empty string', verb);
  const user = optObject(record.user);
  if (user === WRONG_TYPE) return badField('user', 'an object', record.user);
  const objectRef = optObject(record.objectRef);
  if (objectRef === WRONG_TYPE) return badField('objectRef', 'an object', record.objectRef);
  const status = optObject(record.responseStatus);
  if (status === WRONG_TYPE) return badField('responseStatus', 'an object', record.responseStatus);
  const sourceIPs = record.sourceIPs;
  if (sourceIPs !== undefined && sourceIPs !== null && !Array.isArray(sourceIPs)) return badField('sourceIPs', 'an array', sourceIPs);
  const userAgent = optString(record.userAgent);
  if (userAgent === WRONG_TYPE) return badField('userAgent', 'a string', record.userAgent);

  let action: string;
  const targets: Target[] = [];
  if (objectRef !== null) {
    const resource = looseString(objectRef.resource);
    const subresource = looseString(objectRef.subresource);
    const kind = resource === null ? '-' : subresource === null ? resource : `${resource}/${subresource}`;
    action = `${verb} ${kind}`;
    targets.push({
      id: looseString(objectRef.uid),
      type: resource,
      name: objectName(looseString(objectRef.namespace), looseString(objectRef.name)),
    });
  } else {
    action = `${verb} ${requestPath(looseString(record.requestURI))}`;
  }
  const impersonated = optObject(record.impersonatedUser);
  if (impersonated === WRONG_TYPE) return badField('impersonatedUser', 'an object', record.impersonatedUser);
  if (impersonated !== null) {
    targets.push({ id: looseString(impersonated.uid), type: 'ImpersonatedUser', name: looseString(impersonated.username) });
  }

  let outcome: Outcome = 'unknown';
  let outcomeReason: string | null = null;
  // Some shippers re-type the code as a string ("403"): read it as the number it is. A code that is no
  // number at all leaves the outcome unknown; the event itself is kept, never dead-lettered for it.
  const code = status === null ? undefined : statusCode(status.code);
  if (code !== undefined) {
    if (code >= 400) {
      outcome = 'failure';
      outcomeReason = looseString(status?.reason) ?? looseString(status?.message) ?? String(code);
    } else {
      outcome = 'success';
    }
  }

  const username = user === null ? null : looseString(user.username);
  const sourceIp = sourceIPs === undefined || sourceIPs === null ? null : looseString(sourceIPs[0]);
  return {
    source: 'k8s',
    id,
    time,
    actor: {
      id: user === null ? null : (looseString(user.uid) ?? username),
      name: username,
      type: principalType(username),
      // Kubernetes has no session id; user + first client IP is the closest stable grouping.
      sessionKey: username !== null && sourceIp !== null ? `${username}@${sourceIp}` : null,
    },
    action,
    targets,
    outcome,
    outcomeReason,
    sourceIp,
    userAgent,
    account: null,
    org: null,
    cluster: context.cluster ?? null,
    raw: record,
  };
}

function statusCode(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && /^\s*\d{1,3}\s*$/.test(value)) return Number(value);
  return undefined;
}
