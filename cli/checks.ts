import type { GlasswatchConfig } from '../core/config.js';
import { GlasswatchError } from '../core/errors.js';
import { IdentityRegistry } from '../detectors/identities.js';

/**
 * A detector without break-glass identities judges nothing and would report an all-clear:
 * that is a configuration mistake, so it stops the command (exit 2) before anything runs.
 */
export function requireIdentities(config: GlasswatchConfig, command: string): void {
  const registry = IdentityRegistry.fromConfig(config.sections.identities, config.file);
  if (registry.identities.length > 0) return;
  throw new GlasswatchError(
    'BG_DETECTOR_NO_IDENTITIES',
    `${config.file ?? 'no --config given'}: no break-glass identities are defined, so the detector would judge nothing`,
    {
      stage: 'config',
      hint:
        command === 'replay'
          ? 'add an identities: list to the config (see README "Identities"), or drop --tickets/--alerts-out/--deliver to only normalize'
          : 'add an identities: list to the config (see README "Identities")',
    },
  );
}
