import { GlasswatchError } from '../core/errors.js';
import { redactText, terminalSafe } from '../core/log.js';
import type { ReplaySummary } from '../core/pipeline/replay.js';
import type { DetectorBuild } from '../detectors/build.js';
import { asUsageError } from './args.js';

export { terminalSafe };

/** Human output goes to stderr so stdout stays machine-readable (JSON lines); principal names and reasons come from events, messages may quote secrets. */
export function say(line = ''): void {
  process.stderr.write(`${terminalSafe(redactText(line))}\n`);
}

export function fail(thrown: unknown): number {
  const err = asUsageError(thrown) ?? thrown;
  if (err instanceof GlasswatchError) {
    // A usage mistake is one line that already says where to look (`see glasswatch X --help`).
    if (err.code === 'BG_CLI_USAGE' && !err.hint) {
      say(`glasswatch: ${err.message}`);
      return 2;
    }
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

/**
 * Progress of a long replay on stderr: on a terminal one rewritten line with the rate and an
 * ETA; otherwise (CI, a log file) one line every `everyMs` (default 5 s) so logs stay short.
 */
export class ReplayProgressPrinter {
  readonly #tty = process.stderr.isTTY === true;
  readonly #everyMs: number;
  #phase = '';
  #phaseStarted = Date.now();
  #lastLine = Date.now();
  #printed = false;

  constructor(
    readonly stagesLabel: string,
    everyMs = Number(process.env.GLASSWATCH_PROGRESS_MS ?? 5000),
  ) {
    this.#everyMs = Number.isFinite(everyMs) && everyMs >= 0 ? everyMs : 5000;
  }

  update(p: { phase: 'normalize' | 'stages'; done: number; total: number; events: number }): void {
    const label = p.phase === 'normalize' ? 'normalize' : this.stagesLabel;
    const now = Date.now();
    if (label !== this.#phase) {
      this.#phase = label;
      this.#phaseStarted = now;
    }
    const seconds = Math.max((now - this.#phaseStarted) / 1000, 0.001);
    const finished = p.done >= p.total;
    const pct = p.total > 0 ? Math.floor((p.done / p.total) * 100) : 100;
    const rate =
      p.phase === 'normalize' ? `${fmt(Math.round(p.events / seconds))} events/s` : `${fmt(Math.round(p.done / seconds))} events/s`;
    const what =
      p.phase === 'normalize' ? `${fmt(p.events)} events, ${pct}% of ${fmt(p.total)} bytes` : `${fmt(p.done)}/${fmt(p.total)} events`;
    if (this.#tty) {
      const eta = p.done > 0 && !finished ? `, ETA ${Math.ceil(((p.total - p.done) * seconds) / p.done)} s` : '';
      process.stderr.write(`\r\x1b[K${label}: ${what}, ${rate}${eta}${finished ? '\n' : ''}`);
      return;
    }
    // A short replay prints nothing; a long one a line every few seconds and each phase's end.
    if (now - this.#lastLine < this.#everyMs && !(finished && this.#printed)) return;
    this.#lastLine = now;
    this.#printed = true;
    say(`${label}: ${what}, ${rate}`);
  }
}

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

/** At most this many sessions are listed in a summary; the rest are counted (the alerts file has them all). */
export const SUMMARY_SESSIONS = 20;

export function printDetectorSummary(d: DetectorBuild, o: { maxSessions?: number; more?: string } = {}): void {
  const det = d.detector;
  const a = det.totals.alerts;
  say(`break-glass detector: ${d.registry.identities.length} identities, ${d.ledger.size} tickets, ${d.rulesLoaded} review rules`);
  for (const w of d.ruleWarnings ?? []) say(`  ${w}`);
  say(`  events of break-glass identities ${fmt(det.totals.breakGlassEvents)} of ${fmt(det.totals.events)}`);
  say(
    `  alerts: ${a['breakglass.unauthorized']} unauthorized, ${a['breakglass.authorized']} authorized, ${a['breakglass.attempt']} attempts, ${a['breakglass.activity']} activity, ${a['rule.match']} rule matches${a['breakglass.revocation_ineffective'] ? `, ${a['breakglass.revocation_ineffective']} INEFFECTIVE revocations` : ''}${a['breakglass.linked_session'] ? `, ${a['breakglass.linked_session']} linked sessions in other planes` : ''}`,
  );
  const all = [...det.seen.values()].sort((x, y) => x.startMs - y.startMs);
  const sessions = all.slice(0, o.maxSessions ?? SUMMARY_SESSIONS);
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
      // Verified from the events that followed (detectors/revoke/verify.ts), or still watched when the replay ended.
      if (r.outcome === 'revoked')
        say(
          r.verification
            ? `               ${r.verification.verified ? 'verified' : 'INEFFECTIVE'} from later logs: ${r.verification.detail}`
            : '               not verified: the verify window was still open at the end of the events',
        );
    }
    // One person across planes (detectors/people): the same human's sessions elsewhere, and what followed them.
    for (const l of s.personId ? (det.people?.linker.linked(s) ?? []) : []) {
      const span = `${new Date(l.firstMs).toISOString().slice(11, 19)}Z .. ${new Date(l.lastMs).toISOString().slice(11, 19)}Z`;
      // An AWS role session is shown by its ARN (role and session name), the others by their principal.
      const who =
        l.source === 'cloudtrail' ? `aws ${l.key.startsWith('arn:') ? l.key : (l.principal ?? '?')}` : `${l.source} ${l.principal ?? '?'}`;
      say(`               linked session of the same person (${s.personId}): ${who} ${span}`);
    }
    for (const r of det.revocationRecords.filter((r) => r.followedFrom === s.id))
      say(`               followed into ${r.target} (${r.sessionId}): ${r.outcome.toUpperCase()} — ${r.detail}`);
  }
  if (all.length > sessions.length) say(`  … and ${fmt(all.length - sessions.length)} more sessions, ${o.more ?? 'see --alerts-out'}`);
}
