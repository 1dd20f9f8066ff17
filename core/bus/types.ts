/**
 * The bus seam. Everything that moves events between stages goes through `Bus`,
 * never through a Kafka client directly, so kafkajs (unmaintained since 2023) can be
 * replaced by another client by writing one more implementation of this file's types.
 */
export interface OutgoingMessage {
  /** Partitioning key: per-key order is guaranteed, across keys it is not. */
  key: string | null;
  value: Buffer | string;
  headers?: Record<string, string>;
  /**
   * Explicit partition, for state co-partitioned with its input (a changelog entry of input
   * partition p goes to partition p of the changelog).
   */
  partition?: number;
  /** Sent with a null value, which deletes the key from a compacted topic; readers see an empty value. */
  tombstone?: boolean;
}

/** One partition of a topic, as the group assigned it to this member. */
export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface BusMessage {
  topic: string;
  partition: number;
  /** Position in the partition, as a decimal string (Kafka offsets exceed 2^53). */
  offset: string;
  key: string | null;
  value: Buffer;
  headers: Record<string, string>;
  /** Broker or append time, epoch milliseconds. */
  timestamp: number;
}

export interface SubscribeOptions {
  topics: string[];
  /** Consumers with the same group share the partitions; each message is handled by one of them. */
  groupId: string;
  fromBeginning?: boolean;
  /**
   * Called for each message, in order per partition. The message's offset is committed
   * only after the handler resolved (at-least-once). A handler that throws a
   * non-retriable error, or keeps failing after `maxAttempts`, sends the message to
   * `deadLetterTopic` with the reason, and consumption goes on.
   */
  handler: (message: BusMessage) => Promise<void>;
  deadLetterTopic?: string;
  /**
   * For sinks that buffer (the store writes in batches): when set, offsets of handled
   * messages are committed only after this resolved. It is called at the end of every
   * fetched batch, and at least every `afterBatchEvery` messages; if it throws, nothing
   * since the last successful call is committed and the messages are delivered again.
   */
  afterBatch?: () => Promise<void>;
  /** @default 1000 */
  afterBatchEvery?: number;
  /**
   * Called with a fetched batch of one partition before its first message is handled (the in-process
   * bus: what is waiting, at most 500), so a handler's per-message lookups can be made once per
   * batch. Only an optimization: a failure is ignored.
   */
  beforeBatch?: (messages: readonly BusMessage[]) => Promise<void>;
  /**
   * Partitions handled at once by this member (order stays per partition). For stages whose handler
   * waits on a peer (an output, a revocation target): one slow call then holds one partition, not all.
   * The in-process bus has one partition per topic. @default the bus's `partitionsConsumedConcurrently` (1)
   */
  partitionsConcurrently?: number;
  /**
   * Kafka only: the broker holds a fetch until this many bytes are there (or `fetchMaxWaitMs` passed).
   * For a sink whose cost is per insert: fewer, larger batches when traffic is light. @default 1
   */
  fetchMinBytes?: number;
  /** Kafka only: the longest the broker holds a fetch for `fetchMinBytes`. @default the bus's `maxWaitTimeMs` */
  fetchMaxWaitMs?: number;
  /** Attempts per message before it is dead-lettered. @default 3 */
  maxAttempts?: number;
  /**
   * Called with the member's whole assignment every time the group assigns partitions
   * (Kafka: after every rebalance; memory: once, partition 0 of each topic). No message of
   * the assignment is handed to `handler` before it resolved: stateful stages restore the
   * state of the partitions they gained here. If it throws, it is called again before the
   * next message.
   */
  onAssignment?: (partitions: TopicPartition[]) => Promise<void>;
}

export interface Subscription {
  /** Stops consuming after the message in hand; committed offsets stay committed. */
  stop(): Promise<void>;
}

export interface Bus {
  readonly kind: 'kafka' | 'memory';
  /** Resolves once every message is acknowledged by the transport (Kafka: acks=all). */
  publish(topic: string, messages: OutgoingMessage[]): Promise<void>;
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  /**
   * Creates a topic ahead of use with the given retention kind. `compacted` keeps the
   * latest message per key forever (the ticket ledger); otherwise time retention applies.
   * `copartitionedWith` gives it the partition count of that topic (a changelog of its input),
   * and fails if the topic exists with another count. `retentionMs` drops records older than it
   * (with `compacted`: the latest per key, for at most that long).
   * Optional: the in-process bus has no retention to declare.
   */
  ensureTopic?(topic: string, options: { compacted?: boolean; copartitionedWith?: string; retentionMs?: number }): Promise<void>;
  /**
   * The next offset of every partition of a topic (Kafka: the high watermark): a reader has
   * everything written so far once it handled the message before it.
   */
  endOffsets?(topic: string): Promise<Map<number, string>>;
  /**
   * Deletes consumer groups that have no members left (a per-instance group at a clean stop), so
   * restarts leave no stale groups behind. Optional: the in-process bus keeps no groups.
   */
  deleteGroups?(groupIds: string[]): Promise<void>;
  close(): Promise<void>;
}

/** Headers put on a dead-lettered message, so the original can be found and replayed. */
export const DEAD_LETTER_HEADERS = {
  reason: 'x-glasswatch-dlq-reason',
  topic: 'x-glasswatch-dlq-topic',
  partition: 'x-glasswatch-dlq-partition',
  offset: 'x-glasswatch-dlq-offset',
} as const;
