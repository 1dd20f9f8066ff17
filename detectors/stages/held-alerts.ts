import type { Bus, Subscription } from '../../core/bus/types.js';
import { errorMessage, GlasswatchError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { CompleteAlert } from '../alerts/alert.js';
import { dropStaleGroup } from '../tickets/service.js';

/**
 * The alerts a delivery worker holds for a session's next grouped update (e-mail, Slack, Teams):
 * their offsets are committed when they are held, so they are kept in a compacted topic of the
 * worker's own (`<worker group>-held`, keyed by alert id, a tombstone once sent) before that commit.
 * A worker that starts again reads it back and sends what a kill -9 left held. kafkajs fetches from
 * the resolved offset, so holding the commit back instead would re-deliver every later alert.
 */
export class HeldAlerts {
  readonly topic: string;
  readonly #bus: Bus;
  readonly #log: Logger;

  constructor(bus: Bus, workerGroup: string, log: Logger) {
    this.#bus = bus;
    this.topic = `${workerGroup}-held`;
    this.#log = log;
  }

  /** Everything held and not sent when the previous worker stopped (nothing on the in-process bus). */
  async restore(timeoutMs = 60_000): Promise<CompleteAlert[]> {
    const bus = this.#bus;
    if (bus.kind !== 'kafka' || !bus.endOffsets) return [];
    await bus.ensureTopic?.(this.topic, { compacted: true });
    const ends = await bus.endOffsets(this.topic);
    const wanted = [...ends].filter(([, end]) => BigInt(end) > 0n);
    if (wanted.length === 0) return [];
    const held = new Map<string, CompleteAlert>();
    const position = new Map<number, bigint>();
    const reader = `${this.topic}-reader`;
    if (bus.deleteGroups) await dropStaleGroup(bus.deleteGroups.bind(bus), reader);
    const sub: Subscription = await bus.subscribe({
      topics: [this.topic],
      groupId: reader,
      fromBeginning: true,
      handler: async (m) => {
        position.set(m.partition, BigInt(m.offset) + 1n);
        if (m.key === null) return;
        if (m.value.length === 0) {
          held.delete(m.key);
          return;
        }
        try {
          held.set(m.key, JSON.parse(m.value.toString('utf8')) as CompleteAlert);
        } catch (err) {
          this.#log.error('held alert is not JSON; ignored', { topic: this.topic, key: m.key, error: errorMessage(err) });
        }
      },
    });
    try {
      const deadline = Date.now() + timeoutMs;
      while (wanted.some(([p, end]) => (position.get(p) ?? 0n) < BigInt(end))) {
        if (Date.now() > deadline) {
          throw new GlasswatchError('BG_DELIVERY_HELD', `held alerts of ${this.topic} not read back within ${timeoutMs} ms`, {
            stage: 'sending',
            retriable: true,
          });
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await sub.stop();
      await bus.deleteGroups?.([reader]).catch(() => {});
    }
    return [...held.values()];
  }

  /** Resolves once the alert is on the topic: only then may its offset be committed. */
  async hold(a: CompleteAlert): Promise<void> {
    if (this.#bus.kind !== 'kafka') return;
    await this.#bus.publish(this.topic, [{ key: a.id, value: JSON.stringify(a) }]);
  }

  /** Sent: forgotten. A tombstone lost to a crash only means one more ledger lookup at the next start. */
  async release(ids: readonly string[]): Promise<void> {
    if (this.#bus.kind !== 'kafka' || ids.length === 0) return;
    await this.#bus
      .publish(
        this.topic,
        ids.map((id) => ({ key: id, value: '', tombstone: true })),
      )
      .catch((err: unknown) => this.#log.warn('held alert tombstones not written', { topic: this.topic, error: errorMessage(err) }));
  }
}
