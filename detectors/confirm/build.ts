import type { Transporter } from 'nodemailer';
import { ConfigError, type GlasswatchConfig } from '../../core/config.js';
import type { Logger } from '../../core/log.js';
import type { Store } from '../../core/store/client.js';
import type { IdentityRegistry } from '../identities.js';
import { type ConfirmPolicy, type ConfirmVia, confirmSettingsOf } from './config.js';
import { ConfirmationGate } from './gate.js';
import { questionSenders } from './senders.js';

/**
 * The gate for the identities with `confirm:`, validated at the edge (errors name the field). Live
 * only: in a replay nobody can answer for last month's use, so replay revokes as configured.
 */
export function confirmationGateOf(o: {
  registry: IdentityRegistry;
  config: GlasswatchConfig;
  store: Store | null;
  log: Logger;
  clock: 'replay' | 'live';
  transport: () => Transporter;
  pollMs?: number;
}): ConfirmationGate | null {
  const policies = new Map<string, ConfirmPolicy>();
  const vias = new Set<ConfirmVia>();
  o.registry.identities.forEach((identity, n) => {
    if (!identity.confirm) return;
    if (identity.revocation.mode !== 'auto')
      throw new ConfigError(o.config.file, `identities[${n}].confirm`, 'needs revocation.mode: auto (a "no", or no answer, revokes)');
    if (!o.store && o.clock === 'live')
      throw new ConfigError(
        o.config.file,
        `identities[${n}].confirm`,
        'needs a store: the question, its answer and its timeout are kept there',
      );
    policies.set(identity.id, identity.confirm);
    vias.add(identity.confirm.via);
  });
  const settings = confirmSettingsOf(o.config, vias);
  if (!settings || o.clock !== 'live' || !o.store) return null;
  let transport: Transporter | null = null;
  return new ConfirmationGate({
    store: o.store,
    settings,
    policies,
    senders: questionSenders(settings, () => {
      transport ??= o.transport();
      return transport;
    }),
    log: o.log.child({ component: 'confirm' }),
    ...(o.pollMs === undefined ? {} : { pollMs: o.pollMs }),
  });
}
