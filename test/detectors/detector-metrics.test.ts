// The detector's /metrics on the real live path: events published to the events topic, tickets
// posted to the tickets endpoint, a revocation carried out by the in-process worker against the
// Okta stand-in, and the Prometheus text read over HTTP from the listener the detect role serves.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../core/bus/memory.js';
import { type GlasswatchConfig, parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import { identityKey } from '../../core/pipeline/stage.js';
import { migrate, openStore, type Store } from '../../core/store/index.js';
import { oktaStandIn, type StandIn } from '../../detectors/revoke/standins.js';
import { type DetectorService, startDetectorService } from '../../detectors/service.js';
import { waitFor } from '../bus/helpers.js';
import { cloudtrail, okta, root } from '../support/events.js';
import { postTicket, TICKETS_SECRET, ticket } from './ticket-requests-support.js';

const LOGIN = 'emergency-admin@example.com';
const USER = `00u-${LOGIN}`;

/** Every sample line of a Prometheus text exposition, by `name{labels}`. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-z_]+(?:\{[^}]*\})?) (-?[0-9.e+]+|\+Inf|NaN)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe('detector metrics on /metrics', () => {
  let store: Store;
  let standIn: StandIn;
  let bus: MemoryBus;
  let config: GlasswatchConfig;
  let service: DetectorService;
  const publish = (events: AuditEvent[]) =>
    bus.publish(
      config.topics.events,
      events.map((e) => ({ key: identityKey(e), value: JSON.stringify(e) })),
    );
  const scrape = async () => {
    const res = await fetch(`${service.metricsUrl}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    return samples(await res.text());
  };

  beforeAll(async () => {
    store = openStore({ kind: 'chdb', path: join(mkdtempSync(join(tmpdir(), 'gw-dmetrics-')), 'store') });
    await migrate(store);
    standIn = await oktaStandIn({ token: 'okta-token', users: [USER] });
    config = parseConfig(
      {
        identities: [
          { id: 'aws-root', source: 'cloudtrail', match: { 'userIdentity.type': 'Root' } },
          { id: 'okta-admin', source: 'okta', match: { 'actor.alternateId': LOGIN }, revocation: { mode: 'auto', targets: ['okta'] } },
        ],
        revocation: { okta: { orgUrl: standIn.url, token: 'okta-token' } },
        tickets: { secret: TICKETS_SECRET, http: { listen: '127.0.0.1:0', secret: TICKETS_SECRET } },
        // The detect role serves its metrics on collectors.metrics (port 0: any free port).
        collectors: { metrics: { host: '127.0.0.1', port: 0 } },
      },
      'metrics.yml',
    );
    bus = new MemoryBus();
    service = await startDetectorService({ config, bus, store, log: silentLogger });
  });
  afterAll(async () => {
    await service?.stop();
    await standIn?.close();
    await store?.close();
  });

  it('shows open sessions by identity and verdict, alerts by type and severity, latency, revocations and waiting requests', async () => {
    const before = await scrape();
    expect(before.get('glasswatch_detector_open_sessions{identity="aws-root",verdict="authorized"}')).toBe(0);
    expect(before.get('glasswatch_detector_ticket_requests_waiting{identity="aws-root"}')).toBe(0);

    const now = Date.now();
    // An approved ticket for aws-root covering now, and a request still waiting.
    expect(
      await postTicket(
        service.ticketsUrl!,
        ticket('CHG-1', 'approved', now - 120_000, { notBefore: new Date(now - 60_000).toISOString() }),
      ),
    ).toBe(202);
    expect(await postTicket(service.ticketsUrl!, ticket('CHG-2', 'requested', now - 30_000))).toBe(202);
    await publish([
      cloudtrail(new Date(now).toISOString(), 'ConsoleLogin', root()),
      okta(new Date(now).toISOString(), 'user.session.start', LOGIN, { authenticationContext: { externalSessionId: 'sess-1' } }),
    ]);
    await waitFor(() => service.build.detector.totals.events === 2, 'both events judged');
    await waitFor(() => service.stages!.revocation.some((w) => w.totals.revoked === 1), 'the Okta session revoked');
    await service.requests.settle();

    const m = await scrape();
    expect(m.get('glasswatch_detector_events_total')).toBe(2);
    expect(m.get('glasswatch_detector_break_glass_events_total')).toBe(2);
    expect(m.get('glasswatch_detector_open_sessions{identity="aws-root",verdict="authorized"}')).toBe(1);
    expect(m.get('glasswatch_detector_open_sessions{identity="aws-root",verdict="unauthorized"}')).toBe(0);
    expect(m.get('glasswatch_detector_open_sessions{identity="okta-admin",verdict="unauthorized"}')).toBe(1);
    expect(m.get('glasswatch_detector_alerts_total{type="breakglass.authorized",severity="informational"}')).toBe(1);
    expect(m.get('glasswatch_detector_alerts_total{type="breakglass.unauthorized",severity="critical"}')).toBe(1);
    expect(m.get('glasswatch_detector_alerts_total{type="breakglass.requested",severity="medium"}')).toBe(1);
    expect(m.get('glasswatch_detector_alerts_total{type="breakglass.approved",severity="medium"}')).toBe(1);
    // Every verdict and activity alert is in the histogram; live, detection takes well under a minute.
    const count = m.get('glasswatch_detector_detection_latency_seconds_count')!;
    expect(count).toBeGreaterThanOrEqual(2);
    expect(m.get('glasswatch_detector_detection_latency_seconds_bucket{le="+Inf"}')).toBe(count);
    expect(m.get('glasswatch_detector_detection_latency_seconds_bucket{le="60"}')).toBe(count);
    expect(m.get('glasswatch_detector_revocations_total{target="okta",outcome="revoked"}')).toBe(1);
    expect(m.get('glasswatch_detector_ticket_requests_waiting{identity="aws-root"}')).toBe(1);
    expect(m.get('glasswatch_detector_ticket_request_oldest_wait_seconds{identity="aws-root"}')).toBeGreaterThanOrEqual(30);
    expect(m.get('glasswatch_detector_ticket_requests_waiting{identity="okta-admin"}')).toBe(0);

    // The request approved: nothing waits any more.
    expect(await postTicket(service.ticketsUrl!, ticket('CHG-2', 'approved', Date.now()))).toBe(202);
    expect((await scrape()).get('glasswatch_detector_ticket_requests_waiting{identity="aws-root"}')).toBe(0);
    expect(await (await fetch(`${service.metricsUrl}/healthz`)).text()).toBe('ok\n');
    expect((await fetch(`${service.metricsUrl}/other`)).status).toBe(404);
  });

  it('a scrape over 500 open sessions stays cheap (measured)', async () => {
    const now = Date.now();
    // 500 root sessions, each its own access key and source IP (a key from a new IP is a new session).
    const events = Array.from({ length: 500 }, (_, i) =>
      cloudtrail(new Date(now + i).toISOString(), 'ListUsers', root(`ASIAKEY${i}`), {
        sourceIPAddress: `203.0.${Math.floor(i / 250)}.${i % 250}`,
      }),
    );
    const judged = service.build.detector.totals.events;
    await publish(events);
    await waitFor(() => service.build.detector.totals.events === judged + 500, '500 events judged', 60_000);
    const open = service.metrics.openSessions().get('aws-root')!;
    expect(open.authorized + open.unauthorized).toBe(service.build.detector.sessions.openCount - 1);
    const t0 = performance.now();
    const runs = 20;
    for (let i = 0; i < runs; i++) service.metrics.render();
    const scrapeMs = (performance.now() - t0) / runs;
    console.log(
      `FIGURE detector-metrics ${JSON.stringify({ openSessions: service.build.detector.sessions.openCount, scrapeMs: Math.round(scrapeMs * 100) / 100 })}`,
    );
    expect(scrapeMs).toBeLessThan(250);
  });
});
