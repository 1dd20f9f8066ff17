/**
 * The log-file validation test rig on real parts: a moto S3/SQS server, a chDB store with the
 * schema, a digest-signing key served by the ListPublicKeys stand-in, Kafka buses; per bucket a
 * validating S3 poller, a digest writer and a clock the test moves.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { KafkaBus } from '../../core/bus/kafka.js';
import type { BusMessage } from '../../core/bus/types.js';
import { createLogger } from '../../core/log.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { type S3Checkpoint, S3Poller } from '../../ingest/cloudtrail/s3.js';
import { PublicKeySource } from '../../ingest/cloudtrail/validation/keys.js';
import { StoreValidationRecorder } from '../../ingest/cloudtrail/validation/record.js';
import { LogFileValidator } from '../../ingest/cloudtrail/validation/validator.js';
import { MemoryCheckpointStore } from '../../ingest/collector/checkpoint.js';
import { EventPublisher } from '../../ingest/collector/publisher.js';
import { logValidationForEvents } from '../../reports/log-validation.js';
import { assertKafkaReachable, deleteTopics, kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';
import {
  type DigestedFile,
  DigestWriter,
  newSigningKey,
  type PublicKeysStandIn,
  putDigest,
  type SigningKey,
  startPublicKeysStandIn,
  type TrailSpec,
} from './cloudtrail-digests.js';
import { type MotoServer, startMoto } from './moto.js';
import { createBucket, logFileBytes, logFileKey, motoClients, putObject } from './moto-cloudtrail.js';

export const quiet = createLogger({ level: 'error', bindings: { component: 'ct-validation-test' } });
export const ACCOUNT = '111122223333';
export const REGION = 'us-east-1';
export const at = (iso: string) => new Date(iso);

export interface ValidationEnv {
  moto: MotoServer;
  s3: S3Client;
  sqs: SQSClient;
  store: Store;
  dir: string;
  key: SigningKey;
  keysApi: PublicKeysStandIn;
  buses: KafkaBus[];
  topics: string[];
  stop(): Promise<void>;
}

export async function startValidationEnv(): Promise<ValidationEnv> {
  await assertKafkaReachable();
  const dir = mkdtempSync(join(tmpdir(), 'gw-ct-validation-'));
  const moto = await startMoto();
  const { s3, sqs } = motoClients(moto.endpoint);
  const store = openStore({ kind: 'chdb', path: join(dir, 'store') });
  await migrate(store);
  const key = newSigningKey();
  // A second, older key of the region: the digest's fingerprint picks the right one.
  const keysApi = await startPublicKeysStandIn([newSigningKey(new Date('2019-01-01T00:00:00Z')), key]);
  const env: ValidationEnv = {
    moto,
    s3,
    sqs,
    store,
    dir,
    key,
    keysApi,
    buses: [],
    topics: [],
    stop: async () => {
      await Promise.allSettled(env.buses.map((b) => b.close()));
      await deleteTopics(env.topics);
      await keysApi.close();
      s3.destroy();
      sqs.destroy();
      await moto.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

/** A bucket with a trail, a poller that validates, a clock the test moves. */
export async function validationRig(
  env: ValidationEnv,
  bucket: string,
  options: { maxDigestBytes?: number; searchDigests?: boolean } = {},
) {
  const { s3, store, key, keysApi, buses, topics } = env;
  await createBucket(s3, bucket);
  const trail: TrailSpec = { bucket, account: ACCOUNT, region: REGION, trail: 'gw-trail', homeRegion: REGION };
  const bus = new KafkaBus(kafkaTestOptions());
  buses.push(bus);
  const t = { events: uniqueName('ctv-events'), deadLetters: uniqueName('ctv-dlq'), alerts: uniqueName('ctv-alerts') };
  topics.push(t.events, t.deadLetters, t.alerts);
  const clock = { now: Date.now() + 1000 };
  const validator = new LogFileValidator({
    s3,
    keys: new PublicKeySource({ credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, endpoint: keysApi.url }),
    recorder: new StoreValidationRecorder(store, quiet),
    bus,
    alertsTopic: t.alerts,
    region: REGION,
    windowMinutes: 120,
    ...(options.maxDigestBytes ? { maxDigestBytes: options.maxDigestBytes } : {}),
    searchDigests: options.searchDigests ?? false,
    logger: quiet,
    now: () => clock.now,
  });
  const publisher = new EventPublisher({ bus, collector: 'cloudtrail', topics: t, alertsTopic: t.alerts, logger: quiet });
  const poller = new S3Poller({
    s3,
    bucket,
    publisher,
    checkpoints: new MemoryCheckpointStore<S3Checkpoint>(),
    startDate: '2025-11-20',
    settleSeconds: 0,
    validator,
    validationExplicit: true,
    logger: quiet,
    now: () => clock.now,
  });
  const writer = new DigestWriter(key, trail);
  /** Uploads a log file of `count` records delivered at `time`. */
  const log = async (tag: string, count: number, time: string): Promise<DigestedFile & { ids: string[] }> => {
    const spec = { account: ACCOUNT, region: REGION, time };
    const k = logFileKey(spec);
    const { bytes, ids } = logFileBytes(tag, count, spec);
    await putObject(s3, bucket, k, bytes);
    return { bucket, key: k, gz: bytes, raw: gunzipSync(bytes), ids };
  };
  const statuses = async (files: { ids: string[] }[]) => {
    const map = await logValidationForEvents(
      store,
      files.flatMap((f) => f.ids),
    );
    return files.map((f) => map.get(f.ids[0] as string)?.status ?? 'none');
  };
  const readAlerts = async (expected: number): Promise<Alert[]> =>
    (await read(t.alerts, expected)).map((m) => JSON.parse(m.value.toString()) as Alert);
  const read = async (topic: string, expected: number): Promise<BusMessage[]> => {
    const got: BusMessage[] = [];
    const sub = await bus.subscribe({
      topics: [topic],
      groupId: uniqueName('ctv-reader'),
      fromBeginning: true,
      handler: async (m) => void got.push(m),
    });
    try {
      await waitFor(() => got.length >= expected, `${expected} messages on ${topic} (have ${got.length})`);
    } finally {
      await sub.stop();
    }
    return got;
  };
  return {
    topics: t,
    read,
    bus,
    bucket,
    clock,
    validator,
    poller,
    writer,
    log,
    statuses,
    readAlerts,
    put: (d: Parameters<typeof putDigest>[2]) => putDigest(s3, bucket, d),
  };
}
