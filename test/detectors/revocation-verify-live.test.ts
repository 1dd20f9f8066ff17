// Revocation verified live, on the real broker with the real store (chDB) and the Okta stand-in:
// the detector appends the order, the revocation worker revokes and records `revoked` in the ledger,
// and a later successful event by the same Okta session is `breakglass.revocation_ineffective` (the
// detector reads the outcome from the ledger). The watch survives a detector restart (changelog).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaBus } from '../../core/bus/kafka.js';
import { parseConfig } from '../../core/config.js';
import type { AuditEvent } from '../../core/event.js';
import { silentLogger } from '../../core/log.js';
import { identityKey } from '../../core/pipeline/stage.js';
import { migrate, openStore } from '../../core/store/index.js';
import type { Alert } from '../../detectors/alerts/alert.js';
import { oktaStandIn } from '../../detectors/revoke/standins.js';
import { type DetectorService, startDetectorService } from '../../detectors/service.js';
import { deleteTopics, kafkaTestOptions, uniqueName, waitFor } from '../bus/helpers.js';
import { okta } from '../support/events.js';

const LOGIN = 'emergency-admin@example.com';
const USER = `00u-${LOGIN}`;
const topicsMade: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  await deleteTopics(topicsMade);
});

describe('revocation verified live (Kafka, chDB, Okta stand-in)', () => {
  it('a later successful event by the revoked Okta session raises revocation_ineffective, after a detector restart too', async () => {
    const standIn = await oktaStandIn({ token: 'okta-token', users: [USER] });
    closers.push(standIn.close);
    const store = openStore({ kind: 'chdb', path: join(mkdtempSync(join(tmpdir(), 'gw-verify-live-')), 'store') });
    closers.push(() => store.close());
    await migrate(store);
    const topics = {
      events: uniqueName('events'),
      deadLetters: uniqueName('dlq'),
      alerts: uniqueName('alerts'),
      tickets: uniqueName('tickets'),
      revocations: uniqueName('revocations'),
    };
    topicsMade.push(...Object.values(topics));
    const config = parseConfig(
      {
        bus: { kind: 'kafka', brokers: kafkaTestOptions().brokers },
        topics,
        identities: [
          {
            id: 'okta-emergency-admin',
            source: 'okta',
            match: { 'actor.alternateId': LOGIN },
            revocation: { mode: 'auto', targets: ['okta'] },
          },
        ],
        // No propagation allowance: the test's later event comes right after the answer.
        revocation: { okta: { orgUrl: standIn.url, token: 'okta-token' }, verify: { allowanceSeconds: { okta: 0 } } },
      },
      'verify-live.yml',
    );
    const bus = new KafkaBus(kafkaTestOptions());
    closers.push(() => bus.close());
    const groupId = uniqueName('det');
    const prefix = uniqueName('gw');
    const alerts: Array<{ alert: Alert; atMs: number }> = [];
    const start = async (): Promise<DetectorService> => {
      const service = await startDetectorService({
        config,
        bus,
        store,
        log: silentLogger,
        groupId,
        workerGroupPrefix: prefix,
        metricsServer: null,
        onAlert: (alert) => alerts.push({ alert, atMs: Date.now() }),
      });
      closers.push(() => service.stop());
      return service;
    };
    const publish = (e: AuditEvent) => bus.publish(topics.events, [{ key: identityKey(e), value: JSON.stringify(e) }]);
    const of = (type: string) => alerts.filter((a) => a.alert.type === type);
    const session = { authenticationContext: { externalSessionId: 'sess-live' } };

    const first = await start();
    await publish(okta(new Date().toISOString(), 'user.session.start', LOGIN, session));
    await waitFor(() => standIn.requests.some((r) => r.method === 'DELETE'), 'the worker to revoke at Okta', 60_000);
    // The worker's outcome alert goes to the alerts topic; the ledger row is what the detector reads.
    const recorded = async () => {
      const q = await store.client.query({
        query: `SELECT count() AS n FROM revocations WHERE outcome = 'revoked'`,
        format: 'JSONEachRow',
      });
      return Number((await q.json<{ n: number | string }>())[0]!.n);
    };
    for (let i = 0; i < 100 && (await recorded()) === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await recorded()).toBe(1);
    expect(first.build.detector.verifier.watches.size).toBe(1);
    await first.stop();

    // The watch comes back from the changelog; the outcome is read from the ledger in the store.
    const second = await start();
    await waitFor(() => second.build.detector.verifier.watches.size === 1, 'the restarted detector to restore the watch', 60_000);
    const refused = okta(new Date(Date.now() + 1).toISOString(), 'user.account.update_profile', LOGIN, {
      ...session,
      outcome: { result: 'FAILURE', reason: 'INVALID_SESSION' },
    });
    const later = okta(new Date(Date.now() + 2).toISOString(), 'group.user_membership.add', LOGIN, session);
    await publish(refused);
    const publishedMs = Date.now();
    await publish(later);
    await waitFor(() => of('breakglass.revocation_ineffective').length === 1, 'the ineffective revocation alert', 60_000);
    const [ineffective] = of('breakglass.revocation_ineffective');
    expect(ineffective!.alert.eventIds).toEqual([later.id]);
    expect(ineffective!.alert.severity).toBe('critical');
    expect(ineffective!.alert.summary).toContain('okta session sess-live');
    expect(second.build.detector.verifier.watches.size).toBe(0);
    const metrics = second.metrics.render();
    expect(metrics).toContain('glasswatch_detector_revocation_verifications_total{result="ineffective"} 1');
    expect(metrics).toContain('glasswatch_detector_revocation_watches 0');
    // The alert goes out first; the verification row follows it into the store.
    const verification = async () => {
      const q = await store.client.query({
        query: `SELECT outcome, verified, verify_event_id FROM revocations
                ORDER BY completed_at DESC, verified_at DESC NULLS LAST LIMIT 1 BY revocation_id`,
        format: 'JSONEachRow',
      });
      return q.json<{ outcome: string; verified: number | null; verify_event_id: string }>();
    };
    let rows = await verification();
    for (let i = 0; i < 50 && rows[0]?.verified === null; i++) {
      await new Promise((r) => setTimeout(r, 100));
      rows = await verification();
    }
    expect(rows).toEqual([{ outcome: 'revoked', verified: 0, verify_event_id: later.id }]);
    console.log(`FIGURE verify-live ${JSON.stringify({ laterEventPublishedToAlertMs: ineffective!.atMs - publishedMs })}`);
  }, 180_000);
});
