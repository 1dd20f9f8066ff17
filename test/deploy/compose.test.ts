import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { COMMAND_NAMES } from '../../cli/main.js';
import { MemoryBus } from '../../core/bus/memory.js';
import { expandEnv, parseConfig } from '../../core/config.js';
import { silentLogger } from '../../core/log.js';
import { buildDetector } from '../../detectors/build.js';
import { approvalSlaOf } from '../../detectors/tickets/requests.js';
import { parseCloudTrailSection } from '../../ingest/cloudtrail/collector.js';
import { collectorsFields, parseCollectorsCommon } from '../../ingest/collector/options.js';
import { parseK8sSection } from '../../ingest/k8s/collector.js';
import { parseOktaSection } from '../../ingest/okta/collector.js';
import { parseReportsConfig, parseSchedules } from '../../reports/options.js';

/**
 * docker-compose.yml cannot run here (no Docker engine), so it is validated: pinned images,
 * real CLI commands, a config that passes every component's validation, every secret the
 * config needs passed through by compose and listed in deploy/example.env, hosts that are
 * compose services and ports that are published.
 */
const root = new URL('../../', import.meta.url).pathname;
type Service = {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, unknown>;
};
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };
const services = compose.services;
const glasswatch = Object.entries(services).filter(([, s]) => s.build !== undefined);

describe('docker-compose.yml', () => {
  it('pins every image and builds glasswatch from the Dockerfile on Node 20', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.image) expect(s.image, name).toMatch(/^[\w./-]+:(?!latest$)[\w.-]+$/);
    }
    expect(glasswatch.length).toBeGreaterThan(0);
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM node:20-/m);
    // runtime files the image must carry exist in the repo
    for (const m of dockerfile.matchAll(/COPY --from=build \/app\/(\S+) /g)) {
      if (!['node_modules', 'dist'].includes(m[1]!)) expect(existsSync(join(root, m[1]!)), m[1]).toBe(true);
    }
  });

  it('runs real glasswatch commands with a mounted config from the repo', () => {
    for (const [name, s] of glasswatch) {
      expect(COMMAND_NAMES, name).toContain(s.command?.[0]);
      const config = s.command![s.command!.indexOf('--config') + 1];
      const mount = s.volumes?.find((v) => v.split(':')[1] === config);
      expect(mount, `${name}: ${config} is mounted`).toBeDefined();
      expect(existsSync(join(root, mount!.split(':')[0]!))).toBe(true);
    }
  });

  it('passes every component validation, with every secret passed by compose and listed in example.env', () => {
    const [, service] = glasswatch[0]!;
    const text = readFileSync(join(root, 'deploy/glasswatch.yml'), 'utf8');
    const active = text
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('#'))
      .join('\n');
    const needed = [...new Set([...active.matchAll(/\$\{([A-Z_][A-Z0-9_]*)\}/g)].map((m) => m[1]!))];
    const example = readFileSync(join(root, 'deploy/example.env'), 'utf8');
    for (const v of needed) {
      expect(Object.keys(service.environment ?? {}), `compose passes ${v}`).toContain(v);
      expect(example, `example.env lists ${v}`).toMatch(new RegExp(`^${v}=`, 'm'));
    }
    // TLS material as deploy/make-dev-certs.sh makes it, in a temp folder.
    const tls = mkdtempSync(join(tmpdir(), 'gw-compose-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=test',
        '-keyout',
        join(tls, 'tls.key'),
        '-out',
        join(tls, 'tls.crt'),
      ],
      { stdio: 'ignore' },
    );
    writeFileSync(join(tls, 'ca.crt'), readFileSync(join(tls, 'tls.crt')));
    // The values of deploy/example.env, with the blanks (secrets) filled in.
    const examples = Object.fromEntries(
      example
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const env = Object.fromEntries(needed.map((v) => [v, examples[v] || `test-${v.toLowerCase()}`]));
    const raw = expandEnv(parse(text.replaceAll('/etc/glasswatch/tls', tls)), 'deploy/glasswatch.yml', '', env);
    const config = parseConfig(raw, 'deploy/glasswatch.yml');
    expect(config.bus.kind).toBe('kafka');
    expect(config.store.kind).toBe('clickhouse');
    parseCollectorsCommon(collectorsFields(config));
    parseOktaSection(config);
    parseK8sSection(config);
    parseCloudTrailSection(config);
    parseReportsConfig(config);
    expect(parseSchedules(config).length).toBeGreaterThan(0);
    expect(approvalSlaOf(config)).toBe(30);
    return buildDetector({ config, store: null, bus: new MemoryBus(), log: silentLogger, clock: 'live' }).then((d) => {
      expect(d.registry.identities.length).toBe(4);
      // hosts the config talks to are compose services
      const hosts = [
        ...config.bus.brokers.map((b) => b.split(':')[0]),
        new URL((config.store as { url: string }).url).hostname,
        (raw as { smtp: { host: string } }).smtp.host,
      ];
      for (const h of hosts) expect(Object.keys(services), h).toContain(h);
      // listening ports are published
      const published = (service.ports ?? []).map((p) => p.split(':')[1]);
      for (const port of ['8443', '9443', '8470', '9464']) expect(published).toContain(port);
      expect(text).toMatch(new RegExp(`port: ${8443}`));
    });
  });
});
