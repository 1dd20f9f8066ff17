import type { Bus } from '../../core/bus/types.js';
import { ConfigError, Fields, type GlasswatchConfig } from '../../core/config.js';
import type { Logger } from '../../core/log.js';
import type { Store } from '../../core/store/client.js';
import { alertContextOf } from '../alerts/config.js';
import { type DeliveryLedger, MemoryDeliveryLedger, StoreDeliveryLedger } from '../alerts/dispatcher.js';
import { type AlertOutput, KafkaAlertOutput } from '../alerts/outputs.js';
import { alertOutputs, revocationPolicies } from '../build.js';
import { IdentityRegistry } from '../identities.js';
import { MemoryRevocationLedger, type RevocationLedger, StoreRevocationLedger } from '../revoke/dispatcher.js';
import type { RevocationTarget } from '../revoke/types.js';
import { AlertAppender } from './alert-stage.js';
import { DeliveryWorker } from './delivery-worker.js';
import { ALERT_MAX_AGE_MINUTES, deliveryGroup, policiesOf, revocationGroup, revocationRetryOf } from './policy.js';
import { RevocationWorker } from './revocation-worker.js';

export { AlertAppender } from './alert-stage.js';
export { DeliveryWorker } from './delivery-worker.js';
export { RevocationAppender } from './revocation-stage.js';
export { RevocationWorker } from './revocation-worker.js';

/**
 * Which alerts and revocation orders appended by this process are not handled yet, so a stopping
 * `glasswatch start` first lets its own workers deliver what it detected.
 */
export class DrainTracker {
  readonly #alerts = new Map<string, Set<string>>();
  readonly #orders = new Set<string>();
  outputs: readonly string[] = [];
  alertAppended(id: string): void {
    if (this.outputs.length) this.#alerts.set(id, new Set(this.outputs));
  }
  alertDone(id: string, output: string): void {
    const left = this.#alerts.get(id);
    if (!left) return;
    left.delete(output);
    if (left.size === 0) this.#alerts.delete(id);
  }
  orderAppended(id: string): void {
    this.#orders.add(id);
  }
  orderDone(id: string): void {
    this.#orders.delete(id);
  }
  get pending(): number {
    return this.#alerts.size + this.#orders.size;
  }
}

export interface StagesOptions {
  config: GlasswatchConfig;
  bus: Bus;
  store: Store | null;
  log: Logger;
  /** Consumer groups are `<prefix>-deliver-<output>` and `<prefix>-revoke-<target>`. @default "glasswatch" */
  groupPrefix?: string;
  /** Run the delivery workers. @default true */
  deliver?: boolean;
  /** Run the revocation workers. @default true */
  revoke?: boolean;
  tracker?: DrainTracker;
  /**
   * The revocation ledger to record outcomes in (default: the store's, or a new in-memory one).
   * Without a store, the in-process detector passes its own, so it can read the outcomes it verifies.
   */
  revocationLedger?: RevocationLedger;
}

export interface RunningStages {
  delivery: DeliveryWorker[];
  revocation: RevocationWorker[];
  /** Appends the alerts the workers raise (delivery_failed, revocation outcomes). */
  appender: AlertAppender;
  /** Waits until this process's appended alerts and orders are handled, at most `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
}

export function deliveryLedgerOf(store: Store | null): DeliveryLedger {
  return store ? new StoreDeliveryLedger(store) : new MemoryDeliveryLedger();
}

export function revocationLedgerOf(store: Store | null): RevocationLedger {
  return store ? new StoreRevocationLedger(store) : new MemoryRevocationLedger();
}

/**
 * The outputs delivery workers serve. A Kafka output on the alerts topic itself is the stage:
 * the detector already appends every alert there (native), so no worker re-publishes into it.
 */
export function workerOutputs(config: GlasswatchConfig, bus: Bus, identityIds: ReadonlySet<string>): AlertOutput[] {
  const outputs = alertOutputs(config, bus, null, identityIds);
  return outputs.filter((o) => {
    if (!(o instanceof KafkaAlertOutput) || o.topic !== config.topics.alerts) return true;
    const r = o.routing;
    const filtered = r?.filter && Object.keys(r.filter).length > 0;
    if ((r?.format && r.format !== 'native') || filtered)
      throw new ConfigError(
        config.file,
        'alerts.kafka',
        `topic ${o.topic} is the alerts stage topic (topics.alerts): it carries every alert in native form, so format and filters cannot apply; give alerts.kafka its own topic`,
      );
    return false;
  });
}

/** Starts the delivery workers (one per output) and the revocation workers (one per target kind in use). */
export async function startStages(o: StagesOptions): Promise<RunningStages> {
  const { config, bus, store, log } = o;
  const prefix = o.groupPrefix ?? 'glasswatch';
  // As for the detector and sink groups (cli/roles.ts roleGroup): pipelines sharing a Kafka cluster
  // never share a worker group, or kafkajs' assigner would starve one pipeline's output.
  const suffix = o.config.topics.events === 'glasswatch.events' ? '' : `.${o.config.topics.events}`;
  const registry = IdentityRegistry.fromConfig(config.sections.identities, config.file);
  const ids = new Set(registry.identities.map((i) => i.id));
  const deliveryLedger = deliveryLedgerOf(store);
  const tracker = o.tracker;
  const alertSection = Fields.of(config.file, 'alerts', config.sections.alerts);
  const appender = new AlertAppender(bus, config.topics.alerts, deliveryLedger, log.child({ component: 'alert-stage' }), {
    context: alertContextOf(alertSection, new Map()),
    ...(tracker ? { onAppend: (a) => tracker.alertAppended(a.id) } : {}),
  });
  const raise = (a: Parameters<AlertAppender['dispatch']>[0]) => appender.dispatch(a);
  const delivery: DeliveryWorker[] = [];
  const revocation: RevocationWorker[] = [];
  try {
    if (o.deliver !== false) {
      const outputs = workerOutputs(config, bus, ids);
      const names = outputs.map((x) => x.name);
      const dup = names.find((n, i) => names.indexOf(n) !== i);
      if (dup)
        throw new ConfigError(
          config.file,
          'alerts',
          `two outputs are named "${dup}": each output needs its own name (its consumer group and delivery ledger)`,
        );
      const policies = policiesOf(
        Fields.of(config.file, 'alerts.delivery', alertSection.value.delivery ?? {}),
        'outputs',
        ALERT_MAX_AGE_MINUTES,
        names,
      );
      if (tracker) tracker.outputs = names;
      for (const output of outputs)
        delivery.push(
          await new DeliveryWorker({
            bus,
            topic: config.topics.alerts,
            output,
            ledger: deliveryLedger,
            log: log.child({ component: 'deliver', output: output.name }),
            policy: policies.policyOf(output.name),
            groupId: `${deliveryGroup(prefix, output.name)}${suffix}`,
            deadLetterTopic: config.topics.deadLetters,
            raise,
            ...(tracker ? { onDone: (id: string, out: string) => tracker.alertDone(id, out) } : {}),
          }).start(),
        );
    }
    if (o.revoke !== false) {
      const policies = revocationPolicies(registry, config);
      const retry = revocationRetryOf(config);
      const kinds = new Set<RevocationTarget['kind']>();
      // A followed link (revocation.followLinked) may need a target kind no identity revokes through itself.
      for (const p of policies.values()) for (const t of [...p.targets, ...(p.follow ?? [])]) kinds.add(t.kind);
      const ledger = o.revocationLedger ?? revocationLedgerOf(store);
      for (const kind of kinds)
        revocation.push(
          await new RevocationWorker({
            bus,
            topic: config.topics.revocations,
            target: kind,
            policies,
            ledger,
            log: log.child({ component: 'revoke', target: kind }),
            policy: retry.policyOf(kind),
            groupId: `${revocationGroup(prefix, kind)}${suffix}`,
            deadLetterTopic: config.topics.deadLetters,
            raise,
            ...(tracker ? { onDone: (id: string) => tracker.orderDone(id) } : {}),
          }).start(),
        );
    }
  } catch (err) {
    await Promise.allSettled([...delivery, ...revocation].map((w) => w.stop()));
    throw err;
  }
  return {
    delivery,
    revocation,
    appender,
    drain: async (timeoutMs) => {
      const until = Date.now() + timeoutMs;
      while (tracker && tracker.pending > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      return !tracker || tracker.pending === 0;
    },
    stop: async () => {
      await Promise.allSettled(revocation.map((w) => w.stop()));
      await Promise.allSettled(delivery.map((w) => w.stop()));
      for (const w of delivery) await w.o.output.close?.();
    },
  };
}
