// Kubernetes audit collectors on a real Kafka broker: webhook receiver authentication (bearer
// token, client certificates made with openssl at test time), a 1,000-event EventList in one
// request, backpressure instead of drops, and the audit-log tailer (partial lines, rotation,
// truncation, resume from inode + offset, rotation while stopped).
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, BusMessage } from '../../core/bus/types.js';
import { Fields } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { request } from '../../core/http.js';
import { createLogger } from '../../core/log.js';
import { FileCheckpointStore } from '../../ingest/collector/checkpoint.js';
import { type K8sCollectorConfig, parseK8sFields, runK8sCollector } from '../../ingest/k8s/collector.js';
import type { TailCheckpoint } from '../../ingest/k8s/tailer.js';
import { assertKafkaReachable } from '../bus/helpers.js';
import { syntheticAuditEvent } from '../support/k8s-events.js';
import { kafkaHarness } from '../support/kafka-harness.js';

const TOKEN = 'k8s-audit-token-DO-NOT-LOG-0987654321';
const COMMON = { checkpointDir: '.unused', alertsTopic: 'alerts', silenceSeconds: 3600, metrics: null };
const silent = createLogger({ level: 'silent' });

const auditEvent = (n: number) => syntheticAuditEvent(n);
const eventList = (from: number, count: number) =>
  JSON.stringify({
    kind: 'EventList',
    apiVersion: 'audit.k8s.io/v1',
    metadata: {},
    items: Array.from({ length: count }, (_, i) => auditEvent(from + i)),
  });
const lines = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => `${JSON.stringify(auditEvent(from + i))}\n`).join('');
const seqOf = (m: BusMessage) =>
  Number(((JSON.parse(m.value.toString()) as AuditEvent).raw.annotations as Record<string, string>)['glasswatch.test/seq']);

/** CA, server cert for 127.0.0.1, a client cert of that CA, and a client cert of a rogue CA. */
function makeCerts(dir: string): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  for (const ca of ['ca', 'rogue-ca']) {
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '1', '-subj', `/CN=${ca}`);
  }
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  const leaf = (name: string, ca: string, ext: string) => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-extfile',
      ext,
    );
  };
  leaf('server', 'ca', 'server.ext');
  leaf('client', 'ca', 'client.ext');
  leaf('rogue', 'rogue-ca', 'client.ext');
}

describe('Kubernetes audit collectors on Kafka', () => {
  const { open, newTopics, consume, exactly, stops, cleanup } = kafkaHarness('k8s');
  let dir = '';
  const pem = (name: string) => readFileSync(join(dir, name));
  const receiverConfig = (receiver: Record<string, unknown>): K8sCollectorConfig =>
    parseK8sFields(
      Fields.of('test.yaml', 'collectors.k8s', {
        cluster: 'test-cluster',
        receiver: {
          port: 0,
          tls: { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), clientCaFile: join(dir, 'ca.crt') },
          token: TOKEN,
          // Each receiver its own spool: a shared one would replay one test's bodies into the next.
          spool: { dir: join(mkdtempSync(join(tmpdir(), 'gw-k8s-spool-')), 'spool') },
          ...receiver,
        },
      }),
      COMMON,
    );
  const post = (url: string, body: string, auth: { token?: string; client?: 'client' | 'rogue' } = {}) =>
    request({
      method: 'POST',
      url,
      body,
      ca: pem('ca.crt'),
      headers: { 'content-type': 'application/json', ...(auth.token ? { authorization: `Bearer ${auth.token}` } : {}) },
      ...(auth.client ? { cert: pem(`${auth.client}.crt`), key: pem(`${auth.client}.key`) } : {}),
      timeoutMs: 30_000,
    });

  beforeAll(async () => {
    await assertKafkaReachable();
    dir = mkdtempSync(join(tmpdir(), 'gw-k8s-'));
    makeCerts(dir);
  });
  afterAll(async () => {
    await cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses unauthenticated requests; accepts a bearer token or a client certificate; 1,000-event EventList lands on Kafka in per-key order', {
    timeout: 120_000,
  }, async () => {
    const topics = newTopics();
    const bus = open();
    const got = await consume(bus, topics.events);
    const logged: string[] = [];
    const run = await runK8sCollector(receiverConfig({}), {
      bus,
      topics,
      watchdog: null,
      logger: createLogger({ write: (l) => logged.push(l) }),
    });
    stops.push(() => run.stop());
    const url = `${run.receiver!.url}/audit`;
    const small = eventList(0, 3);

    expect((await post(url, small)).status).toBe(401); // no token, no certificate
    expect((await post(url, small, { token: 'wrong-token' })).status).toBe(401);
    expect((await post(url, small, { client: 'rogue' })).status).toBe(401); // certificate of another CA
    expect(logged.filter((l) => l.includes('refused')).length).toBe(3);
    for (const l of logged) expect(l).not.toContain(TOKEN);

    expect((await post(url, eventList(0, 1000), { token: TOKEN })).status).toBe(200);
    expect((await post(url, JSON.stringify(auditEvent(1000)), { client: 'client' })).status).toBe(200); // bare Event
    await exactly(got, 1001, 'events');
    await run.stop();

    const bySeq = got.map(seqOf);
    expect(new Set(bySeq).size).toBe(1001);
    const perKey = new Map<string, number[]>();
    for (const m of got) perKey.set(m.key ?? '', [...(perKey.get(m.key ?? '') ?? []), seqOf(m)]);
    expect(perKey.size).toBe(10);
    for (const list of perKey.values()) expect(list).toEqual([...list].sort((a, b) => a - b));
    const first = JSON.parse(got[0]!.value.toString()) as AuditEvent;
    expect(first.cluster).toBe('test-cluster');
    expect(run.metrics.snapshot('k8s').events).toBe(1001);
    expect(run.metrics.snapshot('k8s').errors.receiving).toBe(3);
  });

  it('Kafka slower than the apiserver: bodies are answered 200 once fsynced in the spool, and everything is delivered once the bus catches up', {
    timeout: 120_000,
  }, async () => {
    const topics = newTopics();
    const kafka = open();
    const got = await consume(kafka, topics.events);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // A bus that holds the first publish: Kafka slower than the apiserver.
    const slow: Bus = {
      kind: 'kafka',
      publish: async (topic, messages) => {
        await gate;
        return kafka.publish(topic, messages);
      },
      subscribe: (o) => kafka.subscribe(o),
      close: async () => {},
    };
    const run = await runK8sCollector(receiverConfig({}), { bus: slow, topics, watchdog: null, logger: silent });
    stops.push(() => run.stop());
    const url = `${run.receiver!.url}/audit`;
    expect((await post(url, eventList(0, 1000), { token: TOKEN })).status).toBe(200);
    expect((await post(url, eventList(1000, 1000), { token: TOKEN })).status).toBe(200);
    expect(run.receiver!.spool!.records).toBe(2);
    release();
    await run.receiver!.drained();
    await exactly(got, 2000, 'events');
    await run.stop();
    expect(new Set(got.map(seqOf)).size).toBe(2000);
  });

  it('tailer: partial lines wait, rotation and truncation are followed, a restart resumes from inode + offset (also across a rotation while stopped)', {
    timeout: 120_000,
  }, async () => {
    const topics = newTopics();
    const bus = open();
    const got = await consume(bus, topics.events);
    const logDir = mkdtempSync(join(tmpdir(), 'gw-k8s-tail-'));
    stops.push(async () => rmSync(logDir, { recursive: true, force: true }));
    const file = join(logDir, 'audit.log');
    const checkpoint = new FileCheckpointStore<TailCheckpoint>(join(logDir, 'cp'), 'k8s-tail');
    const cfg = parseK8sFields(
      Fields.of('test.yaml', 'collectors.k8s', { tail: { file, startAt: 'beginning', pollIntervalMs: 50, chunkBytes: 64 * 1024 } }),
      COMMON,
    );
    const start = () => runK8sCollector(cfg, { bus, topics, watchdog: null, logger: silent, tailCheckpoint: checkpoint });

    writeFileSync(file, lines(0, 300));
    const partial = JSON.stringify(auditEvent(300));
    appendFileSync(file, partial.slice(0, 40)); // half a line: must wait for its newline
    let run = await start();
    await exactly(got, 300, 'events before the newline');
    appendFileSync(file, `${partial.slice(40)}\n${lines(301, 99)}`);
    await exactly(got, 400, 'events after the newline');

    // Rotation: rename + new file; lines appended to the old file just before the rename are read too.
    appendFileSync(file, lines(400, 50));
    renameSync(file, join(logDir, 'audit-2025-06-01T00-00-00.000.log'));
    writeFileSync(file, lines(450, 50));
    await exactly(got, 500, 'events after rotation');

    // Stop mid-file, append while stopped, restart: resumes from the checkpointed offset.
    await run.stop();
    const saved = await checkpoint.load();
    expect(saved?.offset).toBe(Buffer.byteLength(lines(450, 50)));
    appendFileSync(file, lines(500, 100));
    run = await start();
    await exactly(got, 600, 'events after restart');

    // Truncation (copytruncate): read from the start of the same inode.
    truncateSync(file, 0);
    await new Promise((r) => setTimeout(r, 300));
    appendFileSync(file, lines(600, 20));
    await exactly(got, 620, 'events after truncation');

    // Rotation while stopped: the old inode is finished from its rotated name, then the new file.
    await run.stop();
    appendFileSync(file, lines(620, 30));
    renameSync(file, join(logDir, 'audit-2025-06-02T00-00-00.000.log'));
    writeFileSync(file, lines(650, 50));
    run = await start();
    await exactly(got, 700, 'events after rotation while stopped');
    await run.stop();

    const seqs = got.map(seqOf);
    expect(new Set(seqs).size).toBe(700);
    expect(seqs.length).toBe(700);
  });
});
