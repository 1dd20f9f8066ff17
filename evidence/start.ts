import { hostname } from 'node:os';
import type { GlasswatchConfig } from '../core/config.js';
import { packageVersion } from '../core/paths.js';
import type { Store } from '../core/store/client.js';
import { canonicalJson } from './canonical.js';
import { AuditChain } from './chain.js';
import { evidenceConfig } from './config.js';
import { configSha256, rulePackSha256 } from './fingerprint.js';
import { journalDirOf } from './journal.js';
import { loadEvidenceKeys } from './keys.js';

/**
 * The chain writer of this process: the command and the instance id (`detect@eu-1`), so the
 * detector, delivery and revocation processes of one instance each keep their own chain. Without an
 * instance id (replay, demo) the process is its own writer (host-pid), a new chain per run.
 */
export function writerId(command: string, instance?: string): string {
  return `${command}@${instance ?? process.env.GLASSWATCH_INSTANCE ?? `${hostname()}-${process.pid}`}`;
}

/**
 * Attaches this process's audit chain to the store (every evidence row inserted through it is
 * chained from then on) and records the start: command, version, config and rule-pack hashes.
 * The closing checkpoint is signed when the store closes. One call per command, after migrate.
 */
export async function startEvidence(
  store: Store,
  config: GlasswatchConfig,
  options: { command: string; instance?: string },
): Promise<AuditChain> {
  if (store.evidence instanceof AuditChain) return store.evidence;
  const settings = evidenceConfig(config);
  const keys = await loadEvidenceKeys({ signingKeyFile: settings.signingKey, store });
  const journalDir = journalDirOf(store);
  const chain = await AuditChain.open(store, {
    writer: settings.writer ?? writerId(options.command, options.instance),
    keys,
    checkpointEvery: settings.checkpointEvery,
    // chDB: appends go to a journal beside the store, drained each second (evidence/journal.ts).
    journal: journalDir === null ? null : { dir: journalDir },
  });
  store.evidence = chain;
  const content = {
    command: options.command,
    version: packageVersion(),
    host: hostname(),
    pid: process.pid,
    config_sha256: configSha256(config),
    rule_pack_sha256: rulePackSha256(config),
    key_id: keys.keyId,
  };
  await chain.append([{ kind: 'start', table: '', key: '', content: canonicalJson(content) }]);
  return chain;
}
