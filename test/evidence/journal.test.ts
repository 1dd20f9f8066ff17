import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { insertRows, migrate, openStore, type Store, StoreWriter } from '../../core/store/index.js';
import { AuditChain } from '../../evidence/chain.js';
import { journalDirOf } from '../../evidence/journal.js';
import { loadEvidenceKeys } from '../../evidence/keys.js';
import { verifyAudit } from '../../evidence/verify.js';

/**
 * The audit chain's journal (evidence/journal.ts): appends are file writes, audit_log gets one
 * insert per drain, and a kill -9 before the drain loses no chain record.
 */
const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gw-journal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function alert(id: string): Record<string, unknown> {
  return {
    alert_id: id,
    type: 'breakglass.unauthorized',
    severity: 'critical',
    identity: 'aws-breakglass',
    source: 'cloudtrail',
    event_ids: [`e-${id}`],
    session_id: `s-${id}`,
    time: '2026-11-20T22:00:00.000Z',
    detected_at: '2026-11-20T22:00:01.000Z',
    summary: `alert ${id}`,
  };
}

async function count(store: Store, query: string): Promise<number> {
  const rows = await (await store.client.query({ query, format: 'JSONEachRow' })).json<{ n: string }>();
  return Number(rows[0]!.n);
}

const records = (store: Store, writer: string) =>
  count(store, `SELECT count() AS n FROM audit_log WHERE writer = '${writer.replace(/'/g, '')}'`);

/** Runs test/evidence/journal-writer.ts until it has stored its rows, then kills it with SIGKILL. */
async function writeAndKill(path: string, writer: string, n: number): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/evidence/journal-writer.ts'), path, writer, String(n)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const head = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /stored (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`journal writer exited (${code}) before storing: ${err.slice(-2000)}`)));
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return head;
}

describe('audit chain journal', () => {
  it('stores a flush’s chain records in the journal and moves them into audit_log in one insert per drain', async () => {
    const store = openStore({ kind: 'chdb', path: join(dir, 'grouped') });
    await migrate(store);
    const keys = await loadEvidenceKeys({ store });
    const journal = journalDirOf(store)!;
    const chain = await AuditChain.open(store, {
      writer: 'detect@g',
      keys,
      checkpointEvery: 5,
      journal: { dir: journal, drainMs: 3_600_000 },
    });
    store.evidence = chain;
    const writer = new StoreWriter(store);
    for (let flush = 0; flush < 4; flush++) {
      for (let i = 0; i < 3; i++) writer.add('alerts', alert(`g${flush}-${i}`));
      await writer.flush();
    }
    // Four flushes: the rows are stored, their chain records are in the journal and not yet in audit_log.
    expect(chain.head.seq).toBe(12);
    expect(await count(store, 'SELECT count() AS n FROM alerts')).toBe(12);
    expect(await records(store, 'detect@g')).toBe(0);
    const lines = readdirSync(journal).flatMap((f) => readFileSync(join(journal, f), 'utf8').split('\n').filter(Boolean));
    expect(lines.map((l) => JSON.parse(l).seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    for (const f of readdirSync(journal)) expect(readFileSync(join(journal, f)).length).toBeGreaterThan(0);
    // Evidence content: the folder and its files are the store's user's only.
    expect(statSync(journal).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(journal)) expect(statSync(join(journal, f)).mode & 0o777).toBe(0o600);

    await chain.drain();
    expect(await records(store, 'detect@g')).toBe(12);
    expect(readdirSync(journal).every((f) => readFileSync(join(journal, f)).length === 0)).toBe(true);
    // Checkpoints sign only what audit_log holds: due after 5, signed at the drain's head.
    const signed = await count(store, "SELECT max(seq) AS n FROM audit_checkpoints WHERE writer = 'detect@g'");
    expect(signed).toBe(12);
    const result = await verifyAudit(store);
    expect(result.findings).toEqual([]);
    expect(result.ok).toBe(true);
    await store.close();
  });

  it('survives a kill -9 before the drain: the next open moves the records in, the chain continues, verify passes', async () => {
    const path = join(dir, 'killed');
    const head = await writeAndKill(path, 'detect@k', 25);
    expect(head).toBe(25);
    const store = openStore({ kind: 'chdb', path });
    const journal = journalDirOf(store)!;
    expect(await records(store, 'detect@k')).toBe(0); // nothing was drained before the kill
    expect(await count(store, 'SELECT count() AS n FROM alerts')).toBe(25);

    const keys = await loadEvidenceKeys({ store });
    const chain = await AuditChain.open(store, { writer: 'detect@k', keys, journal: { dir: journal } });
    expect(await records(store, 'detect@k')).toBe(head);
    expect(chain.head.seq).toBe(head); // continues after the recovered records, never reusing their numbers
    store.evidence = chain;
    await insertRows(store, 'alerts', [alert('after-restart')]);
    await chain.close();
    store.evidence = null;
    expect(await records(store, 'detect@k')).toBe(head + 1);
    const result = await verifyAudit(store);
    expect(result.findings).toEqual([]);
    expect(result.ok).toBe(true);
    await store.close();
  });

  it('audit verify alone moves a killed writer’s journal in first, and says so', async () => {
    const path = join(dir, 'verify-only');
    const head = await writeAndKill(path, 'detect@v', 10);
    const store = openStore({ kind: 'chdb', path });
    const result = await verifyAudit(store);
    expect(result.findings).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.warnings.join('\n')).toMatch(new RegExp(`${head} chain record\\(s\\) left in the audit journal`));
    expect(await records(store, 'detect@v')).toBe(head);
    await store.close();
  });

  it('drops a torn last line, and refuses a journal that is corrupt or does not continue the chain, naming the file and line', async () => {
    const path = join(dir, 'torn');
    await writeAndKill(path, 'detect@t', 3);
    const store = openStore({ kind: 'chdb', path });
    const journal = journalDirOf(store)!;
    const [file] = readdirSync(journal).filter((f) => readFileSync(join(journal, f)).length > 0);
    const full = join(journal, file!);
    const original = readFileSync(full, 'utf8');
    const lines = original.split('\n').filter(Boolean);

    // A corrupt record in the middle: refused, nothing moved.
    writeFileSync(full, `${lines[0]}\n${lines[1]!.replace('"alert', '"ALERT')}\n${lines[2]}\n`);
    await expect(verifyAudit(store)).rejects.toMatchObject({
      code: 'BG_EVIDENCE_JOURNAL',
      message: expect.stringContaining(`${full} line 2`),
    });
    // A journal whose first record does not follow the stored head (records 1 removed): refused.
    writeFileSync(full, `${lines[1]}\n${lines[2]}\n`);
    await expect(verifyAudit(store)).rejects.toMatchObject({
      code: 'BG_EVIDENCE_JOURNAL',
      message: expect.stringMatching(/does not continue the chain at 1/),
    });
    expect(await records(store, 'detect@t')).toBe(0);

    // A write cut short by the crash: its rows were never stored, the torn line is dropped.
    writeFileSync(full, `${lines[0]}\n${lines[1]}\n`);
    appendFileSync(full, lines[2]!.slice(0, 40));
    const result = await verifyAudit(store);
    expect(await records(store, 'detect@t')).toBe(2);
    // Record 3's alert was stored by the killed writer but its record was torn: verify names it.
    expect(result.findings).toEqual([
      expect.objectContaining({ table: 'alerts', problem: 'row is not in the audit chain (inserted outside glasswatch)' }),
    ]);
    expect(existsSync(full)).toBe(false);
    await store.close();
  });

  it('fails the next append while audit_log cannot be written (fail closed), and recovers when it can', async () => {
    const store = openStore({ kind: 'chdb', path: join(dir, 'failing') });
    await migrate(store);
    const keys = await loadEvidenceKeys({ store });
    const chain = await AuditChain.open(store, { writer: 'detect@f', keys, journal: { dir: journalDirOf(store)!, drainMs: 3_600_000 } });
    await chain.append([{ kind: 'row', table: 'alerts', key: '["f1"]', content: '{"alert_id":"f1"}' }]);
    await store.client.command({ query: 'RENAME TABLE audit_log TO audit_log_away' });
    await expect(chain.drain()).rejects.toThrow(/audit_log/);
    await expect(chain.append([{ kind: 'row', table: 'alerts', key: '["f2"]', content: '{"alert_id":"f2"}' }])).rejects.toThrow(
      /audit_log/,
    );
    expect(chain.head.seq).toBe(1); // the refused append took no number
    await store.client.command({ query: 'RENAME TABLE audit_log_away TO audit_log' });
    await chain.append([{ kind: 'row', table: 'alerts', key: '["f2"]', content: '{"alert_id":"f2"}' }]);
    await chain.drain();
    expect(await records(store, 'detect@f')).toBe(2);
    await chain.close();
    await store.close();
  });
});
