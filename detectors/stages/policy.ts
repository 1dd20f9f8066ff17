import { Fields, type GlasswatchConfig } from '../../core/config.js';

/**
 * How long a durable stage keeps trying one alert or revocation, and how fast. A message whose
 * target keeps failing is retried with exponential backoff and full jitter until it is
 * `maxAgeMs` old (counted from detection, so a restart does not reset it), then dead-lettered.
 */
export interface RetryPolicy {
  maxAgeMs: number;
  initialDelayMs: number;
  /** Bounded below Kafka's session timeout: a worker heartbeats only between attempts. */
  maxDelayMs: number;
}

/**
 * Defaults. An alert stays useful for a day: a SOC webhook down overnight is caught up in the
 * morning, well inside Kafka's 7-day default retention. A revocation stays useful while the
 * credentials it cuts can still be live: 12 h is the longest AWS role session (Okta sessions
 * default to 2 h idle); after that the revocation is reported `failed` for a human to check.
 */
export const ALERT_MAX_AGE_MINUTES = 1440;
export const REVOCATION_MAX_AGE_MINUTES = 720;
const INITIAL_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

/** A delay before attempt `attempt + 1` (0-based): uniform in [0, min(max, initial·2^attempt)] ("full jitter"). */
export function backoffMs(attempt: number, p: RetryPolicy): number {
  const ceiling = Math.min(p.maxDelayMs, p.initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(Math.random() * ceiling);
}

export interface StagePolicies {
  /** Per output name; `default` for the rest. */
  policyOf(name: string): RetryPolicy;
}

/**
 * `alerts.delivery` / `revocation.retry`: `{ maxAgeMinutes, initialDelayMs, maxDelayMs, <per>: { name: { maxAgeMinutes } } }`.
 * Names under `<per>` must exist (`known`): a typo would silently keep the default.
 */
export function policiesOf(f: Fields, per: 'outputs' | 'targets', defaultMaxAgeMinutes: number, known: readonly string[]): StagePolicies {
  f.only(['maxAgeMinutes', 'initialDelayMs', 'maxDelayMs', per]);
  const base: RetryPolicy = {
    maxAgeMs: f.number('maxAgeMinutes', defaultMaxAgeMinutes, { min: 0, max: 30 * 1440 }) * 60_000,
    initialDelayMs: f.number('initialDelayMs', INITIAL_DELAY_MS, { min: 1, max: 60_000, integer: true }),
    // Kafka evicts a member that does not heartbeat for sessionTimeoutMs (30 s): one wait plus one attempt must fit.
    maxDelayMs: f.number('maxDelayMs', MAX_DELAY_MS, { min: 1, max: 15_000, integer: true }),
  };
  const each = f.section(per);
  const own = new Map<string, RetryPolicy>();
  for (const name of Object.keys(each.value)) {
    if (!known.includes(name))
      each.fail(name, `unknown ${per === 'outputs' ? 'output' : 'revocation target'} (known: ${known.join(', ') || 'none'})`);
    const o = each.section(name).only(['maxAgeMinutes']);
    own.set(name, { ...base, maxAgeMs: o.number('maxAgeMinutes', base.maxAgeMs / 60_000, { min: 0, max: 30 * 1440 }) * 60_000 });
  }
  return { policyOf: (name) => own.get(name) ?? base };
}

/** `revocation.retry` of the config (the targets are okta, aws, k8s, webhook). */
export function revocationRetryOf(config: GlasswatchConfig): StagePolicies {
  const r = Fields.of(config.file, 'revocation', config.sections.revocation);
  return policiesOf(Fields.of(config.file, 'revocation.retry', r.value.retry ?? {}), 'targets', REVOCATION_MAX_AGE_MINUTES, [
    'okta',
    'aws',
    'k8s',
    'webhook',
  ]);
}

/** Consumer group of one output's delivery worker: output names become group-safe. */
export function deliveryGroup(prefix: string, output: string): string {
  return `${prefix}-deliver-${output.replace(/[^A-Za-z0-9._-]+/g, '_')}`;
}

export function revocationGroup(prefix: string, target: string): string {
  return `${prefix}-revoke-${target}`;
}

/** Waits `ms`, or less when `signal` aborts (a stopping worker must not sit out a 10 s backoff). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
