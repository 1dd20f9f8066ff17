import type { AuditEvent } from '../core/event.js';
import type { RuleMatch } from '../rules/engine/index.js';
import type { ActivityCategory } from './alerts/alert.js';

/**
 * A failed sign-in by a break-glass identity is an attempt, not a use: alerted, never
 * revoked (there is no session to cut).
 */
export function isFailedAuthentication(e: AuditEvent): boolean {
  const raw = e.raw as Record<string, unknown>;
  switch (e.source) {
    case 'cloudtrail': {
      if (raw.eventSource !== 'signin.amazonaws.com') return false;
      const name = typeof raw.eventName === 'string' ? raw.eventName : '';
      const response = raw.responseElements as Record<string, unknown> | null | undefined;
      return response?.[name] === 'Failure' || (name === 'ConsoleLogin' && e.outcome === 'failure');
    }
    case 'okta': {
      const type = typeof raw.eventType === 'string' ? raw.eventType : '';
      const auth = type === 'user.session.start' || type.startsWith('user.authentication.');
      return auth && e.outcome === 'failure';
    }
    case 'k8s': {
      const status = raw.responseStatus as { code?: unknown } | undefined;
      return status?.code === 401;
    }
  }
}

const CATEGORY_TAG = /^glasswatch\.(command|data|config)$/;

/**
 * The review category of a rule match: our pack tags it (`glasswatch.data`); for other
 * rules the ATT&CK tactic decides, and anything else counts as a configuration change.
 */
export function categoryOf(match: Pick<RuleMatch, 'tags'>): ActivityCategory {
  for (const t of match.tags) {
    const m = CATEGORY_TAG.exec(t);
    if (m) return m[1] as ActivityCategory;
  }
  const tags = match.tags.map((t) => t.toLowerCase());
  if (
    tags.some(
      (t) =>
        t === 'attack.collection' || t === 'attack.exfiltration' || t === 'attack.credential-access' || t === 'attack.credential_access',
    )
  )
    return 'data';
  if (tags.some((t) => t === 'attack.execution' || t === 'attack.lateral-movement' || t === 'attack.lateral_movement')) return 'command';
  return 'config';
}
