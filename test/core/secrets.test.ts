import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fail } from '../../cli/output.js';
import { loadConfig, parseConfig } from '../../core/config.js';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import { createLogger, redactText } from '../../core/log.js';
import { openStore } from '../../core/store/client.js';
import { smtpTransport } from '../../detectors/build.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-secrets-'));

/** Everything an operator would see of an error: its message, its JSON, and what the CLI prints. */
function errorText(err: unknown): string {
  const printed: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    printed.push(String(chunk));
    return true;
  });
  try {
    fail(err);
  } finally {
    vi.restoreAllMocks();
  }
  const json = err instanceof GlasswatchError ? JSON.stringify(err.toJSON()) : '';
  return [errorMessage(err), json, ...printed].join('\n');
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

afterEach(() => vi.restoreAllMocks());

describe('config errors never echo a secret', () => {
  it('a numeric store password', () => {
    const err = thrown(() => parseConfig({ store: { url: 'https://ch.example.com:8443', password: 31415926 } }, 'gw.yml'));
    const text = errorText(err);
    expect(text).toContain('gw.yml: store.password');
    expect(text).not.toContain('31415926');
  });

  it('a store.url with user:password that is not a URL (config and store open)', () => {
    const url = 'http://alice:Sup3r S3cret-pw@[ch.example:8123';
    const fromConfig = thrown(() => parseConfig({ store: { url } }, 'gw.yml'));
    expect(errorText(fromConfig)).toContain('store.url');
    expect(errorText(fromConfig)).not.toContain('Sup3r S3cret-pw');
    const fromOpen = thrown(() => openStore({ kind: 'clickhouse', url }));
    expect(errorText(fromOpen)).not.toContain('Sup3r S3cret-pw');
  });

  it('a store.url with user:password, made invalid by another field', () => {
    const err = thrown(() =>
      parseConfig({ store: { url: 'https://alice:an0ther-secret@ch.example.com', database: 42 }, bus: { kind: 'rabbit' } }, 'gw.yml'),
    );
    expect(errorText(err)).not.toContain('an0ther-secret');
  });

  it('secret lists (rotation: previousSecrets) are registered too', () => {
    parseConfig({ tickets: { secret: 'current-hmac-1111', previousSecrets: ['older-hmac-2222'] } }, 'gw.yml');
    expect(redactText('old key older-hmac-2222 and current-hmac-1111')).toBe('old key [redacted] and [redacted]');
  });

  it('numeric secrets in any section: bus.sasl, smtp', () => {
    const sasl = thrown(() =>
      parseConfig(
        { bus: { kind: 'kafka', brokers: ['k:9092'], sasl: { mechanism: 'plain', username: 'u', password: 987654321 } } },
        'gw.yml',
      ),
    );
    expect(errorText(sasl)).toContain('bus.sasl.password');
    expect(errorText(sasl)).not.toContain('987654321');
    const smtp = thrown(() => smtpTransport(parseConfig({ smtp: { host: '127.0.0.1', user: 'reports', password: 24681357 } }, 'gw.yml')));
    expect(errorText(smtp)).toContain('smtp.password');
    expect(errorText(smtp)).not.toContain('24681357');
  });

  it('a YAML syntax error on a line holding a secret does not quote the line', () => {
    const file = join(dir, 'bad.yml');
    writeFileSync(file, 'store:\n  url: https://ch.example.com\n  password: hunter2-s3cret: oops\n');
    const err = thrown(() => loadConfig(file));
    const text = errorText(err);
    expect(text).toMatch(/bad\.yml: not valid YAML: .*line 3/);
    expect(text).not.toContain('hunter2-s3cret');
  });

  it('a secret of a valid config is redacted from later errors and log lines', () => {
    const config = parseConfig(
      { store: { url: 'https://bob:url-pw-7731@ch.example.com' }, tickets: { secret: 'tickets-hmac-secret-42' } },
      'gw.yml',
    );
    expect(config.store.kind).toBe('clickhouse');
    const err = new GlasswatchError('BG_TEST', 'signature check with tickets-hmac-secret-42 failed for url-pw-7731', {
      hint: 'rotate tickets-hmac-secret-42',
    });
    const text = errorText(err);
    expect(text).not.toContain('tickets-hmac-secret-42');
    expect(text).not.toContain('url-pw-7731');
    const lines: string[] = [];
    createLogger({ write: (l) => lines.push(l) }).warn('bad delivery tickets-hmac-secret-42', { detail: 'x url-pw-7731 y' });
    expect(lines.join('\n')).not.toMatch(/tickets-hmac-secret-42|url-pw-7731/);
  });
});

describe('log lines never carry a secret', () => {
  it('URL userinfo, bearer tokens, password= pairs, in the message, fields and errors', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l), bindings: { endpoint: 'https://svc:bind-pw-1@h.example' } });
    log.error('cannot reach http://bob:pw-9988@ch.example.com:8123/?query=1', {
      url: 'https://u:tok-abc123@h.example/x',
      error: new Error('401 for Authorization: Bearer eyJhbGciOi.payload-xyz.sig rejected'),
      detail: 'connect string password=hunter22; token: tkn-5566',
      nested: { list: ['SSWS 00abcdefOktaToken'] },
    });
    const line = lines.join('\n');
    for (const secret of ['bind-pw-1', 'pw-9988', 'tok-abc123', 'eyJhbGciOi.payload-xyz.sig', 'hunter22', 'tkn-5566', '00abcdefOktaToken'])
      expect(line, secret).not.toContain(secret);
    // what is not secret stays, so the line still helps
    expect(line).toContain('ch.example.com:8123');
    expect(line).toContain('h.example/x');
    expect(line).toContain('401 for Authorization');
    expect(JSON.parse(lines[0]!)).toHaveProperty('level', 'error');
  });

  it('a deeply nested field is cut, never written unredacted', () => {
    const lines: string[] = [];
    let deep: Record<string, unknown> = { password: 'deep-pw-4242', url: 'https://u:deep-url-pw@h.example' };
    for (let i = 0; i < 10; i++) deep = { next: deep };
    createLogger({ write: (l) => lines.push(l) }).info('deep', { deep });
    expect(lines[0]).not.toMatch(/deep-pw-4242|deep-url-pw/);
    expect(lines[0]).toContain('[nested too deep]');
  });

  it('redactText keeps ordinary text', () => {
    expect(redactText('s3://bucket/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/x.json.gz')).toBe(
      's3://bucket/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/x.json.gz',
    );
    expect(redactText('user alice@example.com from 203.0.113.9')).toBe('user alice@example.com from 203.0.113.9');
    expect(redactText('https://acme.okta.com answered 401 for bob@example.com')).toBe(
      'https://acme.okta.com answered 401 for bob@example.com',
    );
  });

  it('redaction stays linear on hostile text (safe regex)', () => {
    const inputs = [
      `http://${'a:'.repeat(200_000)}`,
      `password${' '.repeat(200_000)}x`,
      `Bearer ${'a'.repeat(500_000)}`,
      'http://'.repeat(100_000),
      `${'token='.repeat(100_000)}`,
    ];
    const started = Date.now();
    for (const text of inputs) redactText(text);
    expect(Date.now() - started).toBeLessThan(1500);
  });
});
