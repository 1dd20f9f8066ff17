import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../core/bus/memory.js';
import { Fields, parseConfig } from '../../core/config.js';
import { silentLogger } from '../../core/log.js';
import { MemoryDeliveryLedger } from '../../detectors/alerts/dispatcher.js';
import { JsonLinesAlertOutput } from '../../detectors/alerts/outputs.js';
import { DeliveryWorker } from '../../detectors/stages/delivery-worker.js';
import { parseCollectorsCommon } from '../../ingest/collector/options.js';
import { SilenceWatchdog } from '../../ingest/collector/watchdog.js';
import { parseOktaSection } from '../../ingest/okta/options.js';

/**
 * A collector's own alerts (pipeline.silence, pipeline.poison, pipeline.tamper) must reach the SOC
 * outputs like the detector's. They were published as bare JSON to a topic named `alerts`, while the
 * delivery workers read `topics.alerts` (glasswatch.alerts) and take only stage messages: a source
 * going silent was never delivered anywhere.
 */
const dir = mkdtempSync(join(tmpdir(), 'gw-pipeline-alerts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a collector's pipeline alerts reach the alert outputs", () => {
  it('collectors publish to topics.alerts unless collectors.alertsTopic says otherwise', () => {
    expect(parseCollectorsCommon(Fields.of('gw.yml', 'collectors', {})).alertsTopic).toBe('glasswatch.alerts');
    const config = parseConfig(
      {
        topics: { alerts: 'prod.alerts' },
        collectors: { okta: { orgUrl: 'https://example.okta.com', token: 't' } },
      },
      'gw.yml',
    );
    expect(parseOktaSection(config).alertsTopic).toBe('prod.alerts');
  });

  it('a pipeline.silence alert is delivered by the delivery worker of an output', async () => {
    const bus = new MemoryBus();
    const file = join(dir, 'alerts.jsonl');
    const worker = await new DeliveryWorker({
      bus,
      topic: 'glasswatch.alerts',
      output: new JsonLinesAlertOutput(file),
      ledger: new MemoryDeliveryLedger(),
      log: silentLogger,
      policy: { initialDelayMs: 10, maxDelayMs: 100, maxAgeMs: 60_000 },
      groupId: 'deliver-file',
      deadLetterTopic: 'glasswatch.dead-letters',
      raise: async () => {},
    }).start();
    let now = Date.parse('2026-11-20T00:00:00Z');
    const dog = new SilenceWatchdog({ collector: 'okta', bus, alertsTopic: 'glasswatch.alerts', silenceSeconds: 60, now: () => now });
    now += 61_000;
    const alert = await dog.check();
    expect(alert?.type).toBe('pipeline.silence');
    const deadline = Date.now() + 10_000;
    const delivered = () => {
      try {
        return readFileSync(file, 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    };
    while (delivered().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await worker.stop();
    await bus.close();
    const lines = delivered().map((l) => JSON.parse(l) as { id: string; type: string; schemaVersion?: string });
    expect(lines.map((l) => [l.id, l.type])).toEqual([[alert!.id, 'pipeline.silence']]);
    expect(lines[0]!.schemaVersion).toBe('2.0');
  });
});
