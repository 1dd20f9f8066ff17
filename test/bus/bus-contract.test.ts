// The same contract suite against both implementations of the bus seam.
import { createBus } from '../../core/bus/index.js';
import { KafkaBus } from '../../core/bus/kafka.js';
import { MemoryBus } from '../../core/bus/memory.js';
import { busContract } from './contract.js';
import { assertKafkaReachable, deleteTopics, kafkaTestOptions } from './helpers.js';

busContract({ name: 'MemoryBus', create: () => new MemoryBus() });

busContract({
  name: 'KafkaBus',
  ready: assertKafkaReachable,
  create: () => new KafkaBus(kafkaTestOptions()),
  cleanup: deleteTopics,
});
// The pipeline's in-process bus drops what its groups consumed: the same contract holds.
busContract({ name: 'MemoryBus (pipeline, consumed messages dropped)', create: () => createBus({ kind: 'memory' }) });
