// The README's first command (`npm start`, the `demo` command) on the bundled night, as an operator
// reads it: the Okta emergency admin's revocation verified from the later logs, the root session
// flagged not revocable with what to do instead, and the admin's AWS role session linked to the
// Okta one (issue 15's "done when").
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

describe('the demo night', () => {
  it('shows a verified Okta revocation, a root session flagged not_revocable, and the Okta admin’s linked AWS session', async () => {
    // Its own store (the night is replayed into a fresh one, as on a first `npm start`).
    const dir = mkdtempSync(join(tmpdir(), 'gw-demo-night-'));
    const r = await runCli(['demo', '--store', join(dir, 'store')], { timeoutMs: 120_000 });
    rmSync(dir, { recursive: true, force: true });
    expect(r.code, r.stderr).toBe(0);
    // The night's summary is for the operator's terminal (stderr); stdout stays for data.
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/revocation via aws: NOT_REVOCABLE — root sessions cannot be fenced by IAM: rotate the root credentials/);
    expect(out).toMatch(/verified from later logs: no successful event by okta:session:\S+, okta:user:\S+ from \S+ for 15 min/);
    expect(out).toMatch(
      /linked session of the same person \(emergency-admin@example\.com\): aws arn:aws:sts::111122223333:assumed-role\/OktaAdmins\/emergency-admin@example\.com/,
    );
    expect(out).toMatch(/1 linked sessions in other planes/);
  }, 150_000);
});
