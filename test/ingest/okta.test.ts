import { describe, expect, it } from 'vitest';
import { normalizeOktaEvent } from '../../ingest/index.js';
import { deads, events, fixture, run } from './helpers.js';

describe('Okta System Log API page (JSON array)', () => {
  const results = run('okta/systemlog-page.json');
  const [grant, failure, apiToken, challenge] = events(results);

  it('maps a LogEvent', () => {
    expect(results.map((r) => r.origin.index)).toEqual([0, 1, 2, 3]);
    expect(grant).toMatchObject({
      source: 'okta',
      id: 'aaaaaaaa-0000-4000-8000-000000000001',
      time: '2024-06-01T08:00:00.123Z',
      actor: { id: '00uEXAMPLEADMIN01', name: 'erin@example.com', type: 'User', sessionKey: '102EXAMPLESESSION01' },
      action: 'user.account.privilege.grant',
      targets: [{ id: '00uEXAMPLETARGET1', type: 'User', name: 'frank@example.com' }],
      outcome: 'success',
      sourceIp: '198.51.100.77',
      userAgent: 'Mozilla/5.0 (Macintosh)',
      account: null,
      org: null,
    });
    expect(grant?.raw).toEqual(JSON.parse(fixture('okta/systemlog-page.json').toString('utf8'))[0]);
  });

  it('maps FAILURE with its reason, ALLOW as success, CHALLENGE as unknown', () => {
    expect(failure).toMatchObject({ outcome: 'failure', outcomeReason: 'INVALID_CREDENTIALS', targets: [] });
    expect(apiToken?.outcome).toBe('success');
    expect(challenge?.outcome).toBe('unknown');
  });

  it('drops the literal "unknown" session id and falls back to request.ipChain for the IP', () => {
    expect(apiToken?.actor.sessionKey).toBeNull();
    expect(apiToken?.sourceIp).toBe('192.0.2.10');
  });

  it('stamps a configured org host', () => {
    expect(events(run('okta/systemlog-page.json', { oktaOrg: 'acme.okta.com' }))[0]?.org).toBe('acme.okta.com');
  });
});

describe('Okta JSON lines with BOM, CRLF, Panther times and broken lines', () => {
  const results = run('okta/crlf-bom.ndjson');

  it('accounts for every non-blank line', () => {
    expect(results.map((r) => [r.kind, r.origin.line])).toEqual([
      ['event', 1],
      ['event', 2],
      ['dead', 3],
      ['dead', 5],
      ['dead', 6],
      ['dead', 7],
    ]);
  });

  it('reads the Panther `2022-03-22 14:21:53.225` form as UTC and DENY as failure', () => {
    const [impersonation, deny] = events(results);
    expect(impersonation).toMatchObject({ time: '2022-03-22T14:21:53.225Z', action: 'user.session.impersonation.grant' });
    expect(impersonation?.raw.p_log_type).toBe('Okta.SystemLog');
    expect(deny?.outcome).toBe('failure');
  });

  it('names the broken field; the dead text is the line without CR', () => {
    const dead = deads(results);
    expect(dead.map((d) => d.reason)).toEqual([
      'okta: actor is not an object ("x") at line 3',
      'okta: published is not a timestamp (1647958973) at line 5',
      'okta: uuid is missing at line 6',
      expect.stringMatching(/^malformed JSON: .* at line 7$/),
    ]);
    expect(dead[3]?.text).toBe('{"uuid":"trunc');
    expect(dead[0]?.text.endsWith('}')).toBe(true);
  });
});

describe('Okta Event Hook deliveries', () => {
  it('reads the 2019 shape (eventId) and ignores a placeholder source host', () => {
    const results = run('okta/hook-2019.json');
    expect(events(results)).toMatchObject([{ id: 'aaaaaaaa-0000-4000-8000-000000000021', org: null, action: 'user.session.start' }]);
    expect(results[0]?.origin).toMatchObject({ index: 0, path: 'data.events[0]' });
  });

  it('reads the current shape and takes the org host from the hook source', () => {
    const list = events(run('okta/hook-current.json'));
    expect(list.map((e) => [e.action, e.org])).toEqual([
      ['user.lifecycle.deactivate', 'acme.okta.com'],
      ['group.user_membership.add', 'acme.okta.com'],
    ]);
  });

  it('unwraps a SEKOIA sample wrapper', () => {
    expect(events(run('okta/sekoia-wrapper.json'))[0]?.id).toBe('aaaaaaaa-0000-4000-8000-000000000001');
  });

  it('exposes the record normalizer directly', () => {
    expect(normalizeOktaEvent({ uuid: 'u', published: '2024-01-01T00:00:00Z', eventType: 'x.y', target: 'nope' })).toBe(
      'target is not an array ("nope")',
    );
  });
});
