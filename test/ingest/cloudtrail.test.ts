import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { normalizeCloudTrailRecord } from '../../ingest/index.js';
import { deads, events, fixture, run, skips } from './helpers.js';

describe('CloudTrail S3 delivery', () => {
  const results = run('cloudtrail/s3-delivery.json');
  const [apiKey, consoleAction, login, rootFailure, denied] = events(results);

  it('yields one event per record with origins inside Records[]', () => {
    expect(results).toHaveLength(5);
    expect(results.map((r) => r.origin)).toEqual(
      [0, 1, 2, 3, 4].map((i) => ({ file: 'cloudtrail/s3-delivery.json', line: null, index: i, path: `Records[${i}]` })),
    );
  });

  it('maps an access-key API call', () => {
    expect(apiKey).toMatchObject({
      source: 'cloudtrail',
      id: '11111111-aaaa-4bbb-8ccc-000000000001',
      time: '2024-05-02T09:15:07.000Z',
      actor: { id: 'AIDAEXAMPLEUSERALICE', name: 'alice', type: 'IAMUser', sessionKey: 'AKIAEXAMPLEALICEKEY1' },
      action: 's3.amazonaws.com:GetBucketPolicy',
      targets: [{ id: 'arn:aws:s3:::audit-archive', type: 'AWS::S3::Bucket', name: 'audit-archive' }],
      outcome: 'success',
      outcomeReason: null,
      sourceIp: '198.51.100.23',
      userAgent: '[aws-cli/2.15.0]',
      account: '210987654321',
      org: null,
      cluster: null,
    });
  });

  it('keeps raw as the untouched record object', () => {
    const doc = JSON.parse(fixture('cloudtrail/s3-delivery.json').toString('utf8'));
    expect(apiKey?.raw).toEqual(doc.Records[0]);
  });

  it('ties a console login and the actions of its session by principal and session creation time', () => {
    expect(login?.actor.sessionKey).toBe('AIDAEXAMPLEUSERBOB00@2024-05-02T10:00:00.000Z');
    expect(consoleAction?.actor.sessionKey).toBe(login?.actor.sessionKey);
    expect(consoleAction?.targets).toEqual([
      { id: null, type: 'AWS::IAM::Role', name: 'BreakGlassAdmin' },
      { id: 'arn:aws:iam::aws:policy/AdministratorAccess', type: 'AWS::IAM::ManagedPolicy', name: 'AdministratorAccess' },
    ]);
  });

  it('reads ConsoleLogin failure from responseElements and names root', () => {
    expect(rootFailure).toMatchObject({
      action: 'signin.amazonaws.com:ConsoleLogin',
      outcome: 'failure',
      outcomeReason: 'Failed authentication',
      actor: { id: '210987654321', name: 'Root', type: 'Root', sessionKey: null },
    });
  });

  it('reads errorCode as failure and keeps the role session key', () => {
    expect(denied).toMatchObject({
      outcome: 'failure',
      outcomeReason: 'AccessDenied',
      time: '2024-05-02T12:00:00.250Z',
      actor: {
        name: 'arn:aws:sts::210987654321:assumed-role/Deployer/ci-run-42',
        sessionKey: 'AROAEXAMPLEDEPLOYER:ci-run-42@2024-05-02T08:00:00.000Z',
      },
      targets: [{ id: 'arn:aws:iam::210987654321:role/BreakGlassAdmin', type: 'AWS::IAM::Role', name: 'BreakGlassAdmin' }],
    });
  });

  it('decodes the same delivery gzipped, whatever the file name', () => {
    const gz = gzipSync(fixture('cloudtrail/s3-delivery.json'));
    const zipped = run('no-extension', undefined, gz);
    expect(events(zipped).map((e) => e.id)).toEqual(events(results).map((e) => e.id));
  });

  it('takes the AWS Organization id from an org-trail S3 key', () => {
    const key = 'AWSLogs/o-abc123def45/210987654321/CloudTrail/us-east-1/2024/05/02/x.json.gz';
    const [first] = events(run(key, undefined, fixture('cloudtrail/s3-delivery.json')));
    expect(first?.org).toBe('o-abc123def45');
    expect(events(run('x.json', { awsOrg: 'o-configured' }, fixture('cloudtrail/s3-delivery.json')))[0]?.org).toBe('o-configured');
  });
});

describe('CloudTrail JSON lines with real-world quirks and broken records', () => {
  const results = run('cloudtrail/panther-lines.ndjson');

  it('accepts Panther time, an invalid IP as given, and leaves p_* keys in raw', () => {
    const [panther] = events(results);
    expect(panther).toMatchObject({
      time: '2021-01-01T01:01:01.123Z',
      sourceIp: '100.200.300.400',
      action: 'cloudtrail.amazonaws.com:StopLogging',
      actor: { id: 'AIDAEXAMPLECAROL000', name: 'carol', type: 'IAMUser', sessionKey: null },
      targets: [],
    });
    expect(panther?.raw.p_log_type).toBe('AWS.CloudTrail');
  });

  it('dead-letters wrong types and missing fields with the field named, one per line, and keeps going', () => {
    expect(results).toHaveLength(7);
    expect(events(results)).toHaveLength(2);
    expect(deads(results).map((d) => [d.origin.line, d.reason])).toEqual([
      [3, 'cloudtrail: eventTime is not a timestamp (42) at line 3'],
      [4, 'cloudtrail: userIdentity is not an object ("x") at line 4'],
      [5, 'cloudtrail: eventID is missing at line 5'],
      [6, 'cloudtrail: eventTime is not a timestamp ("...") at line 6'],
      [7, expect.stringMatching(/^malformed JSON: .* at line 7$/)],
    ]);
    expect(deads(results)[0]?.text).toContain('"eventTime": 42');
  });
});

describe('CloudTrail EventBridge, Insight and non-event shapes', () => {
  it('unwraps an "AWS API Call via CloudTrail" event; raw is the detail, account from the envelope', () => {
    const results = run('cloudtrail/eventbridge-api-call.json');
    const [event] = events(results);
    expect(results).toHaveLength(1);
    expect(event).toMatchObject({
      id: '33333333-aaaa-4bbb-8ccc-000000000001',
      action: 'iam.amazonaws.com:CreateAccessKey',
      account: '123456789012',
      actor: { type: 'AssumedRole', sessionKey: 'AROAEXAMPLEBREAKGLS:dana@2024-05-03T06:58:00.000Z' },
      targets: [{ id: null, type: 'AWS::IAM::User', name: 'svc-deploy' }],
    });
    expect(event?.raw.eventName).toBe('CreateAccessKey');
    expect(results[0]?.origin.path).toBe('detail');
  });

  it('skips non-CloudTrail EventBridge events, digests and Config rule invocations by kind', () => {
    expect(skips(run('cloudtrail/eventbridge-guardduty.json'))).toMatchObject([
      { what: 'eventbridge-non-cloudtrail:GuardDuty Finding', source: null },
    ]);
    expect(skips(run('cloudtrail/digest.json'))).toMatchObject([{ what: 'cloudtrail-digest', source: 'cloudtrail' }]);
    expect(skips(run('cloudtrail/config-rule.json'))).toMatchObject([{ what: 'aws-config-rule-invocation', source: 'cloudtrail' }]);
  });

  it('normalizes an Insight event without eventName', () => {
    expect(events(run('cloudtrail/insight.json'))).toMatchObject([
      {
        action: 'insight:DeleteAccessKey',
        outcome: 'unknown',
        actor: { id: null, name: null, type: null, sessionKey: null },
        targets: [{ id: '44444444-aaaa-4bbb-8ccc-00000000ffff', type: 'ApiCallRateInsight', name: 'iam.amazonaws.com:DeleteAccessKey' }],
        account: '210987654321',
      },
    ]);
  });

  it('unwraps sample-file wrappers (SEKOIA, StreamAlert) with origins inside them', () => {
    const sekoia = run('cloudtrail/sekoia-wrapper.json');
    expect(events(sekoia)[0]?.action).toBe('signin.amazonaws.com:ConsoleLogin');
    expect(sekoia[0]?.origin.path).toBe('input.message');

    const streamalert = run('cloudtrail/streamalert-descriptors.json');
    expect(streamalert.map((r) => [r.kind, r.origin.path])).toEqual([
      ['event', '[0].data.Records[0]'],
      ['dead', '[0].data.Records[1]'],
      ['event', '[1].data.detail'],
    ]);
    expect(deads(streamalert)[0]?.reason).toBe('cloudtrail: eventTime is not a timestamp ("...") at [0].data.Records[1]');
  });

  it('exposes the record normalizer directly', () => {
    expect(normalizeCloudTrailRecord({ eventID: 'e', eventTime: '2024-01-01T00:00:00Z', eventSource: 42 })).toBe(
      'eventSource is not a non-empty string (42)',
    );
  });
});
