import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../core/bus/memory.js';
import { Fields } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import { runOktaCollector } from '../../ingest/okta/collector.js';
import { LocalSystemLog } from '../../ingest/okta/local-systemlog.js';
import { parseOktaFields } from '../../ingest/okta/options.js';

describe('Okta poller and a query Okta will never accept', () => {
  it('stops with the reason on HTTP 400 (since beyond 180 days) instead of retrying forever', async () => {
    const okta = await new LocalSystemLog({ authorization: 'SSWS t', maxSinceAgeDays: 180 }).start();
    const bus = new MemoryBus();
    try {
      const config = parseOktaFields(
        Fields.of('test.yaml', 'collectors.okta', {
          orgUrl: okta.url,
          token: 't',
          since: new Date(Date.now() - 200 * 86_400_000).toISOString(),
          pollIntervalSeconds: 0.1,
        }),
        { checkpointDir: mkdtempSync(join(tmpdir(), 'gw-okta400-')), alertsTopic: 'alerts', silenceSeconds: 3600, metrics: null },
      );
      const running = await runOktaCollector(config, {
        bus,
        topics: { events: 'e', deadLetters: 'd' },
        logger: createLogger({ level: 'silent' }),
        watchdog: null,
      });
      await expect(running.done).rejects.toMatchObject({ code: 'BG_INGEST_OKTA_BAD_REQUEST', stage: 'config' });
      await running.stop();
      expect(okta.requests.map((r) => r.status)).toEqual([400]);
      expect(bus.messages('e')).toHaveLength(0);
    } finally {
      await okta.close();
      await bus.close();
    }
  });
});
