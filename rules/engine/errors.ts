/**
 * Coded errors of the Sigma engine. Every load-time problem becomes a SigmaRuleError
 * that names the file, the rule id (when the document has one) and the path inside
 * the rule (`detection.selection.eventName|foo`), so that an operator can find the
 * offending line without re-reading the engine.
 */
import { GlasswatchError } from '../../core/errors.js';

export const SIGMA_ERROR_CODES = {
  /** The YAML text is not well-formed (syntax, tabs, ...). */
  yaml: 'BG_RULES_YAML',
  /** A mapping repeats a key: the last one silently winning would change detection logic. */
  duplicateKey: 'BG_RULES_DUPLICATE_KEY',
  /** A document is empty or holds only comments. */
  emptyDocument: 'BG_RULES_EMPTY_DOCUMENT',
  /** A mandatory field is missing or a field has the wrong type or format. */
  field: 'BG_RULES_FIELD',
  /** A modifier that Sigma v2.1 does not define. */
  unknownModifier: 'BG_RULES_UNKNOWN_MODIFIER',
  /** A known modifier used where the spec forbids it (order, type, value). */
  modifier: 'BG_RULES_MODIFIER',
  /** A detection value of the wrong shape (map as value, null inside a list, ...). */
  value: 'BG_RULES_VALUE',
  /** The condition does not parse or names an undefined search-identifier. */
  condition: 'BG_RULES_CONDITION',
  /** A v1 construct removed in v2: pipe aggregation, `timeframe`, `near`. */
  deprecated: 'BG_RULES_DEPRECATED_SYNTAX',
  /** A `%placeholder%` under `expand` that the configuration does not resolve. */
  placeholder: 'BG_RULES_UNRESOLVED_PLACEHOLDER',
  /** A regular expression that is invalid or needs a non-linear feature. */
  regex: 'BG_RULES_REGEX',
  /** An invalid CIDR network (bad syntax or host bits set). */
  cidr: 'BG_RULES_CIDR',
  /** A correlation rule that is malformed. */
  correlation: 'BG_RULES_CORRELATION',
  /** A filter (meta-filter) document that is malformed. */
  filter: 'BG_RULES_FILTER',
  /** A correlation or filter names a rule that was not loaded. */
  reference: 'BG_RULES_REFERENCE',
  /** `action: global/reset/repeat` when legacy collections are off, or an unknown action. */
  collection: 'BG_RULES_COLLECTION',
  /** The file cannot be read. */
  io: 'BG_RULES_IO',
  /**
   * A document over a safety limit (file or document size, YAML aliases, nesting depth):
   * rule files can come from people the detector watches, so parsing is bounded.
   */
  limit: 'BG_RULES_LIMIT',
  /** An unexpected failure while loading one document; only that document is rejected. */
  internal: 'BG_RULES_INTERNAL',
} as const;

export type SigmaErrorCode = (typeof SIGMA_ERROR_CODES)[keyof typeof SIGMA_ERROR_CODES];

export interface SigmaErrorLocation {
  file?: string | undefined;
  /** 0-based index of the YAML document in a multi-document file (shown 1-based). */
  document?: number | undefined;
  ruleId?: string | undefined;
  /** Path inside the rule document, dot-separated: `detection.selection.eventName|foo`. */
  path?: string | undefined;
}

export class SigmaRuleError extends GlasswatchError {
  readonly file: string | undefined;
  readonly document: number | undefined;
  readonly ruleId: string | undefined;
  readonly path: string | undefined;
  /** The message without the location prefix: what the histogram groups on. */
  readonly reason: string;

  constructor(code: SigmaErrorCode, reason: string, where: SigmaErrorLocation = {}, cause?: unknown) {
    super(code, formatLocated(reason, where), {
      stage: 'config',
      cause,
      context: { file: where.file, ruleId: where.ruleId, path: where.path },
    });
    this.name = 'SigmaRuleError';
    this.file = where.file;
    this.document = where.document;
    this.ruleId = where.ruleId;
    this.path = where.path;
    this.reason = reason;
  }

  /** The same error with the location completed by an outer layer (the loader knows the file). */
  locate(where: SigmaErrorLocation): SigmaRuleError {
    return new SigmaRuleError(
      this.code as SigmaErrorCode,
      this.reason,
      {
        file: this.file ?? where.file,
        document: this.document ?? where.document,
        ruleId: this.ruleId ?? where.ruleId,
        path: this.path ?? where.path,
      },
      this.cause,
    );
  }
}

function formatLocated(reason: string, where: SigmaErrorLocation): string {
  const parts: string[] = [];
  if (where.file) parts.push(where.file);
  if (where.document !== undefined) parts.push(`document ${where.document + 1}`);
  if (where.ruleId) parts.push(`rule ${where.ruleId}`);
  if (where.path) parts.push(where.path);
  return parts.length ? `${parts.join(': ')}: ${reason}` : reason;
}

/** Shorthand used by the parsers: throw a located rule error. */
export function fail(code: SigmaErrorCode, reason: string, path?: string): never {
  throw new SigmaRuleError(code, reason, { path });
}
