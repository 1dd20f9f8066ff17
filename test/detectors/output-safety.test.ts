import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fail, printDetectorSummary, say, terminalSafe } from '../../cli/output.js';
import { parseConfig } from '../../core/config.js';
import { GlasswatchError } from '../../core/errors.js';
import { createLogger, silentLogger } from '../../core/log.js';
import { type Alert, alertId } from '../../detectors/alerts/alert.js';
import { slackBody, WebhookOutput } from '../../detectors/alerts/outputs.js';
import { buildDetector } from '../../detectors/build.js';
import { k8s } from '../support/events.js';

const HOSTILE = '<!channel> <@U123> <https://evil.example|click here> & <!here>';

const hostileAlert: Alert = {
  id: alertId('breakglass.unauthorized', 'bgs-evil'),
  type: 'breakglass.unauthorized',
  severity: 'critical',
  identity: 'aws-root <!everyone>',
  source: 'cloudtrail',
  eventIds: ['evt-<@U999>'],
  ticketId: 'CHG-1 <#C0123>',
  reason: 'no_ticket & <!subteam^S1>',
  category: null,
  ruleId: null,
  ruleTitle: 'rule <!channel>',
  ruleAuthor: 'author <@U1>',
  sessionId: 'bgs-<!here>',
  principal: HOSTILE,
  sourceIp: '203.0.113.77<https://x|y>',
  time: '2026-11-20T22:41:52.000Z',
  detectedAt: '2026-11-20T22:41:52.120Z',
  summary: `UNAUTHORIZED use of break-glass identity aws-root by ${HOSTILE}: no_ticket`,
};

/** Every string of a JSON value, with its path. */
function strings(value: unknown, path = '$'): [string, string][] {
  if (typeof value === 'string') return [[path, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => strings(v, `${path}[${i}]`));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => strings(v, `${path}.${k}`));
  return [];
}

/** What Slack would read as markup: any `<` or `>`, or a bare `&` that is not one of the three escapes. */
function slackMarkup(text: string): boolean {
  return /[<>]/.test(text) || /&(?!amp;|lt;|gt;)/.test(text);
}

describe('Slack bodies escape & < > in every text field', () => {
  it('principal, summary, rule, ticket, ids: no mention, link or channel markup survives', () => {
    const body = slackBody(hostileAlert);
    const texts = strings(body).filter(([path]) => !path.endsWith('.type'));
    expect(texts.length).toBeGreaterThan(5);
    for (const [path, text] of texts) expect(slackMarkup(text), `${path}: ${text}`).toBe(false);
    // Escaped, not dropped: the reader still sees what the principal was called.
    expect(JSON.stringify(body)).toContain('&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.example|click here&gt; &amp; &lt;!here&gt;');
  });

  it('the body posted to a real HTTP receiver is escaped', async () => {
    const bodies: string[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString());
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack`;
      await new WebhookOutput({ url, secret: 's', format: 'slack' }).send(hostileAlert);
      expect(bodies).toHaveLength(1);
      for (const [path, text] of strings(JSON.parse(bodies[0]!))) if (!path.endsWith('.type')) expect(slackMarkup(text), path).toBe(false);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

/** Everything a terminal acts on: C0 (but LF and tab), DEL, C1, and the bidi marks, embeddings, overrides and isolates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const TERMINAL_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const ATTACKS = [
  '\x1b[2J\x1b[31mred\x1b[0m', // CSI: clear screen, colours
  '\x1b]8;;https://evil.example\x07click\x1b]8;;\x07', // OSC 8 hyperlink, BEL-terminated
  '\x1b]0;new title\x1b\\', // OSC window title, ST-terminated
  '\x9b31m\x9d0;title\x9c', // 8-bit C1 CSI, OSC, ST
  'over\rwrite\bback\x00nul\x7fdel\x85nel',
  'admin\u202egpj.exe \u2066iso\u2069 \u202a\u202b\u202c\u202d \u2067\u2068 \u200e\u200f\u061c',
];

describe('terminal output never carries control characters from events', () => {
  let written: string[] = [];
  const capture = () => {
    written = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
  };
  afterEach(() => vi.restoreAllMocks());

  it('terminalSafe neutralises every control and bidi character, visibly, and keeps the rest', () => {
    for (const attack of ATTACKS) {
      const safe = terminalSafe(attack);
      expect(safe, JSON.stringify(attack)).not.toMatch(TERMINAL_CONTROL);
      expect(safe).toMatch(/\\u[0-9a-f]{4}/);
    }
    expect(terminalSafe('Zoë 日本 emoji 🔥\tline\nnext\r\n')).toBe('Zoë 日本 emoji 🔥\tline\nnext\r\n');
  });

  it('property: on a JSON line it changes characters, never the value (data output stays exact JSON)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string({ unit: 'binary' }), (value, text) => {
        const doc = { value, text };
        const line = terminalSafe(JSON.stringify(doc));
        expect(line).not.toMatch(TERMINAL_CONTROL);
        expect(JSON.parse(line)).toEqual(JSON.parse(JSON.stringify(doc)));
      }),
      { numRuns: 3000 },
    );
  });

  it('say and fail write no control character to the terminal', () => {
    capture();
    for (const a of ATTACKS) say(`principal ${a}`);
    fail(new GlasswatchError('BG_TEST', `bad record from ${ATTACKS[1]}`, { hint: ATTACKS[0] }));
    fail(new Error(ATTACKS[3]));
    vi.restoreAllMocks();
    expect(written.length).toBeGreaterThan(ATTACKS.length);
    for (const w of written) expect(w.replace(/\n$/, ''), JSON.stringify(w)).not.toMatch(TERMINAL_CONTROL);
  });

  it('the detector summary of a replay shows a hostile principal as text', async () => {
    const config = parseConfig(
      { identities: [{ id: 'k8s-breakglass', source: 'k8s', match: { 'user.groups': 'system:masters' }, revocation: { mode: 'off' } }] },
      'test.yml',
    );
    const build = await buildDetector({ config, store: null, log: silentLogger, clock: 'replay', ticketFiles: [] });
    const user = { username: `${ATTACKS[1]}${ATTACKS[0]}\u202eadmin`, groups: ['system:masters'] };
    await build.detector.handle([k8s('2026-11-20T09:10:00Z', 'get', user, { resource: 'secrets', namespace: 'prod', name: 'db' })]);
    await build.detector.flush();
    capture();
    printDetectorSummary(build);
    vi.restoreAllMocks();
    const text = written.join('');
    expect(text).toContain('UNAUTHORIZED');
    expect(text).toContain('click');
    for (const line of text.split('\n')) expect(line, JSON.stringify(line)).not.toMatch(TERMINAL_CONTROL);
  });

  it('log lines escape C1 and bidi characters as JSON \\u escapes: no raw control, same value', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', write: (l) => lines.push(l) });
    const principal = ATTACKS.join(' ');
    log.warn(`record from ${principal}`, { principal, nested: { list: [principal] } });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(TERMINAL_CONTROL);
    const parsed = JSON.parse(lines[0]!) as { msg: string; principal: string; nested: { list: string[] } };
    expect(parsed.principal).toBe(principal);
    expect(parsed.nested.list[0]).toBe(principal);
    expect(parsed.msg).toBe(`record from ${principal}`);
  });
});
