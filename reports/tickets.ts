import type { Store } from '../core/store/client.js';
import { withDigest } from './digest.js';
import { iso, isoOrNull, msOrNull, runQuery, strings, textOrNull } from './sql.js';
import type { CoverageFinding, CoverageKind, CoverageReport, Period } from './types.js';

interface CoverageRow {
  kind: CoverageKind;
  ticket_id: string;
  identities: string[];
  session_id: string;
  requester: string;
  approvers: string[];
  not_before_ms: number | string;
  not_after_ms: number | string;
  start_ms: number | string;
  end_ms: number | string;
  uses: number | string;
  early_ms: number | string;
  overrun_ms: number | string;
  reason: string;
}

const byKey = (f: CoverageFinding) => `${f.kind}\u0000${f.ticketId ?? ''}\u0000${f.sessionId ?? ''}`;

export async function buildCoverageReport(store: Store, period: Period): Promise<CoverageReport> {
  const params = { from_ms: period.fromMs, to_ms: period.toMs };
  const [rows, count] = await Promise.all([
    runQuery<CoverageRow>(store, 'ticket-coverage', params),
    runQuery<{ tickets: number | string }>(store, 'ticket-count', params),
  ]);
  const findings: CoverageFinding[] = rows
    .map((r): CoverageFinding => {
      return {
        kind: r.kind,
        ticketId: textOrNull(r.ticket_id),
        identities: strings(r.identities),
        sessionId: textOrNull(r.session_id),
        requester: textOrNull(r.requester),
        approvers: strings(r.approvers),
        notBefore: isoOrNull(r.not_before_ms),
        notAfter: isoOrNull(r.not_after_ms),
        start: isoOrNull(r.start_ms),
        end: isoOrNull(r.end_ms),
        // -1: a finding about one use, where a count of uses says nothing.
        uses: msOrNull(r.uses),
        earlyMs: msOrNull(r.early_ms),
        overrunMs: msOrNull(r.overrun_ms),
        reason: textOrNull(r.reason),
      };
    })
    .sort((a, b) => (byKey(a) < byKey(b) ? -1 : byKey(a) > byKey(b) ? 1 : 0));
  const n = (k: CoverageKind) => findings.filter((f) => f.kind === k).length;
  return withDigest<CoverageReport>({
    report: 'ticket-coverage',
    from: iso(period.fromMs),
    to: iso(period.toMs),
    totals: {
      tickets: Number(count[0]?.tickets ?? 0),
      unusedTickets: n('unused_ticket'),
      usesWithoutTicket: n('use_without_ticket'),
      selfApprovals: n('self_approval'),
      earlyUses: n('early_use'),
      windowOverruns: n('window_overrun'),
    },
    findings,
  });
}
