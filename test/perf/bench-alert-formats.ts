/**
 * Alerts per second through each output format, and the messages an e-mail output sends for the demo day.
 *
 *   node --import tsx test/perf/bench-alert-formats.ts
 *
 * Alerts: the 38 of the bundled demo incident (every type a replay raises), cycled. Formats: the
 * payload each output builds and serializes (native, OCSF, ECS, syslog RFC 5424 frame, PagerDuty
 * event, Teams card), then native/OCSF/ECS end to end through the dispatcher into a JSON lines file.
 * E-mail: the demo day replayed with --deliver to a real SMTP server on 127.0.0.1, grouped (60 s)
 * and ungrouped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { silentLogger } from '../../core/log.js';
import type { CompleteAlert } from '../../detectors/alerts/alert.js';
import { AlertDispatcher, MemoryDeliveryLedger } from '../../detectors/alerts/dispatcher.js';
import { type AlertFormat, formatAlert } from '../../detectors/alerts/formats/index.js';
import { pagerDutyEvent } from '../../detectors/alerts/outputs/pagerduty.js';
import { frame, syslogMessage } from '../../detectors/alerts/outputs/syslog.js';
import { teamsCard } from '../../detectors/alerts/outputs/teams.js';
import { JsonLinesAlertOutput } from '../../detectors/alerts/outputs.js';
import { replayDemo } from '../support/demo-alerts.js';
import { benchSize, figure } from './figures.js';

const N = benchSize({ full: 200_000, smoke: 2_000 });
const FILE_N = benchSize({ full: 20_000, smoke: 500 });

const { alerts } = await replayDemo({});
const demo = alerts as CompleteAlert[];
const at = (i: number) => demo[i % demo.length] as CompleteAlert;

function rate(name: string, fn: (a: CompleteAlert) => unknown): void {
  let bytes = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const out = fn(at(i));
    bytes += typeof out === 'string' ? out.length : (out as Buffer).length;
  }
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`${name.padEnd(10)} ${Math.round(N / s).toLocaleString('en-US')} alerts/s (${Math.round(bytes / N)} bytes/alert)`);
  figure(`alert format ${name}`, Math.round(N / s), 'alerts/s', { alerts: N, bytesPerAlert: Math.round(bytes / N) });
}

for (const f of ['native', 'ocsf', 'ecs'] as AlertFormat[]) rate(f, (a) => JSON.stringify(formatAlert(a, f)));
rate('syslog', (a) => frame(syslogMessage(a, { format: 'native' })));
rate('pagerduty', (a) => JSON.stringify(pagerDutyEvent(a, 'x'.repeat(32), 'native')));
rate('teams', (a) => JSON.stringify(teamsCard(a)));

const dir = mkdtempSync(join(tmpdir(), 'gw-bench-alerts-'));
for (const f of ['native', 'ocsf', 'ecs'] as AlertFormat[]) {
  const d = new AlertDispatcher(
    [new JsonLinesAlertOutput(join(dir, `${f}.jsonl`), { format: f })],
    new MemoryDeliveryLedger(),
    silentLogger,
  );
  const start = process.hrtime.bigint();
  for (let i = 0; i < FILE_N; i++) await d.dispatch({ ...at(i), id: `${at(i).id}-${i}` });
  await d.close();
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`dispatcher → JSON lines (${f}): ${Math.round(FILE_N / s).toLocaleString('en-US')} alerts/s`);
  figure(`alert dispatch jsonl ${f}`, Math.round(FILE_N / s), 'alerts/s', { alerts: FILE_N });
}
rmSync(dir, { recursive: true, force: true });

let mails = 0;
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  onData(stream, _s, cb) {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      mails++;
      cb();
    });
  },
});
await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
const port = (smtp.server.address() as AddressInfo).port;
for (const window of [0, 60]) {
  mails = 0;
  const run = await replayDemo({ email: { from: 'gw@example.com', to: ['soc@example.com'], groupWindowSeconds: window } }, ['--deliver'], {
    smtp: { host: '127.0.0.1', port },
  });
  const unauthorized = run.alerts.filter((a) => a.type === 'breakglass.unauthorized').length;
  console.log(
    `demo day e-mails (groupWindowSeconds ${window}): ${mails} messages for ${run.alerts.length} alerts (${unauthorized} unauthorized)`,
  );
  figure('demo day e-mails', mails, 'messages', { groupWindowSeconds: window, alerts: run.alerts.length, unauthorized });
}
await new Promise<void>((r) => smtp.close(() => r()));
