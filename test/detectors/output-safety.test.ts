import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type Alert, alertId } from '../../detectors/alerts/alert.js';
import { slackBody, WebhookOutput } from '../../detectors/alerts/outputs.js';

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
