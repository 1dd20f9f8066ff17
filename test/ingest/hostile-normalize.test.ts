// Normalization never throws on hostile input: records nested thousands deep, oversized records,
// envelopes nested inside envelopes, records whose fields throw. Each bad record is one dead result
// with its location and reason; the rest of its unit goes on.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeBuffer, normalizeDocument } from '../../ingest/index.js';
import type { NormalizeResult } from '../../ingest/types.js';
import { deads, events } from './helpers.js';

function trail(id: string, eventName: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    eventVersion: '1.09',
    userIdentity: { type: 'Root', principalId: '111122223333', arn: 'arn:aws:iam::111122223333:root', accountId: '111122223333' },
    eventTime: '2026-11-20T10:00:00Z',
    eventSource: 'cloudtrail.amazonaws.com',
    eventName,
    awsRegion: 'us-east-1',
    sourceIPAddress: '203.0.113.77',
    eventID: id,
    recipientAccountId: '111122223333',
    ...extra,
  };
}

/** `{"x":{"x":…1…}}` `depth` levels deep, as text (building it as an object and stringifying would overflow). */
function deepText(depth: number, open = '{"x":', close = '}'): string {
  return `${open.repeat(depth)}1${close.repeat(depth)}`;
}

/** A CloudTrail record whose requestParameters are `depth` levels deep, as text. */
function deepRecordText(id: string, depth: number): string {
  const record = JSON.stringify(trail(id, 'PutBucketPolicy', { requestParameters: '@' }));
  return record.replace('"@"', deepText(depth));
}

function collect(bytes: Buffer, file = 'hostile.json', options = {}): NormalizeResult[] {
  return [...normalizeBuffer(bytes, file, options)];
}

describe('records nested thousands deep', () => {
  const deepObject = Buffer.from(
    `{"Records":[${JSON.stringify(trail('e1', 'GetBucketPolicy'))},${deepRecordText('e2', 5000)},${JSON.stringify(trail('e3', 'StopLogging'))}]}`,
  );

  it('dead-letters the deep record of an S3 object with its location and keeps the others (StopLogging included)', () => {
    const results = collect(deepObject, 's3://trail/AWSLogs/111122223333/CloudTrail/us-east-1/a.json.gz');
    expect(results).toHaveLength(3);
    expect(events(results).map((e) => e.action)).toEqual([
      'cloudtrail.amazonaws.com:GetBucketPolicy',
      'cloudtrail.amazonaws.com:StopLogging',
    ]);
    const [dead] = deads(results);
    expect(dead).toMatchObject({
      source: 'cloudtrail',
      origin: { file: 's3://trail/AWSLogs/111122223333/CloudTrail/us-east-1/a.json.gz', index: 1, path: 'Records[1]' },
    });
    expect(dead?.reason).toBe('cloudtrail: record nested deeper than 512 levels (maxDepth) at Records[1]');
    // The evidence is kept: the dead text is the record, parseable, as deep as it came.
    expect(dead?.text.startsWith('{"eventVersion":"1.09"')).toBe(true);
    expect(dead?.text.length).toBeGreaterThan(5000 * 5);
  });

  it('dead-letters a deep JSON line at its line and goes on with the next lines', () => {
    const lines = [JSON.stringify(trail('e1', 'GetBucketPolicy')), deepRecordText('e2', 5000), JSON.stringify(trail('e3', 'StopLogging'))];
    const results = collect(Buffer.from(lines.join('\n')), 'trail.ndjson');
    expect(events(results).map((e) => e.id)).toEqual(['e1', 'e3']);
    expect(deads(results)).toEqual([
      expect.objectContaining({ reason: 'cloudtrail: record nested deeper than 512 levels (maxDepth) at line 2', text: lines[1] }),
    ]);
  });

  it('never recurses through envelopes: arrays and Records[] nested 10,000 deep', () => {
    for (const text of [
      deepText(10_000, '[', ']'),
      deepText(10_000, '{"Records":[', ']}'),
      deepText(10_000, '{"detail-type":"x via CloudTrail","detail":', '}'),
    ]) {
      const results = collect(Buffer.from(text));
      expect(results).toHaveLength(1);
      expect(deads(results)[0]?.reason).toMatch(/nested deeper than 512 levels \(maxDepth\) at /);
    }
  });

  it('takes the depth limit from the options, and a record just under it is an event', () => {
    const at = (depth: number, maxDepth?: number) =>
      collect(Buffer.from(`{"Records":[${deepRecordText('e1', depth)}]}`), 'x.json', maxDepth === undefined ? {} : { maxDepth })[0]?.kind;
    expect(at(500)).toBe('event');
    expect(at(520)).toBe('dead');
    expect(at(40, 32)).toBe('dead');
    expect(at(20, 32)).toBe('event');
  });

  it('dead-letters a deep Kubernetes requestObject and a deep Okta event inside their envelopes', () => {
    const k8s = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"apiVersion":"audit.k8s.io/v1","kind":"Event","auditID":"a1","stage":"ResponseComplete","requestReceivedTimestamp":"2026-11-20T10:00:00Z","verb":"create","user":{"username":"alice"},"requestObject":${deepText(4500)}},{"apiVersion":"audit.k8s.io/v1","kind":"Event","auditID":"a2","stage":"ResponseComplete","requestReceivedTimestamp":"2026-11-20T10:00:01Z","verb":"get","user":{"username":"alice"}}]}`;
    const k = collect(Buffer.from(k8s));
    expect(events(k).map((e) => e.id)).toEqual(['a2']);
    expect(deads(k)[0]?.reason).toBe('k8s: record nested deeper than 512 levels (maxDepth) at items[0]');
    const okta = `{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"u1","published":"2026-11-20T10:00:00Z","eventType":"user.session.start","actor":${deepText(3000)}}]}}`;
    expect(deads(collect(Buffer.from(okta)))[0]?.reason).toBe('okta: record nested deeper than 512 levels (maxDepth) at data.events[0]');
  });

  it('normalizeDocument (collectors that parsed the body themselves) never throws on a deep body either', () => {
    const doc = JSON.parse(`{"Records":[${deepRecordText('e1', 5000)},${JSON.stringify(trail('e2', 'StopLogging'))}]}`);
    const results = normalizeDocument(doc, { file: 'sqs:m1', line: null, index: null });
    expect(results.map((r) => r.kind)).toEqual(['dead', 'event']);
    const whole = normalizeDocument(JSON.parse(deepText(6000, '[', ']')), { file: 'body', line: null, index: null });
    expect(whole).toHaveLength(1);
    expect(whole[0]?.kind).toBe('dead');
  });
});

describe('records over the size limit', () => {
  const big = trail('e2', 'PutBucketPolicy', { requestParameters: { policy: 'p'.repeat(2 * 1024 * 1024) } });

  it('dead-letters a record over maxRecordBytes (default 1 MiB) and keeps the rest of the object', () => {
    const bytes = Buffer.from(JSON.stringify({ Records: [trail('e1', 'GetBucketPolicy'), big, trail('e3', 'StopLogging')] }));
    const results = collect(bytes);
    expect(events(results).map((e) => e.id)).toEqual(['e1', 'e3']);
    expect(deads(results)[0]?.reason).toMatch(/^cloudtrail: record is larger than 1048576 bytes \(maxRecordBytes\) at Records\[1\]$/);
  });

  it('measures a JSON line by its bytes and honours a configured limit', () => {
    const lines = [
      JSON.stringify(trail('e1', 'GetBucketPolicy')),
      JSON.stringify(trail('e2', 'X', { requestParameters: { p: 'q'.repeat(5000) } })),
    ];
    const results = collect(Buffer.from(lines.join('\n')), 'x.ndjson', { maxRecordBytes: 4096 });
    expect(events(results).map((e) => e.id)).toEqual(['e1']);
    expect(deads(results)[0]).toMatchObject({
      reason: 'cloudtrail: record is larger than 4096 bytes (maxRecordBytes) at line 2',
      text: lines[1],
    });
    expect(events(collect(Buffer.from(lines.join('\n')), 'x.ndjson')).map((e) => e.id)).toEqual(['e1', 'e2']);
  });
});

describe('JSON too hostile to hand to JSON.parse', () => {
  it('refuses 20 MB of [ without parsing it (V8 would take seconds and over a GB)', () => {
    const started = Date.now();
    const results = collect(Buffer.alloc(20 * 1024 * 1024, '['), 'bomb.json');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(results).toEqual([
      expect.objectContaining({
        kind: 'dead',
        reason: 'JSON not parsed: nested deeper than 32768 levels at byte 32768',
        origin: { file: 'bomb.json', line: null, index: null },
      }),
    ]);
  });

  it('refuses a document of millions of empty arrays', () => {
    const results = collect(Buffer.from(`[${'[],'.repeat(4 * 1024 * 1024)}[]]`), 'wide.json');
    expect(results).toHaveLength(1);
    expect(deads(results)[0]?.reason).toMatch(/^JSON not parsed: more than \d+ objects and arrays in \d+ bytes$/);
  });

  it('dead-letters a hostile JSON line alone, the next lines go on', () => {
    const lines = ['['.repeat(2 * 1024 * 1024), JSON.stringify(trail('e1', 'StopLogging'))];
    const results = collect(Buffer.from(lines.join('\n')), 'x.ndjson');
    expect(results.map((r) => r.kind)).toEqual(['dead', 'event']);
    expect(deads(results)[0]?.reason).toMatch(/^JSON not parsed: nested deeper than 32768 levels at byte \d+ at line 1$/);
  });

  it('still parses a large object holding one 5,000-deep record, and keeps its neighbours', () => {
    const filler = Array.from({ length: 1200 }, (_, i) =>
      JSON.stringify(trail(`f${i}`, 'GetObject', { requestParameters: { key: 'k'.repeat(800) } })),
    );
    const bytes = Buffer.from(
      `{"Records":[${filler.join(',')},${deepRecordText('deep', 5000)},${JSON.stringify(trail('last', 'StopLogging'))}]}`,
    );
    expect(bytes.length).toBeGreaterThan(1024 * 1024);
    const results = collect(bytes);
    expect(events(results)).toHaveLength(1201);
    expect(deads(results).map((d) => d.reason)).toEqual(['cloudtrail: record nested deeper than 512 levels (maxDepth) at Records[1200]']);
  });
});

describe('an unexpected exception in a normalizer', () => {
  it('becomes a dead result for that record, never a throw out of normalize', () => {
    const hostile = trail('e1', 'X');
    Object.defineProperty(hostile, 'eventTime', {
      enumerable: true,
      get() {
        throw new Error('boom');
      },
    });
    const results = normalizeDocument({ Records: [hostile, trail('e2', 'StopLogging')] }, { file: 'sqs:m2', line: null, index: null });
    expect(results.map((r) => r.kind)).toEqual(['dead', 'event']);
    expect(deads(results)[0]?.reason).toMatch(/^cloudtrail: normalizer failed: boom at Records\[0\]$/);
  });
});

describe('property: any JSON value, in any envelope, yields results and never throws', () => {
  const envelopes = [
    (v: string) => v,
    (v: string) => `{"Records":[${v}]}`,
    (v: string) => `{"kind":"EventList","items":[${v}]}`,
    (v: string) => `{"eventType":"com.okta.event_hook","data":{"events":[${v}]}}`,
    (v: string) => `{"detail-type":"AWS API Call via CloudTrail","detail":${v}}`,
    (v: string) => `${v}\n${v}`,
  ];
  it('holds for generated values, deep values and records with arbitrary field types', () => {
    const record = fc.record(
      {
        eventVersion: fc.jsonValue(),
        eventID: fc.jsonValue(),
        eventTime: fc.jsonValue(),
        eventSource: fc.jsonValue(),
        userIdentity: fc.jsonValue(),
        auditID: fc.jsonValue(),
        verb: fc.jsonValue(),
        uuid: fc.jsonValue(),
        eventType: fc.jsonValue(),
        resources: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    const deep = fc.integer({ min: 1, max: 8000 });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue().map((v) => JSON.stringify(v)),
          record.map((v) => JSON.stringify(v)),
          deep.map((d) => deepText(d, '[', ']')),
          deep.map((d) => deepRecordText('e1', d)),
        ),
        fc.integer({ min: 0, max: envelopes.length - 1 }),
        (value, e) => {
          const text = (envelopes[e] as (v: string) => string)(value);
          const results = collect(Buffer.from(text), 'prop.json');
          for (const r of results) expect(['event', 'skipped', 'dead']).toContain(r.kind);
        },
      ),
      { numRuns: 500 },
    );
  });
});
