/**
 * One Okta System Log LogEvent (from `/api/v1/logs`, an Event Hook's `data.events[]`, or an
 * EventBridge Log Stream `detail`) → AuditEvent.
 */
import type { AuditEvent, Outcome, Target } from '../../core/event.js';
import { badField, isObject, type JsonObject, looseString, optObject, optString, WRONG_TYPE } from '../fields.js';
import { toIsoMillis } from '../time.js';

export interface OktaContext {
  /** Okta org host (`acme.okta.com`): the LogEvent itself does not name its org. */
  org?: string | null;
}

const NO_CONTEXT: OktaContext = {};

function mapOutcome(result: unknown): Outcome {
  switch (result) {
    case 'SUCCESS':
    case 'ALLOW':
      return 'success';
    case 'FAILURE':
    case 'DENY':
      return 'failure';
    default:
      // CHALLENGE, SKIPPED, UNKNOWN and typos are neither: a rule must not read them as success.
      return 'unknown';
  }
}

/**
 * Map one LogEvent. Returns the event, or a string saying why the record cannot be one (naming
 * the field); the caller adds the source and location. `record` becomes `raw` untouched.
 */
export function normalizeOktaEvent(record: JsonObject, context: OktaContext = NO_CONTEXT): AuditEvent | string {
  const id = record.uuid;
  if (typeof id !== 'string' || id.length === 0) return badField('uuid', 'a non-empty string', id);
  const time = toIsoMillis(record.published);
  if (time === null) return badField('published', 'a timestamp', record.published);
  const action = record.eventType;
  if (typeof action !== 'string' || action.length === 0) return badField('eventType', 'a non-empty string', action);
  const actor = optObject(record.actor);
  if (actor === WRONG_TYPE) return badField('actor', 'an object', record.actor);
  const outcomeField = optObject(record.outcome);
  if (outcomeField === WRONG_TYPE) return badField('outcome', 'an object', record.outcome);
  const client = optObject(record.client);
  if (client === WRONG_TYPE) return badField('client', 'an object', record.client);
  const authContext = optObject(record.authenticationContext);
  if (authContext === WRONG_TYPE) return badField('authenticationContext', 'an object', record.authenticationContext);

  const targets: Target[] = [];
  const rawTargets = record.target;
  if (Array.isArray(rawTargets)) {
    for (let i = 0; i < rawTargets.length; i++) {
      const target: unknown = rawTargets[i];
      if (!isObject(target)) return badField(`target[${i}]`, 'an object', target);
      targets.push({
        id: looseString(target.id),
        type: looseString(target.type),
        name: looseString(target.alternateId) ?? looseString(target.displayName),
      });
    }
  } else if (rawTargets !== undefined && rawTargets !== null) {
    return badField('target', 'an array', rawTargets);
  }

  let sourceIp: string | null = null;
  let userAgent: string | null = null;
  if (client !== null) {
    const ip = optString(client.ipAddress);
    if (ip === WRONG_TYPE) return badField('client.ipAddress', 'a string', client.ipAddress);
    sourceIp = ip;
    if (isObject(client.userAgent)) userAgent = looseString(client.userAgent.rawUserAgent);
  }
  if (sourceIp === null && isObject(record.request) && Array.isArray(record.request.ipChain)) {
    const first: unknown = record.request.ipChain[0];
    if (isObject(first)) sourceIp = looseString(first.ip);
  }

  let sessionKey: string | null = null;
  if (authContext !== null) {
    sessionKey = looseString(authContext.externalSessionId);
    // Okta writes the literal "unknown" when no session exists (API tokens); as a key it would merge strangers.
    if (sessionKey === 'unknown') sessionKey = null;
  }

  return {
    source: 'okta',
    id,
    time,
    actor:
      actor === null
        ? { id: null, name: null, type: null, sessionKey }
        : {
            id: looseString(actor.id),
            name: looseString(actor.alternateId) ?? looseString(actor.displayName),
            type: looseString(actor.type),
            sessionKey,
          },
    action,
    targets,
    outcome: outcomeField === null ? 'unknown' : mapOutcome(outcomeField.result),
    outcomeReason: outcomeField === null ? null : looseString(outcomeField.reason),
    sourceIp,
    userAgent,
    account: null,
    org: context.org ?? null,
    cluster: null,
    raw: record,
  };
}
