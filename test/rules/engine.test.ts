import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { detectSource, readEvents, rulesCommand } from '../../cli/rules.js';
import { loadRules, SigmaEngine, type SourceName } from '../../rules/engine/index.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/sigma/', import.meta.url));
const RULES = `${FIXTURES}rules`;
const EVENTS = `${FIXTURES}events/mixed.ndjson`;

const events = readEvents(EVENTS, (m) => {
  throw new Error(m);
});

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await rulesCommand(
    argv,
    (t) => (out += t),
    (t) => (err += t),
  );
  return { code, out, err };
}

describe('engine over fixture rules and events', () => {
  const loaded = loadRules([RULES]);
  const engine = new SigmaEngine(loaded);
  const matchesOf = (i: number) => {
    const raw = events[i]?.raw as Record<string, unknown>;
    return engine.match(detectSource(raw) as SourceName, raw).map((m) => m.title);
  };

  it('loads the fixture rules, including a multi-document correlation file', () => {
    expect(loaded.rejected).toEqual([]);
    expect(loaded.rules).toHaveLength(5);
    expect(loaded.correlations).toHaveLength(1);
  });
  it('matches the positive events and not the negative ones', () => {
    expect(matchesOf(0)).toEqual(['Break-glass role assumed']);
    expect(matchesOf(1)).toEqual([]); // errorCode present: filtered
    expect(matchesOf(2)).toEqual(['Root console login']);
    expect(matchesOf(6)).toEqual(['Okta admin role granted to a user']);
    expect(matchesOf(7)).toEqual([]);
    expect(matchesOf(8)).toEqual(['Kubernetes request by a system:masters member']);
    expect(matchesOf(9)).toEqual([]);
  });
  it('carries id, title, level, tags and author on every match (DRL attribution)', () => {
    const raw = events[0]?.raw as Record<string, unknown>;
    expect(engine.match('cloudtrail', raw)[0]).toEqual({
      kind: 'rule',
      rule: '3f0e8f2c-6d1a-4b55-9a51-6c1f5a0b0001',
      id: '3f0e8f2c-6d1a-4b55-9a51-6c1f5a0b0001',
      title: 'Break-glass role assumed',
      level: 'high',
      tags: ['attack.privilege-escalation', 'attack.t1078.004'],
      author: 'glasswatch tests',
      condition: 0,
      output: true,
    });
  });
  it('routes by logsource: rules of another product never see the event', () => {
    const okta = events[6]?.raw;
    expect(engine.match('cloudtrail', okta)).toEqual([]);
    expect(engine.routeStats()).toMatchObject({ cloudtrail: { rules: 3 }, okta: { rules: 1 }, k8s: { rules: 1 } });
  });
  it('fires the correlation on the third failed login from one IP (event time from the records)', () => {
    const fresh = new SigmaEngine(loaded);
    const fired = events.flatMap((e) => {
      const source = detectSource(e.raw);
      return source ? fresh.evaluate(source, e.raw as Record<string, unknown>).correlations : [];
    });
    expect(fired).toMatchObject([
      { title: 'Console login brute force', group: { sourceIPAddress: '203.0.113.7' }, value: 3, author: 'glasswatch tests' },
    ]);
  });
  it('detects sources by content', () => {
    expect(events.map((e) => detectSource(e.raw))).toEqual([...Array(6).fill('cloudtrail'), 'okta', 'okta', 'k8s', 'k8s', null]);
  });
});

describe('candidate index', () => {
  it('gives the same matches as evaluating every rule (differential)', () => {
    const text = readFileSync(`${RULES}/aws_root_console_login.yml`, 'utf8');
    const extra = `title: keyword rule
logsource: {product: aws}
detection:
    kw: ['*breakglass*']
    condition: kw
---
title: negated rule
logsource: {product: aws, service: cloudtrail}
detection:
    sel: {eventName: ConsoleLogin}
    condition: not sel
---
title: list rule
logsource: {product: aws, service: cloudtrail}
detection:
    a: {eventName: [GetSecretValue, ConsoleLogin]}
    b: {eventName: 'Get*'}
    condition: a or b
`;
    const loaded = loadRules([{ text, file: 'a.yml' }, { text: extra, file: 'b.yml' }, RULES]);
    const indexed = new SigmaEngine(loaded);
    const plain = new SigmaEngine(loaded, { index: false });
    expect(indexed.routeStats().cloudtrail?.unindexed).toBeLessThan(plain.routeStats().cloudtrail?.unindexed ?? 0);
    const names = ['ConsoleLogin', 'consolelogin', 'GetSecretValue', 'GetUser', 'AssumeRole', 'Other'];
    for (let i = 0; i < 300; i++) {
      const raw = {
        eventSource: 'x',
        eventName: i % 7 === 0 ? [names[i % 6], 'AssumeRole'] : names[i % names.length],
        userIdentity: { type: i % 3 ? 'Root' : 'IAMUser' },
        responseElements: { ConsoleLogin: i % 2 ? 'Success' : 'Failure' },
        note: i % 5 === 0 ? 'BreakGlass' : 'x',
      };
      expect(indexed.match('cloudtrail', raw)).toEqual(plain.match('cloudtrail', raw));
    }
  });
});

describe('CLI: rules validate', () => {
  it('reports counts and exits 0 when everything loads', async () => {
    const r = await run(['validate', RULES]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('files: 5, loaded documents: 6 (rules 5, correlations 1, filters 0), rejected: 0');
  });
  it('lists each rejection with file, rule and path, a histogram, and exits 1', async () => {
    const r = await run(['validate', RULES, `${FIXTURES}bad`]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /rejected \[BG_RULES_UNKNOWN_MODIFIER\] .*unknown_modifier\.yml: rule 3f0e8f2c-6d1a-4b55-9a51-6c1f5a0b0102: detection\.selection\.eventName\|foo: unknown modifier 'foo'/,
    );
    expect(r.out).toContain('BG_RULES_DEPRECATED_SYNTAX');
    expect(r.out).toMatch(
      /rejections by reason:\n\s+2 {2}BG_RULES_UNKNOWN_MODIFIER: unknown modifier …\n\s+1 {2}BG_RULES_DEPRECATED_SYNTAX/,
    );
  });
  it('exits 0 with --allow-errors, 2 on usage errors', async () => {
    expect((await run(['validate', `${FIXTURES}bad`, '--allow-errors'])).code).toBe(0);
    expect((await run(['validate'])).code).toBe(2);
    expect((await run(['nope'])).code).toBe(2);
  });
});

describe('CLI: rules match', () => {
  it('prints one JSON line per match with rule, title, author, eventId and line', async () => {
    const r = await run(['match', RULES, '--input', EVENTS]);
    expect(r.code).toBe(0);
    const lines = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.rule ?? l.correlation, l.eventId, l.line])).toEqual([
      ['3f0e8f2c-6d1a-4b55-9a51-6c1f5a0b0001', 'ct-0', 1],
      ['3f0e8f2c-6d1a-4b55-9a51-6c1f5a0b0002', 'ct-2', 3],
      ['3f0e8f2c-6d1a-4b55-9a51-6c1f5a0b0006', 'ct-5', 6],
      ['3f0e8f2c-6d1a-4b55-9a51-6c1f5a0b0003', 'okta-1', 7],
      ['3f0e8f2c-6d1a-4b55-9a51-6c1f5a0b0004', 'k8s-1', 9],
    ]);
    expect(lines[0]).toMatchObject({ title: 'Break-glass role assumed', author: 'glasswatch tests' });
    expect(r.err).toContain('events: 11 (1 not evaluated: no recognisable source record)');
  });
  it('reads {"Records": [...]} files with line null', async () => {
    const r = await run(['match', RULES, '--input', `${FIXTURES}events/records.json`]);
    const lines = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.eventId, l.line])).toEqual([
      ['ct-0', null],
      ['ct-2', null],
    ]);
  });
});
