import { once } from 'node:events';
import { createGzip, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { GlasswatchError } from '../../core/errors.js';
import {
  DEFAULT_MAX_BODY_DECOMPRESSED_BYTES,
  DEFAULT_MAX_OBJECT_DECOMPRESSED_BYTES,
  gunzipBounded,
  jsonErrorOffset,
} from '../../ingest/decode.js';
import { normalizeDocument, reasonWithoutLocation, toIsoMillis } from '../../ingest/index.js';
import { deads, events, fixture, run, skips } from './helpers.js';

describe('decoding by content', () => {
  it('yields nothing for empty and whitespace-only files', () => {
    expect(run('mixed/empty.json')).toEqual([]);
    expect(run('mixed/whitespace.json')).toEqual([]);
    expect(run('gz', undefined, gzipSync(Buffer.alloc(0)))).toEqual([]);
  });

  it('dead-letters a truncated pretty document once, with the byte offset, never throwing', () => {
    const bytes = fixture('mixed/truncated-document.json');
    const results = run('mixed/truncated-document.json');
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ kind: 'dead', source: null, origin: { line: null, index: null } });
    expect(deads(results)[0]?.reason).toMatch(new RegExp(`^malformed JSON at byte ${bytes.length}: `));
    expect(deads(results)[0]?.text).toBe(bytes.toString('utf8'));
  });

  it('reports the offset of a syntax error in the middle of a document', () => {
    const reason = deads(run('x.json', undefined, Buffer.from('{"Records": [{"a": 1} {"b": 2}]}')))[0]?.reason;
    expect(reason).toMatch(/^malformed JSON at byte 22: /);
    expect(jsonErrorOffset('{"a":tru}')).toBe(5);
    expect(jsonErrorOffset('[1, 2] x')).toBe(7);
    expect(jsonErrorOffset('{"a": [1, {"b": null}], "c": "d"}')).toBe(-1);
  });

  it('salvages the whole lines of a truncated gzip and reports the truncation', () => {
    const gz = gzipSync(fixture('cloudtrail/panther-lines.ndjson'));
    const results = run('cut.gz', undefined, gz.subarray(0, gz.length - 12));
    expect(results[0]).toMatchObject({ kind: 'dead', text: '' });
    expect(deads(results)[0]?.reason).toMatch(/^gzip: unexpected end of file after \d+ compressed bytes/);
    expect(events(results).length).toBeGreaterThan(0);
  });

  it('dead-letters a corrupt gzip without throwing', () => {
    const gz = Buffer.from(gzipSync(fixture('cloudtrail/s3-delivery.json')));
    gz[gz.length - 6] = (gz[gz.length - 6] ?? 0) ^ 0xff; // break the CRC trailer
    const results = run('bad.json.gz', undefined, gz);
    expect(deads(results)[0]?.reason).toMatch(/^gzip: /);
  });

  it('routes each JSON line to its own source and keeps going after bad lines', () => {
    const results = run('mixed/mixed-sources.ndjson');
    expect(results.map((r) => (r.kind === 'event' ? r.event.source : r.kind))).toEqual([
      'cloudtrail',
      'okta',
      'k8s',
      'dead',
      'dead',
      'dead',
    ]);
    expect(deads(results).map((d) => d.reason)).toEqual([
      'unrecognised record: no CloudTrail, Okta or Kubernetes audit shape (keys: alpha) at line 4',
      expect.stringMatching(/^malformed JSON: .* at line 5$/),
      'unrecognised record: a JSON number, not an object at line 6',
    ]);
  });

  it('names the keys of an unrecognised document', () => {
    expect(deads(run('mixed/unrecognised.json'))[0]).toMatchObject({
      reason: 'unrecognised record: no CloudTrail, Okta or Kubernetes audit shape (keys: alpha, beta, gamma)',
      text: fixture('mixed/unrecognised.json').toString('utf8'),
    });
  });

  it('restricts to one source when asked, naming the missing field for shapeless records', () => {
    const results = run('mixed/mixed-sources.ndjson', { source: 'okta' });
    expect(results.map((r) => r.kind)).toEqual(['dead', 'event', 'dead', 'dead', 'dead', 'dead']);
    expect(deads(results)[0]?.reason).toBe('cloudtrail record, but this input only accepts okta at line 1');
    expect(deads(results)[2]?.reason).toBe('okta: uuid is missing at line 4');
  });

  it('strips the location for grouping', () => {
    expect(reasonWithoutLocation('cloudtrail: eventTime is not a timestamp ("...") at line 3, [0].data.Records[1]')).toBe(
      'cloudtrail: eventTime is not a timestamp ("...")',
    );
    expect(reasonWithoutLocation('k8s: auditID is missing at items[2]')).toBe('k8s: auditID is missing');
  });
});

describe('normalizeDocument (one parsed body)', () => {
  it('normalizes a webhook EventList body with the given origin', () => {
    const body = JSON.parse(fixture('k8s/eventlist.json').toString('utf8'));
    const results = normalizeDocument(body, { file: 'webhook:/k8s-audit', line: null, index: null }, { cluster: 'c1' });
    expect(results.map((r) => r.kind)).toEqual(['event', 'event', 'dead']);
    expect(events(results)[0]?.cluster).toBe('c1');
    expect(results[0]?.origin).toEqual({ file: 'webhook:/k8s-audit', line: null, index: 0, path: 'items[0]' });
  });

  it('serializes the body as dead-letter text when the body itself is the bad record', () => {
    const results = normalizeDocument({ nope: true }, { file: 'okta:/api/v1/logs', line: null, index: null });
    expect(results).toMatchObject([{ kind: 'dead', text: '{"nope":true}' }]);
  });

  it('skips an EventBridge non-CloudTrail event', () => {
    const body = JSON.parse(fixture('cloudtrail/eventbridge-guardduty.json').toString('utf8'));
    expect(skips(normalizeDocument(body, { file: 'eventbridge', line: null, index: null }))).toHaveLength(1);
  });
});

describe('toIsoMillis', () => {
  it.each([
    ['2023-07-10T11:42:24Z', '2023-07-10T11:42:24.000Z'],
    ['2018-10-25T13:58:49.730588Z', '2018-10-25T13:58:49.730Z'],
    ['2021-01-01 01:01:01.000000000', '2021-01-01T01:01:01.000Z'],
    ['2022-03-22 14:21:53.225', '2022-03-22T14:21:53.225Z'],
    ['2021-11-01 21:22:28.54', '2021-11-01T21:22:28.540Z'],
    ['2021-05-20 15:53:47Z', '2021-05-20T15:53:47.000Z'],
    ['2024-02-29T23:30:00.999+02:00', '2024-02-29T21:30:00.999Z'],
    ['2024-01-01T00:30:00-0130', '2024-01-01T02:00:00.000Z'],
  ])('%s → %s', (input, expected) => {
    expect(toIsoMillis(input)).toBe(expected);
  });

  it.each([
    42,
    null,
    '...',
    'redacted',
    '2017-09-31T22:23:07.777Z',
    '2019-01-00T00:00:00Z',
    '2023-02-29T00:00:00Z',
    '0001-01-01T00:00:00Z',
    '2024-01-01T24:00:00Z',
  ])('rejects %s', (input) => {
    expect(toIsoMillis(input)).toBeNull();
  });
});

describe('gunzipBounded (streaming, with an output budget)', () => {
  /** A gzip of `size` zero bytes, compressed in a stream so the test never holds the inflated bytes. */
  async function zeroBomb(size: number): Promise<Buffer> {
    const chunk = Buffer.alloc(1024 * 1024);
    const gzip = createGzip({ level: 9 });
    const parts: Buffer[] = [];
    gzip.on('data', (b: Buffer) => parts.push(b));
    const done = new Promise((resolve) => gzip.on('end', resolve));
    for (let left = size; left > 0; left -= chunk.length) {
      if (!gzip.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) await once(gzip, 'drain');
    }
    gzip.end();
    await done;
    return Buffer.concat(parts);
  }

  it('inflates a valid gzip within its budget', async () => {
    const plain = fixture('cloudtrail/s3-delivery.json');
    await expect(gunzipBounded(gzipSync(plain), { maxBytes: plain.length, what: 's3://b/k' })).resolves.toEqual(plain);
  });

  it('rejects a bomb as soon as it inflates past the budget, naming what, without blocking the event loop', async () => {
    const bomb = await zeroBomb(64 * 1024 * 1024);
    expect(bomb.length).toBeLessThan(128 * 1024);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const err = await gunzipBounded(bomb, { maxBytes: 8 * 1024 * 1024, what: 's3://trail/bomb.json.gz' }).catch((e: unknown) => e);
    clearInterval(timer);
    expect(err).toBeInstanceOf(GlasswatchError);
    expect(err).toMatchObject({
      code: 'INPUT_TOO_LARGE',
      stage: 'receiving',
      retriable: false,
      context: { what: 's3://trail/bomb.json.gz', maxBytes: 8 * 1024 * 1024 },
    });
    expect((err as Error).message).toBe('s3://trail/bomb.json.gz inflates beyond 8388608 bytes (maxDecompressedBytes)');
    expect(ticks).toBeGreaterThan(0); // timers ran while it inflated
  });

  it('rejects a corrupt or truncated gzip with a non-retriable coded error', async () => {
    const gz = Buffer.from(gzipSync(fixture('cloudtrail/s3-delivery.json')));
    const cut = gz.subarray(0, gz.length - 12);
    gz[gz.length - 6] = (gz[gz.length - 6] ?? 0) ^ 0xff;
    for (const bad of [gz, cut, Buffer.from([0x1f, 0x8b, 1, 2, 3])]) {
      const err = await gunzipBounded(bad, { maxBytes: 1 << 20, what: 'body of request r1' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'INPUT_CORRUPT', retriable: false, stage: 'receiving', context: { what: 'body of request r1' } });
      expect((err as Error).message).toMatch(/^body of request r1: gzip: /);
    }
  });

  it('exports the default budgets', () => {
    expect(DEFAULT_MAX_OBJECT_DECOMPRESSED_BYTES).toBe(256 * 1024 * 1024);
    expect(DEFAULT_MAX_BODY_DECOMPRESSED_BYTES).toBe(64 * 1024 * 1024);
  });
});

describe('JSON lines decoded one line at a time', () => {
  it('keeps non-ASCII text, CRLF endings, a BOM and line numbers exactly as the whole-text path did', () => {
    const lines = [
      '{"eventVersion":"1.09","eventID":"e1","eventTime":"2026-11-20T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"GetUser","userIdentity":{"userName":"renée"}}',
      '',
      '{"broken": "señal"',
      '  {"eventVersion":"1.09","eventID":"e2","eventTime":"2026-11-20T10:00:01Z","eventSource":"iam.amazonaws.com","eventName":"GetUser"}  ',
    ];
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(lines.join('\r\n'))]);
    const results = run('x.ndjson', undefined, bytes);
    expect(events(results).map((e) => [e.id, e.actor.name])).toEqual([
      ['e1', 'renée'],
      ['e2', null],
    ]);
    expect(results.map((r) => r.origin.line)).toEqual([1, 3, 4]);
    expect(deads(results)[0]?.text).toBe('{"broken": "señal"');
  });

  it('still reads a file whose first line is broken as JSON lines (the whole-text path)', () => {
    const bytes = Buffer.from(
      '{"a":\n{"eventVersion":"1.09","eventID":"e1","eventTime":"2026-11-20T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"GetUser"}\n',
    );
    expect(run('x.ndjson', undefined, bytes).map((r) => r.kind)).toEqual(['dead', 'event']);
  });
});
