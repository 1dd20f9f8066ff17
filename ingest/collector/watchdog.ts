/**
 * The silence watchdog. A collector that stops delivering (expired token, moved bucket, apiserver
 * no longer sending) is as dangerous as a missed detection, and nothing else would notice: after
 * `silenceSeconds` without an event it publishes one `pipeline.silence` alert and logs it. The
 * alert id is derived from the collector name and the silence start, so a restarted watchdog (or
 * a replay of the alerts topic) never raises a second alert for the same silence.
 */
import type { Bus } from '../../core/bus/types.js';
import { errorMessage } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/log.js';
import { type Alert, pipelineAlert } from '../../detectors/alerts/alert.js';
import { pipelineAlertMessage } from '../../detectors/stages/alert-stage.js';
import type { DeliveryListener } from './publisher.js';

export interface WatchdogOptions {
  /** Collector name, as in metrics and alerts. */
  collector: string;
  bus: Bus;
  /** Topic the alert is published to, as a stage message the delivery workers take. @default "glasswatch.alerts" */
  alertsTopic?: string;
  /** Seconds without a delivered event before the alert. */
  silenceSeconds: number;
  logger?: Logger;
  /** How often silence is checked. @default min(silenceSeconds / 4, 30) seconds */
  checkIntervalMs?: number;
  now?: () => number;
}

export class SilenceWatchdog implements DeliveryListener {
  readonly #o: WatchdogOptions;
  readonly #now: () => number;
  readonly #log: Logger;
  #silentSince: number;
  #alerted = false;
  #timer: NodeJS.Timeout | null = null;
  /** Alerts raised so far (tests, CLI summary). */
  readonly raised: Alert[] = [];

  constructor(options: WatchdogOptions) {
    if (!(options.silenceSeconds > 0)) throw new RangeError(`silenceSeconds must be positive, got ${options.silenceSeconds}`);
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#log = options.logger ?? silentLogger;
    this.#silentSince = this.#now();
  }

  /** Starts the periodic check; the silence clock starts now (a collector starting up is not silent yet). */
  start(): void {
    if (this.#timer) return;
    this.#silentSince = this.#now();
    const every = this.#o.checkIntervalMs ?? Math.min((this.#o.silenceSeconds * 1000) / 4, 30_000);
    this.#timer = setInterval(() => void this.check(), every);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  delivered(events: number): void {
    if (events <= 0) return;
    if (this.#alerted)
      this.#log.info('collector delivering again', {
        collector: this.#o.collector,
        silentSince: new Date(this.#silentSince).toISOString(),
      });
    this.#silentSince = this.#now();
    this.#alerted = false;
  }

  /** Raises the alert if the collector is silent for too long; returns it (or null). Called by the timer. */
  async check(): Promise<Alert | null> {
    const now = this.#now();
    if (this.#alerted || now - this.#silentSince < this.#o.silenceSeconds * 1000) return null;
    this.#alerted = true;
    const since = new Date(this.#silentSince).toISOString();
    const alert: Alert = pipelineAlert({
      type: 'pipeline.silence',
      severity: 'high',
      key: [this.#o.collector, since],
      reason: `no events from collector "${this.#o.collector}" since ${since}`,
      time: since,
      detectedAt: new Date(now).toISOString(),
      summary: `Collector ${this.#o.collector} delivered nothing for ${Math.round((now - this.#silentSince) / 1000)} s (threshold ${this.#o.silenceSeconds} s)`,
    });
    this.raised.push(alert);
    this.#log.warn('pipeline.silence', {
      collector: this.#o.collector,
      alertId: alert.id,
      silentSince: since,
      silenceSeconds: this.#o.silenceSeconds,
    });
    try {
      await this.#o.bus.publish(this.#o.alertsTopic ?? 'glasswatch.alerts', [pipelineAlertMessage(alert)]);
    } catch (err) {
      // Try again at the next check: an alert about a broken pipeline must not be lost to the same breakage.
      this.#alerted = false;
      this.raised.pop();
      this.#log.error('pipeline.silence alert not published', { collector: this.#o.collector, error: errorMessage(err) });
      return null;
    }
    return alert;
  }
}
