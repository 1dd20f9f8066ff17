import { GlasswatchError } from '../errors.js';
import { KafkaBus, type KafkaBusOptions } from './kafka.js';
import { MemoryBus } from './memory.js';
import type { Bus } from './types.js';

export { KafkaBus, type KafkaBusOptions, type KafkaSubscribeOptions, resolveKafkaBusOptions } from './kafka.js';
export { MemoryBus } from './memory.js';
export * from './types.js';

/** Which bus to run: in-process (embedded mode, tests) or Apache Kafka. */
export type BusConfig = { kind: 'memory' } | ({ kind: 'kafka' } & KafkaBusOptions);

/** Builds the bus from configuration; Kafka options are validated here, once. */
export function createBus(config: BusConfig): Bus {
  switch (config.kind) {
    case 'memory':
      // The pipeline's bus: what every group has consumed is dropped, or a long run would hold it all.
      return new MemoryBus({ keepConsumed: false });
    case 'kafka': {
      const { kind: _kind, ...options } = config;
      return new KafkaBus(options);
    }
    default:
      throw new GlasswatchError(
        'BG_BUS_CONFIG_INVALID',
        `bus option 'kind' must be 'memory' or 'kafka', got ${JSON.stringify((config as { kind?: unknown }).kind)}`,
        {
          stage: 'config',
          context: { field: 'kind' },
        },
      );
  }
}
