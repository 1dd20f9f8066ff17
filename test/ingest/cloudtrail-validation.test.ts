// CloudTrail log-file validation on real parts: moto S3 (objects, digests with their signature in
// the S3 metadata), a real Kafka broker (events, dead letters, pipeline.tamper alerts), chDB
// (log_validation), and a ListPublicKeys stand-in that checks the documented request. Digests are
// written and signed as CloudTrail does (test/support/cloudtrail-digests.ts).
import { gzipSync } from 'node:zlib';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEAD_LETTER_HEADERS } from '../../core/bus/types.js';
import { DigestWriter, newSigningKey } from '../support/cloudtrail-digests.js';
import { ACCOUNT, at, REGION, startValidationEnv, type ValidationEnv, validationRig } from '../support/cloudtrail-validation-rig.js';
import { putObject } from '../support/moto-cloudtrail.js';

const HOUR = 3_600_000;

describe('CloudTrail log-file validation: S3 poller (moto + Kafka + chDB + ListPublicKeys stand-in)', () => {
  let env: ValidationEnv;
  beforeAll(async () => {
    env = await startValidationEnv();
  });
  afterAll(async () => {
    await env?.stop();
  });
  const rig = (bucket: string, options?: Parameters<typeof validationRig>[2]) => validationRig(env, bucket, options);

  it('a genuine set of log objects and chained digests validates: every object valid, no alert, one key request', async () => {
    const r = await rig('ctv-genuine');
    const a = [await r.log('gen-a', 5, '2025-11-20T10:05:00Z'), await r.log('gen-b', 3, '2025-11-20T10:35:00Z')];
    const b = [await r.log('gen-c', 4, '2025-11-20T11:10:00Z')];
    await r.put(r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), a));
    await r.put(r.writer.write(at('2025-11-20T11:00:00Z'), at('2025-11-20T12:00:00Z'), b));
    // An empty digest (no activity that hour) is chained too.
    await r.put(r.writer.write(at('2025-11-20T12:00:00Z'), at('2025-11-20T13:00:00Z'), []));
    const before = env.keysApi.requests.length;

    const summary = await r.poller.pollOnce();
    expect(summary).toMatchObject({ objects: 3, events: 12, deadLetters: 0, failedPrefixes: 0 });
    expect(r.validator.counts).toMatchObject({ objects: 3, valid: 3, mismatch: 0, digests: 3, badDigests: 0, chainBreaks: 0, alerts: 0 });
    expect(await r.statuses([...a, ...b])).toEqual(['valid', 'valid', 'valid']);
    expect(env.keysApi.refused).toEqual([]);
    expect(env.keysApi.requests.slice(before)).toEqual([
      { region: REGION, start: Date.parse('2025-11-20T10:00:00Z') / 1000, end: Date.parse('2025-11-20T11:00:00Z') / 1000 },
    ]);

    // Hours later, nothing is pending any more: the sweep finds nothing to flag.
    r.clock.now += 5 * HOUR;
    await r.poller.pollOnce();
    expect(r.validator.counts.missingDigest).toBe(0);
    expect(r.validator.alerts).toEqual([]);
  });

  it('a log object modified after delivery is a mismatch with a pipeline.tamper alert; its events still flow', async () => {
    const r = await rig('ctv-mismatch');
    const good = await r.log('mm-a', 4, '2025-11-20T10:05:00Z');
    const victim = await r.log('mm-b', 4, '2025-11-20T10:20:00Z');
    await r.put(r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [good, victim]));
    // Someone with write access rewrites one record of the delivered file (same key, still valid gzip).
    const doc = JSON.parse(victim.raw.toString()) as { Records: Record<string, unknown>[] };
    (doc.Records[0] as Record<string, unknown>).eventName = 'ListBuckets';
    await putObject(env.s3, r.bucket, victim.key, gzipSync(JSON.stringify(doc)));

    expect(await r.poller.pollOnce()).toMatchObject({ objects: 2, events: 8 });
    expect(await r.statuses([good, victim])).toEqual(['valid', 'mismatch']);
    const alerts = await r.readAlerts(1);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ type: 'pipeline.tamper', severity: 'high', source: 'cloudtrail' });
    expect(alerts[0]?.reason).toContain(victim.key);
    expect(alerts[0]?.reason).toContain('SHA-256');
  });

  it('a digest deleted from the middle: the chain gap is flagged at once, its objects become missing_digest after the window', async () => {
    const r = await rig('ctv-gap');
    const h10 = await r.log('gap-a', 3, '2025-11-20T10:05:00Z');
    const h11 = await r.log('gap-b', 3, '2025-11-20T11:05:00Z');
    const h12 = await r.log('gap-c', 3, '2025-11-20T12:05:00Z');
    await r.put(r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [h10]));
    r.writer.write(at('2025-11-20T11:00:00Z'), at('2025-11-20T12:00:00Z'), [h11]); // written by CloudTrail, then deleted
    await r.put(r.writer.write(at('2025-11-20T12:00:00Z'), at('2025-11-20T13:00:00Z'), [h12]));

    await r.poller.pollOnce();
    expect(await r.statuses([h10, h11, h12])).toEqual(['valid', 'pending', 'valid']);
    expect(r.validator.counts.chainBreaks).toBe(1);
    expect(r.validator.alerts.map((a) => a.reason)).toEqual([
      expect.stringMatching(/digest chain broken: the previous digest .*20251120T120000Z\.json\.gz is gone/),
    ]);

    // Within the window nothing more; after it, the object no digest listed is missing_digest, alerted.
    r.clock.now += 60 * 60_000;
    await r.poller.pollOnce();
    expect(await r.statuses([h11])).toEqual(['pending']);
    r.clock.now += 61 * 60_000;
    await r.poller.pollOnce();
    expect(await r.statuses([h10, h11, h12])).toEqual(['valid', 'missing_digest', 'valid']);
    const alerts = await r.readAlerts(2);
    expect(alerts.map((a) => a.type)).toEqual(['pipeline.tamper', 'pipeline.tamper']);
    expect(alerts.find((a) => a.reason?.includes(h11.key))?.reason).toContain('no digest');
  });

  it('log objects deleted before the collector read them: the digest proves they existed (mismatch, pipeline.tamper)', async () => {
    const r = await rig('ctv-deleted');
    const early = await r.log('del-a', 2, '2025-11-20T10:05:00Z');
    const kept = await r.log('del-b', 2, '2025-11-20T10:10:00Z');
    const last = await r.log('del-c', 2, '2025-11-20T10:20:00Z');
    await r.put(r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [early, kept, last]));
    for (const f of [early, last]) await env.s3.send(new DeleteObjectCommand({ Bucket: r.bucket, Key: f.key }));

    expect(await r.poller.pollOnce()).toMatchObject({ objects: 1, events: 2 });
    // Before the checkpoint: known at once to be gone. After it: the poller may just be behind, so it waits a window.
    const esc = (k: string) => k.replaceAll('.', '\\.');
    const deleted = (k: string) =>
      new RegExp(`^s3://ctv-deleted/${esc(k)}: log object listed by digest .*_20251120T110000Z\\.json\\.gz was deleted$`);
    expect(r.validator.alerts.map((a) => a.reason)).toEqual([expect.stringMatching(deleted(early.key))]);
    expect(await r.statuses([kept])).toEqual(['valid']);
    r.clock.now += 121 * 60_000;
    await r.poller.pollOnce();
    expect(r.validator.alerts.map((a) => a.reason)).toEqual([
      expect.stringMatching(deleted(early.key)),
      expect.stringMatching(deleted(last.key)),
    ]);
    expect(r.validator.counts).toMatchObject({ valid: 1, mismatch: 2, missingDigest: 0 });
    const rows = await (
      await env.store.client.query({
        query:
          "SELECT object_key, status, reason FROM log_validation WHERE bucket = {b:String} AND status = 'mismatch' ORDER BY object_key",
        query_params: { b: r.bucket },
        format: 'JSONEachRow',
      })
    ).json();
    expect(rows).toEqual([
      { object_key: early.key, status: 'mismatch', reason: 'listed by its digest but deleted from the bucket' },
      { object_key: last.key, status: 'mismatch', reason: 'listed by its digest but deleted from the bucket' },
    ]);
  });

  it('a validly signed digest whose previousDigestSignature does not match the digest before it breaks the chain', async () => {
    const r = await rig('ctv-link');
    const h10 = await r.log('link-a', 2, '2025-11-20T10:05:00Z');
    const h11 = await r.log('link-b', 2, '2025-11-20T11:05:00Z');
    await r.put(r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [h10]));
    await r.put(r.writer.write(at('2025-11-20T11:00:00Z'), at('2025-11-20T12:00:00Z'), [h11], { previousSignature: 'ab'.repeat(256) }));

    await r.poller.pollOnce();
    expect(r.validator.counts).toMatchObject({ chainBreaks: 1, badDigests: 0, valid: 2 });
    expect(r.validator.alerts[0]?.reason).toMatch(/previousDigestSignature \/ previousDigestHashValue do not match the previous digest/);
  });

  it('a bad signature, a foreign key and hostile digest files are dead letters with the reason; the collector goes on', async () => {
    const r = await rig('ctv-hostile', { maxDigestBytes: 64 * 1024 });
    const h10 = await r.log('bad-a', 2, '2025-11-20T10:05:00Z');
    const h11 = await r.log('bad-b', 2, '2025-11-20T11:05:00Z');
    const forged = await r.log('bad-c', 2, '2025-11-20T12:05:00Z');
    await r.put(r.writer.write(at('2025-11-20T10:00:00Z'), at('2025-11-20T11:00:00Z'), [h10], { badSignature: true }));
    await r.put(r.writer.write(at('2025-11-20T11:00:00Z'), at('2025-11-20T12:00:00Z'), [h11]));
    // Signed by a key CloudTrail never published.
    const rogue = new DigestWriter(newSigningKey(), {
      bucket: r.bucket,
      account: ACCOUNT,
      region: REGION,
      trail: 'gw-trail',
      homeRegion: REGION,
    });
    await r.put(rogue.write(at('2025-11-20T12:00:00Z'), at('2025-11-20T13:00:00Z'), [forged]));
    const folder = `AWSLogs/${ACCOUNT}/CloudTrail-Digest/${REGION}/2025/11/20/`;
    const hostile = [
      { name: 'notgzip', body: Buffer.from('not json at all') },
      { name: 'bomb', body: gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20)) },
      { name: 'fields', body: gzipSync(JSON.stringify({ logFiles: 'x' })) },
      { name: 'nosig', body: gzipSync(JSON.stringify({ digestPublicKeyFingerprint: 'aa', logFiles: [] })) },
    ];
    for (const h of hostile)
      await putObject(
        env.s3,
        r.bucket,
        `${folder}${ACCOUNT}_CloudTrail-Digest_${REGION}_gw-trail_${REGION}_20251120T14${h.name}.json.gz`,
        h.body,
      );

    const summary = await r.poller.pollOnce();
    expect(summary.failedPrefixes).toBe(0);
    // A bus hiccup on the shared broker ends a digest pass where it stood (retried next poll, as it should be).
    const last = `${folder}${ACCOUNT}_CloudTrail-Digest_${REGION}_gw-trail_${REGION}_20251120T14notgzip.json.gz`;
    const digestFolder = `AWSLogs/${ACCOUNT}/CloudTrail-Digest/${REGION}/`;
    for (let i = 0; i < 3 && r.poller.checkpoint?.after[digestFolder] !== last; i++) await r.poller.pollOnce();
    expect(r.poller.checkpoint?.after[digestFolder]).toBe(last);
    const reasons = [...new Set(r.validator.alerts.map((a) => a.reason))];
    expect(reasons).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/20251120T110000Z\.json\.gz: digest file rejected: signature verification failed$/),
        expect.stringMatching(/public key not found for fingerprint/),
        expect.stringMatching(/signature verification failed: no hex x-amz-meta-signature/),
        expect.stringMatching(/invalid format: not JSON/),
        expect.stringMatching(/invalid format: .*64 KiB|invalid format: .*65536|invalid format/),
        expect.stringMatching(/field digestPublicKeyFingerprint is missing/),
      ]),
    );
    expect(reasons).toHaveLength(6);
    // The genuine digest in between still validates its object; the others' objects wait, then go missing.
    expect(await r.statuses([h10, h11, forged])).toEqual(['pending', 'valid', 'pending']);
    r.clock.now += 3 * HOUR;
    await r.poller.pollOnce();
    expect(await r.statuses([h10, h11, forged])).toEqual(['missing_digest', 'valid', 'missing_digest']);
    // Every rejected digest was checkpointed past: later polls read none of them again.
    const read = r.validator.counts.digests;
    await r.poller.pollOnce();
    expect(r.validator.counts.digests).toBe(read);
    // Each is a dead letter naming its key and why.
    const letters = await r.read(r.topics.deadLetters, 6);
    const why = [...new Set(letters.map((m) => String(m.headers[DEAD_LETTER_HEADERS.reason])))];
    expect(why).toHaveLength(6);
    expect(why.every((w) => /^CloudTrail digest s3:\/\/ctv-hostile\/AWSLogs\/.*CloudTrail-Digest.* rejected: /.test(w))).toBe(true);
    expect(why.filter((w) => w.includes('20251120T14bomb'))).toEqual([expect.stringMatching(/invalid format: .*65536/)]);
  });
});
