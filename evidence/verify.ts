import { createHash } from 'node:crypto';
import type { Store } from '../core/store/client.js';
import { canonicalJson } from './canonical.js';
import { checkpointPayload, GENESIS_HASH, recordHash } from './chain.js';
import { settleChain } from './journal.js';
import { storedPublicKeys, verifySignature } from './keys.js';
import { type Column, keyOf, normalizeValue, storedContent, tableColumns } from './normalize.js';
import { EVIDENCE_TABLES, type EvidenceTable } from './tables.js';

/**
 * `glasswatch audit verify`: every writer's chain is recomputed link by link, every checkpoint
 * signature is checked against the trusted keys, and every row of the evidence tables is matched
 * with the chain: a row whose content no chain record has (UPDATE, or an inserted row), a chained
 * key with no row (DELETE), or a key whose latest chained version is gone, is a finding naming the
 * table, the key and the chain sequence number. `from`/`to` limit the row checks to rows whose own
 * time (EVIDENCE_TABLES.time) is in the window; the chains are always checked whole.
 */
export interface VerifyOptions {
  from?: string | null;
  to?: string | null;
  /** Keys given out of band (--public-key); null: the keys the store recorded (weaker: say so). */
  trustedKeys?: Array<{ keyId: string; publicKeyPem: string }> | null;
  pageSize?: number;
  /** The clock retention horizons are computed against. @default Date.now() */
  nowMs?: number;
}

export interface Finding {
  writer: string | null;
  seq: number | null;
  table: string | null;
  key: string | null;
  problem: string;
}

export interface WriterSummary {
  writer: string;
  records: number;
  head: number;
  checkpoints: number;
  /** Highest sequence number covered by a valid checkpoint signature (0: none). */
  signedThrough: number;
}

export interface VerifyResult {
  ok: boolean;
  keySource: 'public-key' | 'store';
  trustedKeyIds: string[];
  writers: WriterSummary[];
  records: number;
  rowsChecked: number;
  findings: Finding[];
  warnings: string[];
}

interface Chained {
  /** The row's own time (EVIDENCE_TABLES.time), epoch ms. */
  time: number | null;
  digest: string;
  cols: string;
  version: string | null;
  writer: string;
  seq: number;
}

export async function verifyAudit(store: Store, options: VerifyOptions = {}): Promise<VerifyResult> {
  // Records still in a journal (this process's, or left by a crash) are part of the chain.
  const recovered = await settleChain(store);
  const pageSize = options.pageSize ?? 50_000;
  const trusted = options.trustedKeys ?? (await storedPublicKeys(store));
  const keyById = new Map(trusted.map((k) => [k.keyId, k.publicKeyPem]));
  const fromMs = options.from ? Date.parse(options.from) : Number.NEGATIVE_INFINITY;
  const toMs = options.to ? Date.parse(options.to) : Number.POSITIVE_INFINITY;
  const findings: Finding[] = [];
  const warnings: string[] = [];
  const summary = new Map<string, Map<string, Chained[]>>(EVIDENCE_TABLES.map((t) => [t.table, new Map()]));
  const colSets = new Map<string, string[]>();
  const writers: WriterSummary[] = [];
  let records = 0;
  const nowMs = options.nowMs ?? Date.now();
  // Records and rows older than a table's TTL are purged by ClickHouse on purpose (store.evidenceRetentionDays):
  // a chain may then begin after seq 1, and a chained row past its table's horizon may be gone.
  const auditDays = await ttlDays(store, 'audit_log');
  const horizons = new Map<string, number>();
  for (const t of EVIDENCE_TABLES) {
    const days = await ttlDays(store, t.table);
    if (days !== null) horizons.set(t.table, nowMs - days * DAY_MS);
  }
  const retentionRecorded =
    auditDays !== null &&
    Number((await query<{ n: string }>(store, "SELECT count() AS n FROM audit_log WHERE kind = 'retention'", {}))[0]?.n ?? 0) > 0;

  const chainWriters = await query<{ writer: string }>(store, 'SELECT DISTINCT writer FROM audit_log ORDER BY writer', {});
  // A writer whose signed checkpoints remain but whose records are all gone: a whole chain was deleted.
  for (const gone of await query<{ writer: string; head: string }>(
    store,
    'SELECT writer, max(seq) AS head FROM audit_checkpoints WHERE writer NOT IN (SELECT writer FROM audit_log) GROUP BY writer ORDER BY writer',
    {},
  ))
    if (!retentionRecorded)
      findings.push({
        writer: gone.writer,
        seq: 1,
        table: null,
        key: null,
        problem: `records 1..${gone.head} were signed at a checkpoint but are gone`,
      });
  for (const writer of chainWriters) {
    const w = writer.writer;
    const checkpoints = await query<{ seq: string; hash: string; key_id: string; signature: string }>(
      store,
      'SELECT seq, hash, key_id, signature FROM audit_checkpoints WHERE writer = {w:String} ORDER BY seq',
      { w },
    );
    const checkpointSeqs = new Set(checkpoints.map((c) => Number(c.seq)));
    const hashAt = new Map<number, string>();
    let expected = 1;
    let first = true;
    let prevHash = GENESIS_HASH;
    let last: Record<string, unknown> | null = null;
    let count = 0;
    let after = 0;
    let kept = 1;
    for (;;) {
      const page = await query<{ seq: string; kind: string; tbl: string; key: string; content: string; prev_hash: string; hash: string }>(
        store,
        `SELECT seq, kind, tbl, key, content, prev_hash, hash FROM audit_log
         WHERE writer = {w:String} AND seq > {after:UInt64} ORDER BY seq, hash LIMIT {n:UInt32}`,
        { w, after, n: pageSize },
      );
      if (page.length === 0) break;
      for (const r of page) {
        const seq = Number(r.seq);
        if (last && Number(last.seq) === seq) {
          // A retried insert leaves an identical copy; a different record under the same number is a forgery.
          if (canonicalJson(last) !== canonicalJson(r))
            findings.push({
              writer: w,
              seq,
              table: r.tbl || null,
              key: r.key || null,
              problem: 'two different records carry this sequence number',
            });
          continue;
        }
        last = r;
        count++;
        if (first && seq > 1 && retentionRecorded) {
          // The oldest records expired with the audit_log TTL; the chain is checked from the first kept one.
          warnings.push(`${w}: records 1..${seq - 1} expired by retention (audit_log keeps ${auditDays} days); checked from ${seq}`);
          kept = seq;
        } else if (seq !== expected) {
          findings.push({
            writer: w,
            seq: expected,
            table: null,
            key: null,
            problem: `records ${expected}..${seq - 1} are missing from the chain`,
          });
        } else if (r.prev_hash !== prevHash) {
          findings.push({
            writer: w,
            seq,
            table: r.tbl || null,
            key: r.key || null,
            problem: 'prev_hash does not match the previous record',
          });
        }
        const hash = recordHash({ writer: w, seq, prev_hash: r.prev_hash, kind: r.kind, table: r.tbl, key: r.key, content: r.content });
        if (hash !== r.hash)
          findings.push({ writer: w, seq, table: r.tbl || null, key: r.key || null, problem: 'record hash does not match its content' });
        if (checkpointSeqs.has(seq)) hashAt.set(seq, hash === r.hash ? r.hash : `recomputed:${hash}`);
        prevHash = r.hash;
        expected = seq + 1;
        first = false;
        if (r.kind === 'row') chain(summary, colSets, w, seq, r.tbl, r.key, r.content, fromMs, toMs, findings);
      }
      after = Number(page[page.length - 1]!.seq);
      if (page.length < pageSize) break;
    }
    const head = expected - 1;
    let signedThrough = 0;
    for (const c of checkpoints) {
      const seq = Number(c.seq);
      if (seq < kept) continue; // its records expired with it
      const pem = keyById.get(c.key_id);
      if (!pem) {
        findings.push({ writer: w, seq, table: null, key: null, problem: `checkpoint signed by key ${c.key_id}, which is not trusted` });
        continue;
      }
      if (!verifySignature(pem, checkpointPayload({ writer: w, seq, hash: c.hash, keyId: c.key_id }), c.signature)) {
        findings.push({ writer: w, seq, table: null, key: null, problem: `checkpoint signature is not valid for key ${c.key_id}` });
        continue;
      }
      if (seq > head) {
        findings.push({
          writer: w,
          seq: head + 1,
          table: null,
          key: null,
          problem: `records ${head + 1}..${seq} were signed at a checkpoint but are gone`,
        });
        continue;
      }
      if (hashAt.get(seq) !== c.hash) {
        findings.push({
          writer: w,
          seq,
          table: null,
          key: null,
          problem: 'the signed checkpoint hash is not the chain hash at this record',
        });
        continue;
      }
      signedThrough = Math.max(signedThrough, seq);
    }
    if (head > signedThrough)
      warnings.push(
        `${w}: records ${signedThrough + 1}..${head} are chained but not yet under a signed checkpoint (signed at the next checkpoint or clean stop)`,
      );
    writers.push({ writer: w, records: count, head, checkpoints: checkpoints.length, signedThrough });
    records += count;
  }

  let rowsChecked = 0;
  let expired = 0;
  for (const spec of EVIDENCE_TABLES) {
    const checked = await checkTable(store, spec, summary.get(spec.table)!, colSets, options, findings, horizons.get(spec.table) ?? null);
    rowsChecked += checked.rows;
    expired += checked.expired;
  }
  if (expired > 0) warnings.push(`${expired} chained row(s) are past their table's retention horizon and were not required to be present`);
  if (recovered > 0)
    warnings.push(`${recovered} chain record(s) left in the audit journal by a stopped writer were moved into audit_log first`);
  findings.sort((a, b) => (a.table ?? '').localeCompare(b.table ?? '') || (a.seq ?? 0) - (b.seq ?? 0));
  return {
    ok: findings.length === 0,
    keySource: options.trustedKeys ? 'public-key' : 'store',
    trustedKeyIds: trusted.map((k) => k.keyId),
    writers,
    records,
    rowsChecked,
    findings,
    warnings,
  };
}

function chain(
  summary: Map<string, Map<string, Chained[]>>,
  colSets: Map<string, string[]>,
  writer: string,
  seq: number,
  table: string,
  key: string,
  content: string,
  fromMs: number,
  toMs: number,
  findings: Finding[],
): void {
  const keys = summary.get(table);
  const spec = EVIDENCE_TABLES.find((t) => t.table === table);
  if (!keys || !spec) {
    findings.push({ writer, seq, table, key, problem: `chain record for ${table}, which is not an evidence table` });
    return;
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(content) as Record<string, unknown>;
  } catch {
    findings.push({ writer, seq, table, key, problem: 'chain record content is not JSON' });
    return;
  }
  const time = parsed[spec.time];
  if (typeof time === 'number' && (time < fromMs || time > toMs)) return;
  const names = Object.keys(parsed).sort();
  const sig = names.join(',');
  if (!colSets.has(sig)) colSets.set(sig, names);
  const version = spec.version === null ? null : canonicalJson(parsed[spec.version] ?? null);
  let list = keys.get(key);
  if (!list) {
    list = [];
    keys.set(key, list);
  }
  list.push({ time: typeof time === 'number' ? time : null, digest: digest(content), cols: sig, version, writer, seq });
}

async function checkTable(
  store: Store,
  spec: EvidenceTable,
  chained: Map<string, Chained[]>,
  colSets: Map<string, string[]>,
  options: VerifyOptions,
  findings: Finding[],
  horizonMs: number | null,
): Promise<{ rows: number; expired: number }> {
  const exists = await query<{ result: string | number }>(store, 'EXISTS TABLE {t:Identifier}', { t: spec.table });
  const seen = new Map<string, Set<string | null>>();
  let rows = 0;
  if (Number(exists[0]?.result ?? 0) === 1) {
    const columns = new Map<string, Column>((await tableColumns(store, spec.table)).map((c) => [c.name, c]));
    const where = [
      options.from ? '{time:Identifier} >= parseDateTime64BestEffort({from:String}, 3)' : '',
      options.to ? '{time:Identifier} <= parseDateTime64BestEffort({to:String}, 3)' : '',
    ].filter(Boolean);
    const result = await store.client.query({
      query: `SELECT * FROM {t:Identifier}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`,
      query_params: { t: spec.table, time: spec.time, from: options.from ?? '', to: options.to ?? '' },
      format: 'JSONEachRow',
    });
    for await (const batch of result.stream()) {
      for (const item of batch) {
        const row = item.json<Record<string, unknown>>();
        rows++;
        const normalizedKey = Object.fromEntries(spec.key.map((k) => [k, normalizeValue(columns.get(k)?.type ?? 'String', row[k])]));
        const key = keyOf(spec.key, normalizedKey);
        const candidates = chained.get(key);
        if (!candidates) {
          findings.push({
            writer: null,
            seq: null,
            table: spec.table,
            key,
            problem: 'row is not in the audit chain (inserted outside glasswatch)',
          });
          continue;
        }
        const digests = new Map<string, string | null>();
        let match: Chained | undefined;
        for (const c of candidates) {
          let d = digests.get(c.cols);
          if (d === undefined) {
            const content = storedContent(columns, row, colSets.get(c.cols)!);
            d = content ? digest(canonicalJson(content)) : null;
            digests.set(c.cols, d);
          }
          if (d === c.digest) {
            match = c;
            break;
          }
        }
        if (!match) {
          const latest = candidates[candidates.length - 1]!;
          findings.push({
            writer: latest.writer,
            seq: latest.seq,
            table: spec.table,
            key,
            problem: 'row differs from what the audit chain recorded (changed after it was written)',
          });
          continue;
        }
        let versions = seen.get(key);
        if (!versions) {
          versions = new Set();
          seen.set(key, versions);
        }
        versions.add(match.version);
      }
    }
  }
  const reported = new Set(findings.filter((f) => f.table === spec.table).map((f) => f.key));
  let expired = 0;
  for (const [key, candidates] of chained) {
    const versions = seen.get(key);
    const first = candidates[0]!;
    // Past the table's TTL, ClickHouse may have purged the row (and any version of it): not evidence of tampering.
    if (horizonMs !== null && candidates.every((c) => c.time !== null && c.time < horizonMs)) {
      if (!versions) expired++;
      continue;
    }
    if (!versions) {
      // Nothing matched: a changed row was reported above; a key with no row at all was deleted.
      if (!reported.has(key))
        findings.push({
          writer: first.writer,
          seq: first.seq,
          table: spec.table,
          key,
          problem: 'chained row is missing from the table (deleted)',
        });
      continue;
    }
    if (spec.version === null) continue;
    // The row readers see is the highest version: the chain's highest must still be there.
    const top = candidates.reduce((a, b) => (compareVersion(b.version, a.version) > 0 ? b : a));
    if (!versions.has(top.version))
      findings.push({
        writer: top.writer,
        seq: top.seq,
        table: spec.table,
        key,
        problem: `the latest chained version (${spec.version} ${top.version}) is missing from the table (deleted)`,
      });
  }
  return { rows, expired };
}

function compareVersion(a: string | null, b: string | null): number {
  const x = a === null ? null : (JSON.parse(a) as unknown);
  const y = b === null ? null : (JSON.parse(b) as unknown);
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  if (typeof x === 'string' && typeof y === 'string' && /^\d+$/.test(x) && /^\d+$/.test(y))
    return BigInt(x) > BigInt(y) ? 1 : BigInt(x) < BigInt(y) ? -1 : 0;
  return String(x).localeCompare(String(y));
}

const DAY_MS = 86_400_000;

/** A table's TTL in days (`TTL toDateTime(col) + toIntervalDay(N)` in its DDL); null: none, or no such table. */
async function ttlDays(store: Store, table: string): Promise<number | null> {
  const rows = await query<{ ddl: string }>(
    store,
    'SELECT create_table_query AS ddl FROM system.tables WHERE database = currentDatabase() AND name = {table:String}',
    { table },
  );
  const match = rows[0] ? /\bTTL\b.*?toIntervalDay\((\d+)\)/.exec(rows[0].ddl) : null;
  return match ? Number(match[1]) : null;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64');
}

async function query<T>(store: Store, sql: string, params: Record<string, unknown>): Promise<T[]> {
  return (await store.client.query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<T>();
}
