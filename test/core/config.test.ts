import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandEnv, loadConfig, parseConfig } from '../../core/config.js';
import { GlasswatchError, withRetry } from '../../core/errors.js';
import { createLogger, redact } from '../../core/log.js';

describe('config', () => {
  it('defaults to the embedded store and the in-process bus', () => {
    const c = parseConfig({}, null);
    expect(c.store).toEqual({ kind: 'chdb', path: '.glasswatch/store' });
    expect(c.bus.kind).toBe('memory');
    expect(c.topics.events).toBe('glasswatch.events');
    expect(Object.isFrozen(c.store)).toBe(true);
  });

  it('names the file and the field in errors', () => {
    expect(() => parseConfig({ bus: { kind: 'kafka' } }, 'gw.yml')).toThrow('gw.yml: bus.brokers: is required');
    expect(() => parseConfig({ bus: { kind: 'rabbit' } }, 'gw.yml')).toThrow(
      'gw.yml: bus.kind: must be one of memory, kafka, got "rabbit"',
    );
    expect(() => parseConfig({ stroe: {} }, 'gw.yml')).toThrow(/gw.yml: stroe: unknown key/);
    expect(() => parseConfig({ store: { retentionDays: 0 } }, 'gw.yml')).toThrow(
      'gw.yml: store.retentionDays: must be between 1 and 20000, got 0',
    );
    expect(() => parseConfig({ store: { path: 'a', url: 'http://x' } }, 'gw.yml')).toThrow(/not both/);
  });

  it('reads secrets from the environment and refuses unset ones', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config file's own ${NAME} syntax, not a template
    const input = { store: { url: 'https://ch.example.com:8443', password: '${CH_PASSWORD}' } };
    const c = parseConfig(expandEnv(input, null, '', { CH_PASSWORD: 's3cret' }), null);
    expect(c.store).toMatchObject({ kind: 'clickhouse', password: 's3cret', database: 'glasswatch' });
    expect(() => expandEnv(input, 'gw.yml', '', {})).toThrow('gw.yml: store.password: environment variable CH_PASSWORD is not set');
  });

  it('--store overrides the configured store', () => {
    const c = parseConfig({ store: { url: 'https://ch.example.com' } }, null, { storePath: '/tmp/x' });
    expect(c.store).toEqual({ kind: 'chdb', path: '/tmp/x' });
  });

  it('rejects duplicate keys in the YAML file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-cfg-'));
    const file = join(dir, 'gw.yml');
    writeFileSync(file, 'bus:\n  kind: memory\nbus:\n  kind: kafka\n');
    expect(() => loadConfig(file)).toThrow(/gw.yml: not valid YAML: Map keys must be unique at line 3/);
    expect(() => loadConfig(join(dir, 'missing.yml'))).toThrow(/cannot read config file/);
  });
});

describe('logger', () => {
  it('never writes secrets', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l) });
    log.warn('okta hook refused', { header: 'authorization', authorization: 'SSWS 00abc', nested: { password: 'p', user: 'u' } });
    expect(lines[0]).not.toContain('00abc');
    expect(lines[0]).not.toContain('"p"');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      msg: 'okta hook refused',
      authorization: '[redacted]',
      nested: { password: '[redacted]', user: 'u' },
    });
    expect(redact({ list: [{ token: 't' }] })).toEqual({ list: [{ token: '[redacted]' }] });
  });
});

describe('retry', () => {
  it('retries retriable errors with backoff and gives up on the others', async () => {
    let calls = 0;
    const value = await withRetry(
      async () => {
        calls++;
        if (calls < 3) throw new GlasswatchError('BG_TEST', 'flaky', { retriable: true });
        return 'ok';
      },
      { initialDelayMs: 1 },
    );
    expect(value).toBe('ok');
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw new GlasswatchError('BG_TEST', 'fatal');
      }),
    ).rejects.toThrow('fatal');
    expect(calls).toBe(1);
  });
});
