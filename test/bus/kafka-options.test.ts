// KafkaBus configuration and failure modes that need no broker.
import { describe, expect, it } from 'vitest';
import { createBus, KafkaBus, type KafkaBusOptions, resolveKafkaBusOptions } from '../../core/bus/index.js';
import { GlasswatchError } from '../../core/errors.js';
import { createLogger, silentLogger } from '../../core/log.js';

function configErrorField(options: KafkaBusOptions): unknown {
  try {
    resolveKafkaBusOptions(options);
  } catch (err) {
    expect(err).toBeInstanceOf(GlasswatchError);
    expect((err as GlasswatchError).code).toBe('BG_BUS_CONFIG_INVALID');
    expect((err as GlasswatchError).stage).toBe('config');
    return (err as GlasswatchError).context.field;
  }
  return undefined;
}

describe('KafkaBus options', () => {
  it('fills the documented defaults and freezes the result', () => {
    const o = resolveKafkaBusOptions({ brokers: ['127.0.0.1:9092'], logger: silentLogger });
    expect(o).toMatchObject({
      clientId: 'glasswatch',
      numPartitions: 3,
      createTopics: true,
      sessionTimeoutMs: 30_000,
      heartbeatIntervalMs: 3000,
      maxWaitTimeMs: 500,
    });
    expect(o.replicationFactor).toBeUndefined();
    expect(Object.isFrozen(o)).toBe(true);
  });

  it.each<[string, Partial<KafkaBusOptions>]>([
    ['brokers', { brokers: [] }],
    ['brokers', { brokers: ['localhost'] }],
    ['brokers', { brokers: ['127.0.0.1:99999'] }],
    ['clientId', { clientId: ' ' }],
    ['numPartitions', { numPartitions: 0 }],
    ['replicationFactor', { replicationFactor: 1.5 }],
    ['sasl', { sasl: { mechanism: 'kerberos' } as unknown as KafkaBusOptions['sasl'] }],
    ['ssl', { ssl: 'yes' as unknown as boolean }],
    ['heartbeatIntervalMs', { heartbeatIntervalMs: 20_000, sessionTimeoutMs: 30_000 }],
  ])('rejects a bad %s, naming it', (field, bad) => {
    expect(configErrorField({ brokers: ['127.0.0.1:9092'], ...bad })).toBe(field);
  });

  it('passes TLS and SASL through', () => {
    const o = resolveKafkaBusOptions({
      brokers: ['kafka.example:9093'],
      ssl: { servername: 'kafka.example' },
      sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
    });
    expect(o.ssl).toEqual({ servername: 'kafka.example' });
    expect(o.sasl?.mechanism).toBe('scram-sha-512');
  });

  it('createBus builds either implementation', async () => {
    expect(createBus({ kind: 'memory' }).kind).toBe('memory');
    const kafka = createBus({ kind: 'kafka', brokers: ['127.0.0.1:9092'], numPartitions: 6, logger: silentLogger });
    expect(kafka).toBeInstanceOf(KafkaBus);
    expect((kafka as KafkaBus).options.numPartitions).toBe(6);
    await kafka.close();
    expect(() => createBus({ kind: 'nats' } as never)).toThrow(/'kind'/);
  });
});

describe('KafkaBus without a broker', () => {
  it('fails fast and clearly instead of hanging, and routes kafkajs logs to our logger', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', write: (line) => lines.push(line) });
    const bus = new KafkaBus({ brokers: ['127.0.0.1:1'], retries: 1, connectionTimeoutMs: 500, logger });
    const started = Date.now();
    await expect(bus.publish('t', [{ key: 'k', value: 'v' }])).rejects.toMatchObject({ code: 'BG_BUS_CONNECT_FAILED', retriable: true });
    await expect(bus.subscribe({ topics: ['t'], groupId: 'g', handler: async () => {} })).rejects.toBeInstanceOf(GlasswatchError);
    expect(Date.now() - started).toBeLessThan(15_000);
    await bus.close();
    await expect(bus.publish('t', [])).rejects.toMatchObject({ code: 'BG_BUS_CLOSED' });
    const routed = lines.map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(routed.length).toBeGreaterThan(0);
    expect(routed.every((r) => r.msg.startsWith('kafkajs: ') && (r.level === 'warn' || r.level === 'error'))).toBe(true);
  });
});
