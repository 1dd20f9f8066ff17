/**
 * Cost of CloudTrail log-file validation (ingest/cloudtrail/validation/): hashing published log
 * objects, checking signed digests, writing `log_validation` rows to chDB, and the report lookup.
 *
 *   npm run bench:log-validation [-- --objects N --records N]   (the runner's smoke size: 200 objects)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createBus } from '../../core/bus/index.js';
import { migrate, openStore } from '../../core/store/index.js';
import { createS3Client } from '../../ingest/cloudtrail/aws.js';
import { PublicKeySource } from '../../ingest/cloudtrail/validation/keys.js';
import { discardingRecorder, StoreValidationRecorder } from '../../ingest/cloudtrail/validation/record.js';
import { LogFileValidator } from '../../ingest/cloudtrail/validation/validator.js';
import { logValidationForEvents } from '../../reports/log-validation.js';
import { DigestWriter, newSigningKey, startPublicKeysStandIn, type WrittenDigest } from '../support/cloudtrail-digests.js';
import { logFileBytes, logFileKey } from '../support/moto-cloudtrail.js';
import { benchSize, figure } from './figures.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const OBJECTS = arg('objects', benchSize({ full: 2000, smoke: 200 }));
const RECORDS = arg('records', 100);
const PER_DIGEST = 50;

const key = newSigningKey();
const api = await startPublicKeysStandIn([key]);
const bus = createBus({ kind: 'memory' });
// Never called on this path (digests are handed over as bytes, the chain head is in memory).
const s3 = createS3Client({
  region: 'us-east-1',
  endpoint: 'http://127.0.0.1:9',
  credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
});
const dir = mkdtempSync(join(tmpdir(), 'gw-bench-logval-'));
const store = openStore({ kind: 'chdb', path: join(dir, 'store') });
await migrate(store);

const files = Array.from({ length: OBJECTS }, (_, i) => {
  const time = new Date(Date.parse('2025-11-20T00:00:00Z') + i * 60_000).toISOString();
  const spec = { account: '111122223333', region: 'us-east-1', time };
  const { bytes, ids } = logFileBytes(`b${i}`, RECORDS, spec);
  return { bucket: 'bench', key: logFileKey(spec), gz: bytes, raw: gunzipSync(bytes), ids };
});
const writer = new DigestWriter(key, {
  bucket: 'bench',
  account: '111122223333',
  region: 'us-east-1',
  trail: 't',
  homeRegion: 'us-east-1',
});
const digests: WrittenDigest[] = [];
for (let i = 0; i < files.length; i += PER_DIGEST) {
  const start = new Date(Date.parse('2025-11-20T00:00:00Z') + (i / PER_DIGEST) * 3_600_000);
  digests.push(writer.write(start, new Date(start.getTime() + 3_600_000), files.slice(i, i + PER_DIGEST)));
}

async function run(recorder: typeof discardingRecorder): Promise<{ hashMs: number; digestMs: number; validator: LogFileValidator }> {
  const validator = new LogFileValidator({
    s3,
    keys: new PublicKeySource({ credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, endpoint: api.url }),
    recorder,
    bus,
    alertsTopic: 'alerts',
    region: 'us-east-1',
  });
  let t = performance.now();
  for (const f of files) await validator.logObject(f.bucket, f.key, f.gz, f.ids);
  await validator.flush();
  const hashMs = performance.now() - t;
  t = performance.now();
  for (const d of digests) {
    const out = await validator.digestObject('bench', d.key, d.body, { signature: d.signature });
    if (out) throw new Error(out.dead);
  }
  const digestMs = performance.now() - t;
  if (validator.counts.valid !== files.length) throw new Error(`valid ${validator.counts.valid} of ${files.length}`);
  return { hashMs, digestMs, validator };
}

const gzBytes = files.reduce((n, f) => n + f.gz.length, 0);
const rawBytes = files.reduce((n, f) => n + f.raw.length, 0);
await run(discardingRecorder); // warm-up (JIT, zlib threadpool)
const bare = await run(discardingRecorder);
const stored = await run(new StoreValidationRecorder(store));
const ids = files.flatMap((f) => f.ids);
const sample = ids.filter((_, i) => i % 10 === 0);
const t = performance.now();
const map = await logValidationForEvents(store, sample);
const lookupMs = performance.now() - t;
if (map.size !== sample.length) throw new Error(`lookup found ${map.size} of ${sample.length}`);

const perS = (n: number, ms: number) => Math.round((n / ms) * 1000);
const result = {
  objects: OBJECTS,
  recordsPerObject: RECORDS,
  avgObjectGzBytes: Math.round(gzBytes / OBJECTS),
  avgObjectRawBytes: Math.round(rawBytes / OBJECTS),
  digests: digests.length,
  objectsPerDigest: PER_DIGEST,
  hashObjectsPerSec: perS(OBJECTS, bare.hashMs),
  digestsPerSec: perS(digests.length, bare.digestMs),
  digestCheckMsEach: +(bare.digestMs / digests.length).toFixed(2),
  withChDbRows: { objectsPerSec: perS(OBJECTS, stored.hashMs + stored.digestMs), rows: OBJECTS * 2 },
  lookup: { events: sample.length, rowsInTable: OBJECTS * 2, ms: Math.round(lookupMs) },
  keyRequests: api.requests.length,
};
console.log(JSON.stringify(result, null, 2));
const p = { objects: OBJECTS, recordsPerObject: RECORDS, objectsPerDigest: PER_DIGEST };
figure('log_validation.objects_hashed', result.hashObjectsPerSec, 'objects/s', p);
figure('log_validation.digest_check', result.digestCheckMsEach, 'ms', p);
figure('log_validation.objects_with_store_rows', result.withChDbRows.objectsPerSec, 'objects/s', p);
figure('log_validation.report_lookup', result.lookup.ms, 'ms', { ...p, events: result.lookup.events });
s3.destroy();
await api.close();
await bus.close?.();
await store.close();
rmSync(dir, { recursive: true, force: true });
