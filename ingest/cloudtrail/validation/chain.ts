/**
 * Digest chain continuity: each digest names the previous one of its trail and region (key, hex
 * SHA-256 of its inflated bytes, its signature). The CLI only relies on each digest's own signature
 * and location; we also check both links (integration-facts §1), so a digest removed from the
 * middle, or one from another chain, is a finding even when every signature verifies.
 */
import type { Digest } from './digest.js';

/** The last digest read in a chain. */
export interface ChainHead {
  key: string;
  signature: string;
  sha256: string;
  endTime: string;
}

export type PreviousDigest = { key: string; signature: string; sha256: string } | 'gone';

export interface ChainFinding {
  kind: 'restart' | 'gap' | 'link';
  reason: string;
}

/**
 * The finding for `d` given the head of its chain (undefined right after a start), or null. The
 * previous digest is read (`readPrevious`) only when the head is not the one `d` names.
 */
export async function chainFinding(
  head: ChainHead | undefined,
  d: Digest,
  readPrevious: (bucket: string, key: string) => Promise<PreviousDigest>,
): Promise<ChainFinding | null> {
  if (d.previousKey === null) {
    // A starting digest: validation or logging was off, or the trail is new.
    if (!head) return null;
    return {
      kind: 'restart',
      reason: `digest chain restarted after ${head.key}: nothing was digested between ${head.endTime} and ${d.digestStartTime} (validation or logging was off)`,
    };
  }
  let previous: { key: string; signature: string; sha256: string } = head ?? { key: '', signature: '', sha256: '' };
  if (!head || head.key !== d.previousKey) {
    // First digest since start, or the head is not the one named: read it, so a deleted digest is seen.
    const read = await readPrevious(d.previousBucket ?? d.bucket, d.previousKey);
    if (read === 'gone')
      return {
        kind: 'gap',
        reason: `digest chain broken: the previous digest ${d.previousKey} is gone${head ? ` (last read: ${head.key})` : ''}`,
      };
    previous = read;
  }
  if (previous.signature !== d.previousSignature || previous.sha256 !== d.previousHashValue) {
    return {
      kind: 'link',
      reason: `digest chain broken: previousDigestSignature / previousDigestHashValue do not match the previous digest ${previous.key}`,
    };
  }
  return null;
}
