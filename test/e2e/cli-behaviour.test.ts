import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { main } from '../../cli/main.js';
import { lines, runCli } from '../support/cli.js';

/**
 * Issue 10, items 2 and 8: the command line behaves the same on every command (one usage line
 * and exit 2 for an unknown option, -h/--help everywhere, --from/--to everywhere, exit codes in
 * the help), and a time without a zone is an error naming the flag or field.
 */
const demo = new URL('../../demo', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gw-cli-'));
const store = join(dir, 'store');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(async () => {
  expect(await main(['replay', join(demo, 'data'), '--store', store, '--out', 'none', '--quiet'])).toBe(3);
});

const COMMANDS: [string[], string][] = [
  [['replay', 'x'], 'replay'],
  [['report', 'run', 'breakglass-activity'], 'report'],
  [['hunt', 'rules/breakglass'], 'hunt'],
  [['store', 'status'], 'store'],
  [['start'], 'start'],
  [['collect', 'okta'], 'collect'],
  [['demo'], 'demo'],
  [['tickets', 'validate', 'x'], 'tickets validate'],
  [['rules', 'validate', 'x'], 'rules validate'],
];

describe('unknown options', () => {
  for (const [args, help] of COMMANDS) {
    it(`glasswatch ${args.join(' ')} --bogus is one line and exit 2`, async () => {
      const r = await runCli([...args, '--bogus']);
      expect(r.code).toBe(2);
      const out = lines(r.stderr);
      expect(out).toHaveLength(1);
      expect(out[0]).toBe(`glasswatch: unknown option --bogus; see glasswatch ${help} --help`);
      expect(r.stdout).toBe('');
    });
  }
});

describe('help', () => {
  const helps: string[][] = [
    ['replay'],
    ['report'],
    ['report', 'run'],
    ['report', 'send'],
    ['hunt'],
    ['store'],
    ['store', 'status'],
    ['start'],
    ['collect'],
    ['collect', 'okta'],
    ['demo'],
    ['tickets'],
    ['tickets', 'check'],
    ['rules', 'validate'],
    ['rules', 'match'],
  ];
  for (const args of helps) {
    for (const flag of ['-h', '--help']) {
      it(`glasswatch ${args.join(' ')} ${flag} prints help and exits 0`, async () => {
        let out = '';
        const write = process.stderr.write.bind(process.stderr);
        const writeOut = process.stdout.write.bind(process.stdout);
        process.stderr.write = ((chunk: string) => {
          out += chunk;
          return true;
        }) as typeof process.stderr.write;
        process.stdout.write = ((chunk: string) => {
          out += chunk;
          return true;
        }) as typeof process.stdout.write;
        try {
          expect(await main([...args, flag])).toBe(0);
        } finally {
          process.stderr.write = write;
          process.stdout.write = writeOut;
        }
        expect(out).toMatch(/usage|glasswatch /i);
      });
    }
  }

  it('every command help lists the exit codes', async () => {
    for (const args of [['replay'], ['report'], ['hunt'], ['store'], ['start'], ['collect'], ['demo']]) {
      const r = await runCli([...args, '--help']);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(/Exit status:[\s\S]*\b2\b.*usage/);
    }
  });

  it('glasswatch with no arguments prints the help, with the exit codes', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Usage: glasswatch <command>');
    expect(r.stderr).toMatch(/Exit status:/);
  });
});

describe('one time vocabulary, zones required', () => {
  it('report send takes recipients with --mail-to; --to is only the end of the period', async () => {
    const r = await runCli(['report', 'send', 'breakglass-activity', '--from', '2026-11-20', '--to', 'soc@example.com', '--store', store]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--to "soc@example.com" has no time zone or is not ISO 8601/);
    const until = await runCli(['report', 'run', 'breakglass-activity', '--from', '2026-11-20', '--until', '2026-11-21', '--store', store]);
    expect(lines(until.stderr)).toEqual(['glasswatch: unknown option --until; see glasswatch report --help']);
  });

  for (const [args, flag] of [
    [['hunt', 'rules/breakglass', '--from', '2026-11-20T00:00:00', '--to', '2026-11-21T00:00:00Z'], '--from'],
    [['hunt', 'rules/breakglass', '--from', '2026-11-20T00:00:00Z', '--to', '2026-11-21T00:00:00'], '--to'],
    [['report', 'run', 'breakglass-activity', '--from', '2026-11-20T00:00', '--to', '2026-11-21'], '--from'],
  ] as const) {
    it(`a zone-less ${flag} is an error naming ${flag} (${args[0]})`, async () => {
      const r = await runCli([...args, '--store', store]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${flag} "`);
      expect(r.stderr).toMatch(/has no time zone/);
    });
  }

  it('a zone-less time in the config is an error naming the field', async () => {
    const config = join(dir, 'zone-less.yml');
    writeFileSync(
      config,
      stringify({
        store: { path: join(dir, 'start-store') },
        identities: [{ id: 'okta-admin', source: 'okta', match: { 'actor.alternateId': 'admin@example.com' } }],
        collectors: {
          checkpointDir: join(dir, 'cp'),
          okta: { orgUrl: 'https://example.okta.com', token: 't', since: '2026-11-20T00:00:00' },
        },
      }),
    );
    const r = await runCli(['start', '--config', config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/collectors\.okta\.since: .*zone/);
    expect(existsSync(join(dir, 'start-store'))).toBe(false);
  });
});

describe('hunt --format and --out', () => {
  const period = ['--from', '2026-11-20T00:00:00Z', '--to', '2026-11-21T00:00:00Z', '--store', store];
  it('writes json, jsonl and csv to --out, the same matches in each', async () => {
    const jsonl = join(dir, 'hunt.jsonl');
    const json = join(dir, 'hunt.json');
    const csv = join(dir, 'hunt.csv');
    expect((await runCli(['hunt', 'rules/breakglass', ...period, '--out', jsonl])).code).toBe(0);
    expect((await runCli(['hunt', 'rules/breakglass', ...period, '--format', 'json', '--out', json])).code).toBe(0);
    expect((await runCli(['hunt', 'rules/breakglass', ...period, '--format', 'csv', '--out', csv])).code).toBe(0);
    const fromLines = readFileSync(jsonl, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const fromArray = JSON.parse(readFileSync(json, 'utf8')) as unknown[];
    expect(fromLines.length).toBeGreaterThan(0);
    expect(fromArray).toEqual(fromLines);
    const rows = readFileSync(csv, 'utf8').trim().split('\r\n');
    expect(rows[0]).toBe('rule,correlation,title,author,eventId,source,time,group,value,events');
    expect(rows).toHaveLength(fromLines.length + 1);
  });

  it('rejects an unknown --format with exit 2', async () => {
    const r = await runCli(['hunt', 'rules/breakglass', ...period, '--format', 'xml']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual(['glasswatch: --format must be one of jsonl, json, csv, got "xml"; see glasswatch hunt --help']);
  });
});

describe('long replays', () => {
  it('show progress through normalize and the stages on stderr (a line every interval when not a terminal)', async () => {
    const r = await runCli(['replay', join(demo, 'data'), '--out', 'none', '--store', join(dir, 'progress-store')], {
      env: { GLASSWATCH_PROGRESS_MS: '0' },
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^normalize: [\d,]+ events, \d+% of [\d,]+ bytes, [\d,]+ events\/s$/m);
    expect(r.stderr).toMatch(/^store: [\d,]+\/[\d,]+ events, [\d,]+ events\/s$/m);
  });

  it('a short replay prints no progress lines at the default interval', async () => {
    const r = await runCli(['replay', join(demo, 'data', 'okta'), '--out', 'none']);
    expect(r.stderr).not.toMatch(/^normalize:/m);
  });

  it('caps the per-session summary and points to --alerts-out for the rest', async () => {
    // 35 sign-ins of the emergency admin, each its own Okta session from its own address: 35 sessions.
    const page = JSON.parse(readFileSync(join(demo, 'data', 'okta', 'system-log-2026-11-20.json'), 'utf8')) as Record<
      string,
      Record<string, unknown>
    >[];
    const base = page.find((e) => e.actor?.alternateId === 'emergency-admin@example.com' && e.outcome?.result === 'SUCCESS');
    if (!base) throw new Error('no emergency admin event in the demo');
    const many = Array.from({ length: 35 }, (_, i) => ({
      ...base,
      uuid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      published: new Date(Date.parse('2026-11-20T00:00:00Z') + i * 3_600_000 * 0.6).toISOString(),
      authenticationContext: { ...base.authenticationContext, externalSessionId: `session-${i}` },
      client: { ...base.client, ipAddress: `198.51.100.${i + 1}` },
    }));
    const input = join(dir, 'many-sessions.json');
    writeFileSync(input, JSON.stringify(many));
    const config = join(dir, 'many.yml');
    writeFileSync(
      config,
      stringify({
        identities: [
          {
            id: 'okta-emergency-admin',
            source: 'okta',
            match: { 'actor.alternateId': 'emergency-admin@example.com' },
            revocation: { mode: 'manual' },
          },
        ],
      }),
    );
    const alerts = join(dir, 'many-alerts.jsonl');
    const r = await runCli(['replay', input, '--config', config, '--alerts-out', alerts, '--out', 'none']);
    expect(r.code).toBe(0);
    const sessionLines = lines(r.stderr).filter((l) => /^\s+(UN)?AUTHORIZED\s/.test(l));
    expect(sessionLines).toHaveLength(20);
    expect(r.stderr).toMatch(new RegExp(`… and 15 more sessions, see ${alerts.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
  });
});
