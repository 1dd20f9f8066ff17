import { describe, expect, it } from 'vitest';
import { SigmaEngine } from '../../rules/engine/index.js';
import { load } from './helpers.js';

const rule = (name: string, eventName: string) => `title: ${name}
name: ${name}
logsource: {product: aws, service: cloudtrail}
detection:
    sel: {eventName: ${eventName}}
    condition: sel
`;
const correlation = (body: string, head = '') =>
  `title: corr\nid: 9d3f0c9a-0000-4000-8000-00000000c0rr\n`.replace('c0rr', 'c0de') +
  `author: Carol\n${head}correlation:\n${body.replace(/^/gm, '    ')}\n`;

function engineOf(...docs: string[]): SigmaEngine {
  const loaded = load(docs.join('---\n'));
  expect(loaded.rejected).toEqual([]);
  return new SigmaEngine(loaded);
}

const MIN = 60_000;
const T0 = Date.parse('2024-05-01T00:00:00Z');
/** Feeds events at minute offsets; returns the minute offsets at which a correlation fired. */
function feed(engine: SigmaEngine, events: [minute: number, event: Record<string, unknown>][]) {
  const fired: { at: number; value: number; group: Record<string, unknown>; title: string }[] = [];
  for (const [minute, event] of events) {
    for (const c of engine.evaluate('cloudtrail', event, T0 + minute * MIN).correlations)
      fired.push({ at: minute, value: c.value, group: c.group, title: c.title });
  }
  return fired;
}
const login = (user: string, extra: Record<string, unknown> = {}) => ({ eventName: 'ConsoleLogin', user, ...extra });

describe('event_count', () => {
  const engine = () =>
    engineOf(
      rule('failed', 'ConsoleLogin'),
      correlation('type: event_count\nrules: [failed]\ngroup-by: [user]\ntimespan: 10m\ncondition: {gte: 3}'),
    );
  it('fires once when the count in a sliding window reaches the threshold, per group', () => {
    const fired = feed(engine(), [
      [0, login('a')],
      [1, login('b')],
      [2, login('a')],
      [3, login('a')],
      [4, login('a')],
      [5, login('b')],
    ]);
    expect(fired).toEqual([{ at: 3, value: 3, group: { user: 'a' }, title: 'corr' }]);
  });
  it('uses sliding windows, not fixed buckets', () => {
    // 9, 11, 12: no 10-minute bucket boundary split stops them
    expect(
      feed(engine(), [
        [9, login('a')],
        [11, login('a')],
        [12, login('a')],
      ]).map((f) => f.at),
    ).toEqual([12]);
  });
  it('events outside the timespan do not count', () => {
    expect(
      feed(engine(), [
        [0, login('a')],
        [5, login('a')],
        [11, login('a')],
        [14, login('a')],
      ]).map((f) => f.at),
    ).toEqual([14]);
    expect(
      feed(engine(), [
        [0, login('a')],
        [11, login('a')],
        [22, login('a')],
      ]),
    ).toEqual([]);
  });
  it('suppresses standalone output of referenced rules unless generate is true', () => {
    expect(engine().evaluate('cloudtrail', login('a'), T0).matches).toEqual([]);
    const gen = engineOf(
      rule('failed', 'ConsoleLogin'),
      correlation('type: event_count\nrules: [failed]\ntimespan: 10m\ncondition: {gte: 3}', 'generate: true\n'),
    );
    expect(gen.evaluate('cloudtrail', login('a'), T0).matches).toHaveLength(1);
    expect(gen.match('cloudtrail', login('a'))[0]?.output).toBe(true);
  });
  it('an absent group-by field groups as null; no group-by is one global group', () => {
    const e = engineOf(
      rule('failed', 'ConsoleLogin'),
      correlation('type: event_count\nrules: [failed]\ntimespan: 10m\ncondition: {gt: 1}'),
    );
    expect(
      feed(e, [
        [0, login('a')],
        [1, login('b')],
      ]),
    ).toMatchObject([{ at: 1, group: {} }]);
    const n = feed(engine(), [
      [0, { eventName: 'ConsoleLogin' }],
      [1, { eventName: 'ConsoleLogin' }],
      [2, { eventName: 'ConsoleLogin' }],
    ]);
    expect(n).toMatchObject([{ group: { user: null } }]);
  });
  it('is driven by event time: replaying the same events gives the same result', () => {
    const events: [number, Record<string, unknown>][] = [
      [0, login('a')],
      [3, login('a')],
      [4, login('b')],
      [6, login('a')],
    ];
    expect(feed(engine(), events)).toEqual(feed(engine(), events));
  });
  it('takes the event time from the event itself by default', () => {
    const e = engine();
    const out = [0, 1, 2].flatMap(
      (m) => e.evaluate('cloudtrail', login('a', { eventTime: new Date(T0 + m * MIN).toISOString() })).correlations,
    );
    expect(out).toHaveLength(1);
  });
});

describe('condition operators and ranges', () => {
  it.each([
    ['{gt: 2}', [3]],
    ['{gte: 2}', [2]],
    ['{eq: 2}', [2]],
    ['{lt: 2}', [1]],
    ['{lte: 2}', [1]],
    ['{neq: 1}', [2]],
    ['{gt: 1, lte: 3}', [2]],
  ])('%s', (cond, firesAt) => {
    const e = engineOf(rule('r', 'X'), correlation(`type: event_count\nrules: [r]\ntimespan: 1h\ncondition: ${cond}`));
    expect(
      feed(e, [
        [1, { eventName: 'X' }],
        [2, { eventName: 'X' }],
        [3, { eventName: 'X' }],
      ])
        .map((f) => f.at)
        .slice(0, 1),
    ).toEqual(firesAt);
  });
});

describe('value_count', () => {
  it('counts distinct values (tuples for several fields) per group', () => {
    const e = engineOf(
      rule('r', 'X'),
      correlation('type: value_count\nrules: [r]\ngroup-by: [user]\ntimespan: 1h\ncondition: {field: ip, gte: 3}'),
    );
    const ev = (ip: string) => ({ eventName: 'X', user: 'u', ip });
    expect(
      feed(e, [
        [0, ev('1')],
        [1, ev('1')],
        [2, ev('2')],
        [3, ev('2')],
        [4, ev('3')],
      ]),
    ).toMatchObject([{ at: 4, value: 3 }]);
    const tuple = engineOf(rule('r', 'X'), correlation('type: value_count\nrules: [r]\ntimespan: 1h\ncondition: {field: [a, b], gte: 2}'));
    expect(
      feed(tuple, [
        [0, { eventName: 'X', a: 1, b: 1 }],
        [1, { eventName: 'X', a: 1, b: 1 }],
        [2, { eventName: 'X', a: 1, b: 2 }],
      ]),
    ).toMatchObject([{ at: 2 }]);
  });
});

describe('value_sum, value_avg, value_percentile', () => {
  const ev = (bytes: unknown) => ({ eventName: 'X', user: 'u', bytes });
  it('value_sum', () => {
    const e = engineOf(
      rule('r', 'X'),
      correlation('type: value_sum\nrules: [r]\ngroup-by: [user]\ntimespan: 1h\ncondition: {field: bytes, gt: 100}'),
    );
    expect(
      feed(e, [
        [0, ev(60)],
        [1, ev('x')],
        [2, ev('41')],
      ]),
    ).toMatchObject([{ at: 2, value: 101 }]);
  });
  it('value_avg', () => {
    const e = engineOf(rule('r', 'X'), correlation('type: value_avg\nrules: [r]\ntimespan: 1h\ncondition: {field: bytes, gte: 50}'));
    expect(
      feed(e, [
        [0, ev(10)],
        [1, ev(80)],
        [2, ev(90)],
      ]),
    ).toMatchObject([{ at: 2, value: 60 }]);
  });
  it('value_percentile (nearest rank, default 50, configurable)', () => {
    const e = engineOf(
      rule('r', 'X'),
      correlation('type: value_percentile\nrules: [r]\ntimespan: 1h\ncondition: {field: bytes, percentile: 90, gte: 100}'),
    );
    expect(
      feed(e, [
        [0, ev(1)],
        [1, ev(2)],
        [2, ev(150)],
      ]),
    ).toMatchObject([{ at: 2, value: 150 }]);
    const median = engineOf(
      rule('r', 'X'),
      correlation('type: value_percentile\nrules: [r]\ntimespan: 1h\ncondition: {field: bytes, lte: 5}'),
    );
    expect(
      feed(median, [
        [0, ev(100)],
        [1, ev(200)],
        [2, ev(3)],
        [3, ev(4)],
      ]),
    ).toMatchObject([{ at: 3, value: 4 }]);
  });
});

describe('temporal and temporal_ordered', () => {
  const docs = (type: string) => [
    rule('recon', 'ListUsers'),
    rule('escalate', 'AttachUserPolicy'),
    correlation(`type: ${type}\nrules: [recon, escalate]\ngroup-by: [user]\ntimespan: 10m`),
  ];
  const recon = (user: string) => ({ eventName: 'ListUsers', user });
  const esc = (user: string) => ({ eventName: 'AttachUserPolicy', user });
  it('temporal: all rules within the timespan, any order, same group', () => {
    expect(
      feed(engineOf(...docs('temporal')), [
        [0, esc('a')],
        [5, recon('b')],
        [6, recon('a')],
      ]),
    ).toMatchObject([{ at: 6, group: { user: 'a' } }]);
    expect(
      feed(engineOf(...docs('temporal')), [
        [0, esc('a')],
        [11, recon('a')],
      ]),
    ).toEqual([]);
  });
  it('temporal_ordered: the order of `rules` is required', () => {
    expect(
      feed(engineOf(...docs('temporal_ordered')), [
        [0, esc('a')],
        [1, recon('a')],
      ]),
    ).toEqual([]);
    expect(
      feed(engineOf(...docs('temporal_ordered')), [
        [0, esc('a')],
        [1, recon('a')],
        [2, esc('a')],
      ]),
    ).toMatchObject([{ at: 2 }]);
  });
  it('aliases map differently named fields of each rule onto one group-by key', () => {
    const e = engineOf(
      rule('recon', 'ListUsers'),
      rule('escalate', 'AttachUserPolicy'),
      correlation(
        'type: temporal\nrules: [recon, escalate]\ngroup-by: [actor]\ntimespan: 10m\naliases:\n    actor:\n        recon: user\n        escalate: principal',
      ),
    );
    expect(
      feed(e, [
        [0, { eventName: 'ListUsers', user: 'x' }],
        [1, { eventName: 'AttachUserPolicy', principal: 'x' }],
      ]),
    ).toMatchObject([{ group: { actor: 'x' } }]);
  });
});

describe('chained correlations (spec example: failed logins followed by a success)', () => {
  const text = [
    rule('failed_login', 'ConsoleLoginFailed'),
    rule('successful_login', 'ConsoleLoginOK'),
    'title: many failed\nname: multiple_failed_login\ncorrelation:\n    type: event_count\n    rules: [failed_login]\n    group-by: [User]\n    timespan: 10m\n    condition: {gte: 3}\n',
    'title: brute force success\nid: 4b1e7d2a-0000-4000-8000-00000000b00f\nauthor: Spec\ncorrelation:\n    type: temporal_ordered\n    rules: [multiple_failed_login, successful_login]\n    group-by: [User]\n    timespan: 10m\n',
  ];
  it('fires the outer correlation after the inner one', () => {
    const e = engineOf(...text);
    const fail = { eventName: 'ConsoleLoginFailed', User: 'bob' };
    const fired = feed(e, [
      [0, fail],
      [1, fail],
      [2, fail],
      [3, { eventName: 'ConsoleLoginOK', User: 'bob' }],
    ]);
    expect(fired.map((f) => [f.title, f.at])).toEqual([
      ['many failed', 2],
      ['brute force success', 3],
    ]);
  });
  it('rejects a correlation cycle', () => {
    const a = 'title: a\nname: ca\ncorrelation: {type: event_count, rules: [cb], timespan: 1m, condition: {gte: 1}}\n';
    const b = 'title: b\nname: cb\ncorrelation: {type: event_count, rules: [ca], timespan: 1m, condition: {gte: 1}}\n';
    expect(load(`${a}---\n${b}`).rejected.map((r) => r.code)).toEqual(['BG_RULES_REFERENCE', 'BG_RULES_REFERENCE']);
  });
});

describe('bounded state', () => {
  it('evicts by timespan and sweeps idle groups; stateSize measures it', () => {
    const e = engineOf(
      rule('r', 'X'),
      correlation('type: event_count\nrules: [r]\ngroup-by: [user]\ntimespan: 1m\ncondition: {gte: 1000000}'),
    );
    for (let i = 0; i < 5_000; i++) e.evaluate('cloudtrail', { eventName: 'X', user: `u${i}` }, T0 + i * 1_000);
    // one group per second over a 60 s window: at most ~60 groups live (+ sweep slack)
    expect(e.stateSize()).toBeLessThan(2 * 600);
    e.advance(T0 + 10 * 24 * 3600_000);
    expect(e.stateSize()).toBe(0);
  });
});
