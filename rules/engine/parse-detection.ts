/**
 * Detection parsing: search-identifier bodies and `field|modifier…: value` items into
 * the IR. All modifiers are applied here, left to right as the spec says, so the IR
 * holds only final tests (see ir.ts).
 */
import { parseCidr } from './cidr.js';
import { SIGMA_ERROR_CODES as C, fail } from './errors.js';
import type { CompareOp, DetectionIR, ItemIR, StringPart, TimePart, ValueIR } from './ir.js';
import { compileLinearRegex, RegexSyntaxError } from './regex/automaton.js';
import {
  addWildcards,
  base64,
  base64Offsets,
  hasWildcards,
  isPlaceholder,
  normaliseParts,
  parseSigmaString,
  plainText,
  toUtf16,
  type Utf16Variant,
  windashVariants,
} from './sigma-string.js';

export interface DetectionOptions {
  /** Values for `%name%` placeholders under `expand`; each value is a Sigma string (wildcards allowed). */
  placeholders?: Record<string, string[]>;
  /** Values still allowed in the document being parsed (the loader gives one per document). */
  valueBudget?: { left: number };
}

/**
 * Most values one document may expand to through its modifiers (`windash` makes 5^n per
 * value, `expand` up to 10,000, `base64offset` 3). The largest SigmaHQ rule has 4,432;
 * the cap stops a small hostile rule from expanding into millions of matchers.
 */
export const MAX_VALUES_PER_DOCUMENT = 100_000;

/** Leaf values of a value (an `anyOf` counts its alternatives). */
function valueCount(v: ValueIR): number {
  if (v.kind !== 'anyOf') return 1;
  let n = 0;
  for (const x of v.values) n += valueCount(x);
  return n;
}

const TIME_PARTS = new Set<string>(['minute', 'hour', 'day', 'week', 'month', 'year']);
const COMPARE = new Set<string>(['lt', 'lte', 'gt', 'gte']);
const RE_FLAGS: Record<string, 'i' | 'm' | 's'> = { i: 'i', ignorecase: 'i', m: 'm', multiline: 'm', s: 's', dotall: 's' };
const UTF16: Record<string, Utf16Variant> = { utf16le: 'utf16le', wide: 'utf16le', utf16be: 'utf16be', utf16: 'utf16' };

/** Every modifier of Sigma v2.1 (plus the pySigma long names of the regex flags). */
export const KNOWN_MODIFIERS: ReadonlySet<string> = new Set([
  'contains',
  'startswith',
  'endswith',
  'all',
  'exists',
  'cased',
  'neq',
  'windash',
  're',
  'base64',
  'base64offset',
  'cidr',
  'expand',
  'fieldref',
  ...COMPARE,
  ...TIME_PARTS,
  ...Object.keys(RE_FLAGS),
  ...Object.keys(UTF16),
]);

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function parseDetection(value: unknown, path: string, options: DetectionOptions = {}): DetectionIR {
  if (isMap(value)) {
    const keys = Object.keys(value);
    if (keys.length === 0) fail(C.value, 'a search-identifier must not be an empty map', path);
    const items = keys.map((key) => parseItem(key, value[key], `${path}.${key}`, options));
    return items.length === 1 ? (items[0] as ItemIR) : { kind: 'allOf', items, path };
  }
  if (Array.isArray(value)) {
    if (value.length === 0) fail(C.value, 'a search-identifier must not be an empty list', path);
    const keywords = value.filter((v) => !isMap(v) && !Array.isArray(v));
    const maps = value.map((v, i) => ({ v, i })).filter(({ v }) => isMap(v) || Array.isArray(v));
    const branches: DetectionIR[] = maps.map(({ v, i }) => parseDetection(v, `${path}[${i}]`, options));
    // Scalars of a list are one keyword item with OR-linked values.
    if (keywords.length) branches.unshift(parseItem('', keywords, path, options));
    return branches.length === 1 ? (branches[0] as DetectionIR) : { kind: 'anyOf', items: branches, path };
  }
  if (value === null || value === undefined) fail(C.value, 'a search-identifier needs a value (keyword search without value)', path);
  return parseItem('', value, path, options);
}

export function parseItem(key: string, rawValue: unknown, path: string, options: DetectionOptions): ItemIR {
  const [fieldName = '', ...modifiers] = key.split('|');
  const field = fieldName === '' ? null : fieldName;
  for (const m of modifiers) {
    if (!KNOWN_MODIFIERS.has(m)) fail(C.unknownModifier, `unknown modifier '${m}'`, path);
  }
  const item: ItemIR = { kind: 'item', field, modifiers, linking: 'or', values: [], negated: false, path };
  let raws = Array.isArray(rawValue) ? rawValue : [rawValue];
  if (Array.isArray(rawValue) && rawValue.length === 0) {
    if (field === null) fail(C.value, 'a keyword search needs at least one value', path);
    if (modifiers.length) fail(C.value, 'an empty value list cannot take modifiers', path);
    item.values = [{ kind: 'null' }]; // pySigma: `field: []` means the field is null
    return item;
  }
  if (raws.length > 1 && raws.some((v) => v === null)) fail(C.value, "'null' must not appear inside a value list", path);
  if (raws.length === 1 && raws[0] === null && field === null) fail(C.value, 'a keyword search needs a value', path);
  raws = raws.map((v, i) => checkScalar(v, raws.length > 1 ? `${path}[${i}]` : path));
  const expand = modifiers.includes('expand');
  let values: ValueIR[] = raws.map((v) => initialValue(v, modifiers[0], expand, path));
  const budget = options.valueBudget ?? { left: MAX_VALUES_PER_DOCUMENT };
  if (values.length > budget.left) overBudget(path);
  modifiers.forEach((mod, index) => {
    const ctx: ModifierContext = { mod, index, item, path, options, count: raws.length };
    // Counted while mapping, so a bomb is stopped before its expansion is built.
    let made = 0;
    values = values.map((v) => {
      const out = applyModifier(v, ctx);
      made += valueCount(out);
      if (made > budget.left) overBudget(path);
      return out;
    });
  });
  budget.left -= values.reduce((n, v) => n + valueCount(v), 0);
  item.values = values;
  return item;
}

function overBudget(path: string): never {
  return fail(C.limit, `the modifiers expand the values of this document to more than ${MAX_VALUES_PER_DOCUMENT} values`, path);
}

function checkScalar(v: unknown, path: string): unknown {
  if (isMap(v) || Array.isArray(v)) fail(C.value, 'a detection value must be a scalar, not a map or list', path);
  if (typeof v === 'number' && !Number.isFinite(v)) fail(C.value, 'numbers must be finite', path);
  return v;
}

function initialValue(v: unknown, first: string | undefined, expand: boolean, path: string): ValueIR {
  if (typeof v === 'string') {
    if (first === 're') return { kind: 'regex', pattern: v, flags: { i: false, m: false, s: false } };
    if (first === 'cidr') {
      const net = parseCidr(v);
      if (typeof net === 'string') fail(C.cidr, net, path);
      return { kind: 'cidr', network: v, prefix: net.prefix, family: net.family };
    }
    if (first === 'exists') return { kind: 'string', parts: [v], cased: false }; // checked by `exists`
    return { kind: 'string', parts: normaliseParts(parseSigmaString(v, expand)), cased: false };
  }
  if (typeof v === 'number') return { kind: 'number', value: v };
  if (typeof v === 'boolean') return { kind: 'boolean', value: v };
  if (v === null) return { kind: 'null' };
  return fail(C.value, `unsupported value type ${typeof v}`, path);
}

interface ModifierContext {
  mod: string;
  index: number;
  item: ItemIR;
  path: string;
  options: DetectionOptions;
  count: number;
}

/** Byte strings produced by `wide`/`utf16*`: `base64` must encode them as latin1. */
const byteStrings = new WeakSet<StringPart[]>();

function applyModifier(value: ValueIR, ctx: ModifierContext): ValueIR {
  const { mod, index, item, path } = ctx;
  const bad = (why: string): never => fail(C.modifier, `modifier '${mod}': ${why}`, path);
  if (value.kind === 'anyOf' && !['all', 'neq', 'cased'].includes(mod)) {
    return { kind: 'anyOf', values: value.values.map((v) => applyModifier(v, ctx)) };
  }
  if (value.kind === 'null' && mod !== 'neq') bad('cannot be applied to null');
  switch (mod) {
    case 'all':
      if (ctx.count < 2) bad('needs a list of at least two values (spec: single values must not use all)');
      item.linking = 'and';
      return value;
    case 'neq':
      item.negated = true;
      return value;
    case 'contains':
    case 'startswith':
    case 'endswith': {
      const start = mod !== 'startswith';
      const end = mod !== 'endswith';
      if (value.kind === 'regex') return value; // regexes are substring searches already
      if (value.kind === 'fieldref') return { ...value, mode: mod };
      if (value.kind === 'number') return { kind: 'string', parts: addWildcards([String(value.value)], start, end), cased: false };
      if (value.kind !== 'string') return bad(`cannot be applied to a ${value.kind} value`);
      const parts = addWildcards(value.parts, start, end);
      if (byteStrings.has(value.parts)) byteStrings.add(parts);
      return { ...value, parts };
    }
    case 're':
      if (index !== 0) bad('must be the first modifier');
      return value.kind === 'regex' ? checkRegex(value, path) : bad('needs a string value');
    case 'cidr':
      if (index !== 0) bad('must be the first modifier');
      return value.kind === 'cidr' ? value : bad('needs a string value');
    case 'exists': {
      if (index !== 0) bad('must be the first modifier');
      if (item.field === null) bad('needs a field name');
      if (ctx.count !== 1) bad('needs a single boolean value');
      const text = value.kind === 'string' ? plainText(value.parts)?.toLowerCase() : undefined;
      if (value.kind === 'boolean') return { kind: 'exists', value: value.value };
      if (text === 'yes' || text === 'no') return { kind: 'exists', value: text === 'yes' }; // YAML 1.1 booleans
      return bad('needs a boolean value');
    }
    case 'cased':
      if (value.kind === 'fieldref') return { ...value, cased: true };
      if (value.kind === 'anyOf') return { kind: 'anyOf', values: value.values.map((v) => applyModifier(v, ctx)) };
      return value.kind === 'string' ? { ...value, cased: true } : bad('applies to strings only');
    case 'base64':
    case 'base64offset': {
      if (value.kind !== 'string') return bad('applies to strings only');
      if (hasWildcards(value.parts) || value.parts.some(isPlaceholder)) bad('wildcards are not allowed in encoded values');
      const text = plainText(value.parts) ?? '';
      const bytes = byteStrings.has(value.parts);
      if (mod === 'base64') return { kind: 'string', parts: [base64(text, bytes)], cased: value.cased };
      return { kind: 'anyOf', values: base64Offsets(text, bytes).map((s) => ({ kind: 'string', parts: [s], cased: value.cased })) };
    }
    case 'windash': {
      if (value.kind !== 'string') return bad('applies to strings only');
      const variants = windashVariants(value.parts);
      if (typeof variants === 'string') return bad(variants);
      if (variants.length === 1) return value;
      return { kind: 'anyOf', values: variants.map((parts) => ({ kind: 'string', parts, cased: value.cased })) };
    }
    case 'expand':
      return expandPlaceholders(value, ctx);
    case 'fieldref': {
      if (value.kind !== 'string') return bad('needs a field name');
      const name = plainText(value.parts);
      if (name === null) return bad('the referenced field name must not contain wildcards');
      return { kind: 'fieldref', field: name, mode: 'equals', cased: false };
    }
    default:
      break;
  }
  if (Object.hasOwn(UTF16, mod)) {
    if (value.kind !== 'string') return bad('applies to strings only');
    const parts = toUtf16(value.parts, UTF16[mod] as Utf16Variant);
    if (typeof parts === 'string') return bad(parts);
    byteStrings.add(parts);
    return { ...value, parts };
  }
  if (Object.hasOwn(RE_FLAGS, mod)) {
    if (value.kind !== 'regex') return bad("regex flags must follow 're'");
    return checkRegex({ ...value, flags: { ...value.flags, [RE_FLAGS[mod] as string]: true } }, path);
  }
  if (COMPARE.has(mod)) {
    if (value.kind === 'timepart') return { ...value, op: mod as CompareOp };
    if (value.kind !== 'number') return bad('needs a number (a quoted string is not a number)');
    return { kind: 'compare', op: mod as CompareOp, value: value.value };
  }
  if (TIME_PARTS.has(mod)) {
    if (value.kind !== 'number' || !Number.isInteger(value.value)) return bad('needs an integer');
    return { kind: 'timepart', part: mod as TimePart, op: 'eq', value: value.value };
  }
  return bad('is not supported here');
}

function checkRegex(value: ValueIR & { kind: 'regex' }, path: string): ValueIR {
  try {
    compileLinearRegex(value.pattern, value.flags);
  } catch (err) {
    if (err instanceof RegexSyntaxError) fail(C.regex, err.message, path);
    // Any other compile failure (e.g. the automaton's size budget) rejects this rule only.
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : String(err);
    if (code === C.regex && message.includes(value.pattern)) fail(C.regex, message, path);
    fail(C.regex, `pattern /${value.pattern}/ cannot be compiled: ${message}${typeof code === 'string' ? ` (${code})` : ''}`, path);
  }
  return value;
}

function expandPlaceholders(value: ValueIR, ctx: ModifierContext): ValueIR {
  const table = ctx.options.placeholders ?? {};
  // Own properties only: `%__proto__%` or `%constructor%` must not resolve to Object.prototype members.
  const lookup = (name: string): string[] => {
    const found: unknown = Object.hasOwn(table, name) ? table[name] : undefined;
    if (!Array.isArray(found) || found.length === 0)
      fail(C.placeholder, `placeholder %${name}% is not defined in the configuration`, ctx.path);
    if (!found.every((v) => typeof v === 'string'))
      fail(C.placeholder, `placeholder %${name}% must be a list of strings in the configuration`, ctx.path);
    return found as string[];
  };
  if (value.kind === 'regex') {
    // Placeholder values are inserted as an escaped alternation: they are data, not regex.
    const pattern = value.pattern.replace(
      /(?<!\\)%([A-Za-z0-9_.-]+)%/g,
      (_, name: string) =>
        `(?:${lookup(name)
          .map((v) => v.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'))
          .join('|')})`,
    );
    return checkRegex({ ...value, pattern }, ctx.path);
  }
  if (value.kind !== 'string') return fail(C.modifier, "modifier 'expand' applies to strings and regexes only", ctx.path);
  let combos: StringPart[][] = [[]];
  for (const part of value.parts) {
    if (!isPlaceholder(part)) {
      combos = combos.map((c) => [...c, part]);
      continue;
    }
    const options = lookup(part.placeholder).map((v) => parseSigmaString(v));
    combos = combos.flatMap((c) => options.map((o) => [...c, ...o]));
    if (combos.length > 10_000) fail(C.placeholder, 'placeholder expansion exceeds 10000 values', ctx.path);
  }
  const values: ValueIR[] = combos.map((parts) => ({ kind: 'string', parts: normaliseParts(parts), cased: value.cased }));
  return values.length === 1 ? (values[0] as ValueIR) : { kind: 'anyOf', values };
}
