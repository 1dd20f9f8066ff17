import { GlasswatchError } from '../core/errors.js';
import { redactText, terminalSafe } from '../core/log.js';
import type { ReplaySummary } from '../core/pipeline/replay.js';
import type { DetectorBuild } from '../detectors/build.js';

export { terminalSafe };

/** Human output goes to stderr so stdout stays machine-readable (JSON lines); principal names and reasons come from events, messages may quote secrets. */
export function say(line = ''): void {
  process.stderr.write(`${terminalSafe(redactText(line))}\n`);
}

export function fail(err: unknown): number {
  if (err instanceof GlasswatchError) {
    say(`glasswatch: ${err.message} [${err.code}]`);
    if (err.hint) say(`  next: ${err.hint}`);
    if (err.cause instanceof Error && !err.message.includes(err.cause.message)) say(`  cause: ${err.cause.message}`);
    return err.stage === 'config' ? 2 : 1;
  }
  say(`glasswatch: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  return 1;
}

export function progress(label: string, done: number, total: number): void {
  if (!process.stderr.isTTY) {
    if (done === total || done % 25 === 0) say(`${label} ${done}/${total}`);
    return;
  }
  process.stderr.write(`\r${label} ${done}/${total}${done === total ? '\n' : ''}`);
}

const fmt = (n: number) => n.toLocaleString('en-US');

export function printReplaySummary(s: ReplaySummary): void {
  const total = s.events.cloudtrail + s.events.okta + s.events.k8s;
  const skipped = Object.values(s.skipped).reduce((a, b) => a + b, 0);
  say(`replayed ${fmt(s.files)} files (${fmt(s.bytes)} bytes) in ${fmt(s.durationMs)} ms`);
  say(`  normalized   ${fmt(total)}  (cloudtrail ${fmt(s.events.cloudtrail)}, okta ${fmt(s.events.okta)}, k8s ${fmt(s.events.k8s)})`);
  if (s.firstEventTime) say(`  event time   ${s.firstEventTime} .. ${s.lastEventTime}`);
  say(`  skipped      ${fmt(skipped)}`);
  for (const [what, n] of Object.entries(s.skipped).sort((a, b) => b[1] - a[1])) say(`    ${String(n).padStart(6)}  ${what}`);
  say(`  dead-letter  ${fmt(s.deadLetterTotal)}`);
  for (const [why, n] of Object.entries(s.deadLetters).sort((a, b) => b[1] - a[1])) say(`    ${String(n).padStart(6)}  ${why}`);
}

const ms = (n: number) => (n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(1)} s`);

export function printDetectorSummary(d: DetectorBuild): void {
  const det = d.detector;
  const a = det.totals.alerts;
  say(`break-glass detector: ${d.registry.identities.length} identities, ${d.ledger.size} tickets, ${d.rulesLoaded} review rules`);
  for (const w of d.ruleWarnings ?? []) say(`  ${w}`);
  say(`  events of break-glass identities ${fmt(det.totals.breakGlassEvents)} of ${fmt(det.totals.events)}`);
  say(
    `  alerts: ${a['breakglass.unauthorized']} unauthorized, ${a['breakglass.authorized']} authorized, ${a['breakglass.attempt']} attempts, ${a['breakglass.activity']} activity, ${a['rule.match']} rule matches`,
  );
  const sessions = [...det.seen.values()].sort((x, y) => x.startMs - y.startMs);
  for (const s of sessions) {
    const verdict = s.verdict === 'authorized' ? 'AUTHORIZED  ' : 'UNAUTHORIZED';
    const when = `${new Date(s.startMs).toISOString().slice(0, 19)}Z .. ${new Date(s.endMs).toISOString().slice(11, 19)}Z`;
    say(`  ${verdict} ${s.identity.padEnd(22)} ${when}  ${String(s.events).padStart(3)} events  principal ${s.principal ?? '?'}`);
    const activity = `command ${s.activity.command}, data ${s.activity.data}, config ${s.activity.config}`;
    if (s.verdict === 'authorized') say(`               ticket ${s.ticketId} approved by ${s.approvers.join(', ')}; activity ${activity}`);
    else say(`               reason ${s.reason}${s.ticketId ? ` (ticket ${s.ticketId})` : ''}; activity ${activity}`);
    if (s.detectedAtMs !== null)
      say(
        `               alerted ${ms(s.detectedAtMs - s.startMs)} after the first event${det.options.clock === 'replay' ? ' (replay: processing time only)' : ''}`,
      );
    for (const r of det.revocationRecords.filter((r) => r.sessionId === s.id)) {
      say(
        `               revocation via ${r.target}: ${r.outcome.toUpperCase()} — ${r.detail}${r.timeToRevokeMs >= 0 ? ` (${ms(r.timeToRevokeMs)} after the event)` : ''}`,
      );
    }
  }
}
