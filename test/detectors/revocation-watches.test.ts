// The per-event prefilter of revocation verification (RevocationWatches.touched) against the plain
// definition: every watch holding a handle eventHandles(e) gives, for events of every plane and
// handle kind, with watches of every kind, some of them for a value another kind also carries.
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../core/event.js';
import { eventHandles, type RevocationWatch, RevocationWatches } from '../../detectors/revoke/verify.js';
import { bgRole, cloudtrail, iamUser, k8s, okta, root } from '../support/events.js';

const T = '2026-11-20T10:00:00Z';

function events(): AuditEvent[] {
  return [
    cloudtrail(T, 'ListUsers', { ...iamUser('alice'), accessKeyId: 'AKIAALICE' }),
    cloudtrail(T, 'ListUsers', { ...iamUser('bob'), accessKeyId: 'AKIABOB' }),
    cloudtrail(T, 'GetSecretValue', bgRole('ASIAROLE1')),
    cloudtrail(T, 'GetSecretValue', bgRole('ASIAROLE2', '2026-11-20T09:30:00Z')),
    cloudtrail(T, 'ConsoleLogin', root()),
    okta(T, 'user.session.start', 'admin@example.com', { authenticationContext: { externalSessionId: 'idx-1' } }),
    okta(T, 'user.session.start', 'other@example.com', { authenticationContext: { externalSessionId: 'idx-2' } }),
    k8s(T, 'list', { username: 'oidc:admin@example.com', groups: ['admins'] }, { resource: 'secrets' }),
    k8s(T, 'list', { username: 'system:masters-user' }, { resource: 'pods' }),
  ];
}

function watch(id: string, handles: string[]): RevocationWatch {
  return {
    revocationId: id,
    alertId: `a-${id}`,
    sessionId: `s-${id}`,
    identity: 'bg',
    target: 'aws',
    partition: 0,
    handles,
    revokedAtMs: 0,
    orderedMs: 0,
    record: null,
    lastEventId: null,
    lastEventTime: null,
  };
}

describe('revocation watches: the per-event prefilter', () => {
  it('finds exactly the watches holding one of the event’s handles, whatever kinds are watched', () => {
    const all = events();
    const handles = [...new Set(all.flatMap(eventHandles))];
    expect(handles.length).toBeGreaterThan(8);
    // Values watched under another kind than the event gives them (an access key as a session key,
    // a login as an Okta session id) must not count, and must not hide the right kind.
    const decoys = handles.map((h) => {
      const [plane, kind, ...rest] = h.split(':');
      const other = kind === 'key' ? 'session' : kind === 'session' ? 'user' : 'key';
      return `${plane}:${other}:${rest.join(':')}`;
    });
    const pool = [...handles, ...decoys];
    // Every subset of a rotating window of the pool, so each kind is watched alone and with others.
    for (let start = 0; start < pool.length; start++)
      for (const size of [1, 2, 3, 5]) {
        const watches = new RevocationWatches({ enabled: true, allowanceMs: { aws: 0, okta: 0, k8s: 0, webhook: 0 }, windowMs: 60_000 });
        const chosen = Array.from({ length: size }, (_, i) => pool[(start + i) % pool.length]!);
        chosen.forEach((h, i) => {
          watches.add(watch(`w${i}`, [h]));
        });
        for (const e of all) {
          const expected = chosen.flatMap((h, i) => (eventHandles(e).includes(h) ? [`w${i}`] : [])).sort();
          expect(
            watches
              .touched(e)
              .map((t) => t.watch.revocationId)
              .sort(),
            `${e.id} with ${chosen.join(' ')}`,
          ).toEqual(expected);
        }
        // A watch gone takes its values with it.
        chosen.forEach((_, i) => {
          watches.delete(`w${i}`);
        });
        for (const e of all) expect(watches.touched(e)).toEqual([]);
      }
  });
});
