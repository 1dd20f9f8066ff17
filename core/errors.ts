/**
 * Coded errors. Every error that crosses a component boundary is a GlasswatchError:
 * a stable `code` (for runbooks and metrics), the pipeline `stage` it happened in, a
 * `retriable` flag that the shared retry helper obeys, and serializable context.
 */
import { redactText } from './log.js';

export type Stage = 'config' | 'receiving' | 'processing' | 'sending' | 'storing';

export interface ErrorOptions {
  stage?: Stage;
  retriable?: boolean;
  cause?: unknown;
  context?: Record<string, unknown>;
  /** What the operator should do next: printed by the CLI under the message. */
  hint?: string;
}

export class GlasswatchError extends Error {
  readonly code: string;
  readonly stage: Stage;
  readonly retriable: boolean;
  readonly context: Record<string, unknown>;
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: ErrorOptions = {}) {
    // Messages quote what went wrong (URLs, values); secrets known to the process never stay in them.
    super(redactText(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GlasswatchError';
    this.code = code;
    this.stage = options.stage ?? 'processing';
    this.retriable = options.retriable ?? false;
    this.context = options.context ?? {};
    this.hint = options.hint === undefined ? undefined : redactText(options.hint);
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      stage: this.stage,
      retriable: this.retriable,
      context: this.context,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.cause instanceof Error ? { cause: redactText(this.cause.message) } : {}),
    };
  }
}

export function isRetriable(err: unknown): boolean {
  return err instanceof GlasswatchError ? err.retriable : false;
}

/** An error as text for a log line or a stored delivery record: secrets redacted (core/log.ts). */
export function errorMessage(err: unknown): string {
  return redactText(err instanceof Error ? err.message : String(err));
}

export interface RetryOptions {
  retries?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  factor?: number;
  /** Decides whether an error is worth another try; defaults to the `retriable` flag. */
  shouldRetry?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/** Exponential backoff with full jitter (the kafkajs defaults are a sane start). */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const retries = options.retries ?? 5;
  const initial = options.initialDelayMs ?? 300;
  const max = options.maxDelayMs ?? 30_000;
  const factor = options.factor ?? 2;
  const shouldRetry = options.shouldRetry ?? isRetriable;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= retries || !shouldRetry(err)) throw err;
      const ceiling = Math.min(max, initial * factor ** attempt);
      const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
      options.onRetry?.(err, attempt + 1, delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
