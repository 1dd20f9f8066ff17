import type { RetentionNotice } from '../retention.js';
import type { ReportMetadata, ReportSignature } from '../signing.js';
import { reportFileStem } from '../signing.js';
import type { AnyReport } from '../types.js';
import { escapeHtml } from './html.js';

const SMALL = 'font-size:11px;color:#374151;margin:4px 0';
const CODE = 'font-family:SFMono-Regular,Consolas,monospace;font-size:10px;overflow-wrap:anywhere;word-break:break-all';

/** The exact command that checks a mailed or written report: its `.sig.json` holds content, metadata and signature. */
export function verifyCommand(report: Pick<AnyReport, 'report' | 'from' | 'to'>): string {
  return `glasswatch report verify ${reportFileStem(report)}.sig.json --public-key evidence-key.pub.pem`;
}

function retentionBox(notice: RetentionNotice): string {
  return `<p class="gw-keep" style="margin:8px 0;padding:6px 8px;border:1px solid #f59e0b;background:#fffbeb;color:#92400e;font-size:12px"><b>Retention:</b> ${escapeHtml(notice.note)}.</p>`;
}

/**
 * The evidence block at the end of a report page: a retention notice when the period reaches
 * before a horizon, then the digest, the signature and how to verify them. A report without a
 * signature says so: the page never looks signed when it is not.
 */
export function evidenceBlock(report: AnyReport): string {
  const r = report as AnyReport & { retention?: RetentionNotice; metadata?: ReportMetadata; signature?: ReportSignature };
  const parts: string[] = [];
  if (r.retention) parts.push(retentionBox(r.retention));
  parts.push('<div class="gw-keep" style="margin:10px 0 0;padding:6px 8px;border-top:1px solid #d1d5db">');
  if (!r.metadata || !r.signature) {
    parts.push(`<p style="${SMALL}"><b>Unsigned report.</b> SHA-256 digest <code style="${CODE}">${escapeHtml(r.digest)}</code>.</p>`);
    parts.push('</div>');
    return parts.join('\n');
  }
  const m = r.metadata;
  // Every process is a chain writer: the page names the three longest chains, the .sig.json has them all.
  const longest = [...m.chainHeads].sort((a, b) => b.seq - a.seq).slice(0, 3);
  const heads = m.chainHeads.length
    ? `${m.chainHeads.length} writer head(s): ${longest.map((h) => `${escapeHtml(h.writer)} #${escapeHtml(h.seq)} ${escapeHtml(String(h.hash).slice(0, 16))}…`).join('; ')}${m.chainHeads.length > 3 ? '; …' : ''}`
    : 'no audit chain records yet';
  parts.push(
    `<p style="${SMALL}"><b>Signed evidence.</b> Built ${escapeHtml(m.generatedAt)} by glasswatch ${escapeHtml(m.glasswatchVersion)} for ${escapeHtml(m.organisation ?? 'organisation not configured')} from ${escapeHtml(m.store)}; audit chain at ${heads}.</p>`,
    `<p style="${SMALL}">Content digest (SHA-256 over period, totals and rows): <code style="${CODE}">${escapeHtml(r.digest)}</code></p>`,
    `<p style="${SMALL}">Ed25519 signature by key <code style="${CODE}">${escapeHtml(r.signature.keyId)}</code> over digest and metadata: <code style="${CODE}">${escapeHtml(r.signature.value)}</code></p>`,
    `<p style="${SMALL}">Verify (the key from <code style="${CODE}">glasswatch audit key</code>, obtained from your glasswatch operators, not from this mail): <code style="${CODE}">${escapeHtml(verifyCommand(r))}</code>; add <code style="${CODE}">--store PATH</code> or <code style="${CODE}">--config FILE</code> to also check the audit chain and rebuild the report from the store.</p>`,
    '</div>',
  );
  return parts.join('\n');
}
