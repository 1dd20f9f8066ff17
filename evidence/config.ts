import { Fields, type GlasswatchConfig } from '../core/config.js';

/** The `evidence:` config section. */
export interface EvidenceConfig {
  /** PEM Ed25519 private key file (a secret); null: a key generated beside the store on first use. */
  signingKey: string | null;
  /** Chain records between signed checkpoints (a checkpoint is also signed at every clean stop). @default 1000 */
  checkpointEvery: number;
  /** This process's chain writer id; null: the process's instance id. */
  writer: string | null;
}

export function evidenceConfig(config: Pick<GlasswatchConfig, 'file' | 'sections'>): EvidenceConfig {
  const f = Fields.of(config.file, 'evidence', config.sections.evidence).only(['signingKey', 'checkpointEvery', 'writer']);
  return {
    signingKey: f.optionalString('signingKey'),
    checkpointEvery: f.number('checkpointEvery', 1000, { min: 1, max: 1_000_000, integer: true }),
    writer: f.optionalString('writer'),
  };
}
