import { GlasswatchError, type Stage } from '../core/errors.js';

/** Report codes: `BG_REPORT_USAGE` (bad name, dates or options), `BG_REPORT_QUERY`, `BG_REPORT_DELIVERY`. */
export class ReportError extends GlasswatchError {
  constructor(
    code: `BG_REPORT_${string}`,
    message: string,
    options: { stage?: Stage; cause?: unknown; hint?: string; retriable?: boolean; context?: Record<string, unknown> } = {},
  ) {
    super(code, message, { stage: options.stage ?? 'processing', ...options });
  }
}
