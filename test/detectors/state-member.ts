/**
 * One detector member as its own process, for the failover and grace tests (a real SIGKILL):
 * `node --import tsx test/detectors/state-member.ts <config.json> <alerts.jsonl>`. Every alert is
 * appended synchronously to the alerts file as it is raised, so a kill loses none that was
 * raised; "ready" is printed once the member is in the group.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { KafkaBus } from '../../core/bus/kafka.js';
import { parseConfig } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import { startDetectorService } from '../../detectors/service.js';

const [configFile, alertsFile, groupId, instance] = process.argv.slice(2) as [string, string, string, string];
const raw = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown> & { bus: { brokers: string[] } };
const config = parseConfig(raw, configFile);
const log = createLogger({ level: 'error', bindings: { component: `member-${instance}` } });
const bus = new KafkaBus({
  brokers: raw.bus.brokers,
  clientId: `gw-member-${instance}`,
  sessionTimeoutMs: 6000,
  heartbeatIntervalMs: 300,
  rebalanceTimeoutMs: 10_000,
  maxWaitTimeMs: 100,
  handlerRetryDelayMs: 20,
  retries: 3,
  logger: log,
});
const service = await startDetectorService({
  config,
  bus,
  store: null,
  log,
  groupId,
  instanceId: instance,
  onAlert: (a) => appendFileSync(alertsFile, `${JSON.stringify({ member: instance, ...a })}\n`),
});
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void service
    .stop()
    .then(() => bus.close())
    .then(() => process.exit(0));
});
