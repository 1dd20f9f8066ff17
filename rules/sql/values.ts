/**
 * IR values → SQL predicates over a resolved field (see fields.ts), mirroring
 * rules/engine/match-values.ts case by case. Every predicate is a non-nullable UInt8.
 */

import { parseCidr } from '../engine/cidr.js';
import type { CompareOp, StringPart, TimePart, ValueIR } from '../engine/ir.js';
import { plainText } from '../engine/sigma-string.js';
import type { FieldResolver, FieldSql } from './fields.js';
import type { Params } from './params.js';
import { re2Pattern } from './regex.js';

/** `let name = value in body`: ClickHouse has no let, a one-element arrayMap is one. */
export const bind = (name: string, value: string, body: string): string => `arrayMap(${name} -> ${body}, [${value}])[1]`;

const OPS: Record<CompareOp | 'eq', string> = { lt: '<', lte: '<=', gt: '>', gte: '>=', eq: '=' };

/** Sigma wildcard parts → a LIKE pattern (`*`→`%`, `?`→`_`, literal `\ % _` escaped). */
export function likePattern(parts: StringPart[], fold: (s: string) => string): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'string') out += fold(p).replace(/[\\%_]/g, (c) => `\\${c}`);
    else if ('wildcard' in p) out += p.wildcard === '*' ? '%' : '_';
    else throw new Error(`unresolved placeholder %${p.placeholder}% (load the rules with a placeholders map)`);
  }
  return out;
}

/** JS whitespace and line terminators, as `String.prototype.trim` and `Number()` strip them. */
const JS_SPACE =
  '[\\\\t\\\\n\\\\x{0B}\\\\f\\\\r \\\\x{A0}\\\\x{1680}\\\\x{2000}-\\\\x{200A}\\\\x{2028}\\\\x{2029}\\\\x{202F}\\\\x{205F}\\\\x{3000}\\\\x{FEFF}]';

/** Digits of a 0x/0o/0b literal folded in Float64 (exact below 2^53). */
const radix = (s: string, base: number): string =>
  `arrayFold((acc, c) -> acc * ${base} + toFloat64(if(c <= 57, c - 48, bitOr(c, 32) - 87)), arrayMap(c -> toUInt8(c), arrayMap(ch -> ascii(ch), splitByRegexp('', substring(${s}, 3)))), toFloat64(0))`;

/**
 * The evaluator's `numericValue`: a JSON number, or a non-blank string read by JS
 * `Number()` (whitespace trimmed; decimal with optional sign/exponent, `Infinity`,
 * unsigned 0x/0o/0b literals). NULL otherwise.
 */
export function numericSql(t: string): string {
  const s = `replaceRegexpAll(JSONExtractString(${t}), '^${JS_SPACE}+|${JS_SPACE}+$', '')`;
  const dec = `match(s, '^[+-]?([0-9]+\\\\.?[0-9]*|\\\\.[0-9]+)([eE][+-]?[0-9]+)?$')`;
  const overflow = `if(match(s, '[eE]-'), toFloat64(0), if(startsWith(s, '-'), -inf, inf))`;
  const fromString = `multiIf(s = '', NULL, ${dec}, coalesce(toFloat64OrNull(s), ${overflow}), match(s, '^[+-]?Infinity$'), if(startsWith(s, '-'), -inf, inf), match(s, '^0[xX][0-9a-fA-F]+$'), ${radix('s', 16)}, match(s, '^0[oO][0-7]+$'), ${radix('s', 8)}, match(s, '^0[bB][01]+$'), ${radix('s', 2)}, NULL)`;
  return `multiIf(substring(${t}, 1, 1) = '"', ${bind('s', s, fromString)}, substring(${t}, 1, 1) IN ('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'), toFloat64OrNull(${t}), NULL)`;
}

/** Epoch ms of a leaf as the evaluator's timePart reads it (numbers: s < 1e11 ≤ ms; ISO-8601 strings). */
function timestampSql(t: string): string {
  const n = `toFloat64OrNull(${t})`;
  const fromNumber = `fromUnixTimestamp64Milli(toInt64(if(${n} < 1e11, ${n} * 1000, ${n})), 'UTC')`;
  // The ISO forms audit logs use; V8's legacy Date.parse formats (local time) are not reproduced.
  const iso = `'^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\\\.[0-9]+)?)?(Z|z|[+-][0-9]{2}:?[0-9]{2})?)?$'`;
  const str = `JSONExtractString(${t})`;
  const fromString = `if(match(trimBoth(${str}), ${iso}), parseDateTime64BestEffortOrNull(trimBoth(${str}), 3, 'UTC'), NULL)`;
  const h = `substring(${t}, 1, 1)`;
  return `multiIf(${h} = '"', ${fromString}, ${h} IN ('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'), ${fromNumber}, NULL)`;
}

const TIME_PARTS: Record<TimePart, string> = {
  minute: 'toMinute',
  hour: 'toHour',
  day: 'toDayOfMonth',
  week: 'toISOWeek',
  month: 'toMonth',
  year: 'toYear',
};

/** IPv4 text → UInt32, exactly the evaluator's `\d{1,3}` x4, each ≤ 255 (NULL otherwise). */
const ipv4Sql = (s: string): string =>
  `if(match(${s}, '^[0-9]{1,3}\\\\.[0-9]{1,3}\\\\.[0-9]{1,3}\\\\.[0-9]{1,3}$') AND arrayAll(o -> toUInt32(o) <= 255, splitByChar('.', ${s})), arrayFold((acc, o) -> acc * 256 + toUInt32(o), splitByChar('.', ${s}), toUInt64(0)), NULL)`;

/**
 * IPv6 text → FixedString(16) with the evaluator's grammar: zone cut at `%`, 1–4 hex
 * digits per group, at most one `::`, an embedded dotted IPv4 at the end (rewritten to
 * two groups first, as the evaluator does), 8 groups or fewer than 8 with `::`.
 */
function ipv6Sql(s: string): string {
  const noZone = `splitByChar('%', ${s})[1]`;
  const last = `splitByChar(':', a)[-1]`;
  const v4 = bind('v', ipv4Sql(last), `if(v IS NULL, '', concat(hex(toUInt16(intDiv(v, 65536))), ':', hex(toUInt16(v % 65536))))`);
  const rewritten = `if(position(${last}, '.') > 0, if(${ipv4Sql(last)} IS NULL, '', concat(substring(a, 1, length(a) - length(${last})), ${v4})), a)`;
  const group = '[0-9A-Fa-f]{1,4}';
  const full = `'^(${group}:){7}${group}$'`;
  const halves = `'^((${group}:)*${group})?::((${group}:)*${group})?$'`;
  const count = `(length(splitByRegexp('::', b)) = 2 AND length(arrayFilter(x -> x != '', splitByRegexp('[:]+', b))) <= 7)`;
  const valid = `(b != '' AND (match(b, ${full}) OR (match(b, ${halves}) AND ${count})))`;
  return bind('a', noZone, bind('b', rewritten, `if(${valid}, IPv6StringToNumOrNull(b), NULL)`));
}

function cidrSql(network: string, params: Params, s: string): string {
  const net = parseCidr(network);
  if (typeof net === 'string') throw new Error(net);
  if (net.family === 4) {
    const [hi = 0, lo = 0] = net.words;
    const mask = net.prefix === 0 ? 0 : (0xffffffff << (32 - net.prefix)) >>> 0;
    const value = ((hi << 16) | lo) >>> 0;
    const inNet = (ip: string): string => `(bitAnd(${ip}, ${params.add(mask, 'UInt64')}) = ${params.add(value, 'UInt64')})`;
    // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) counts as its IPv4 address.
    const mapped = bind(
      'm',
      ipv6Sql(s),
      `coalesce(substring(m, 1, 12) = unhex('00000000000000000000FFFF') AND ${inNet('reinterpretAsUInt32(reverse(substring(m, 13, 4)))')}, 0)`,
    );
    return `if(position(${s}, ':') > 0, ${mapped}, coalesce(${inNet(ipv4Sql(s))}, 0))`;
  }
  // Bounds computed here from the parsed network: the host bits all 0, then all 1.
  const bound = (ones: boolean): string => {
    let remaining = net.prefix;
    const words = net.words.map((w) => {
      const take = Math.max(0, Math.min(16, remaining));
      remaining -= 16;
      const mask = take === 0 ? 0 : (0xffff << (16 - take)) & 0xffff;
      return ((w & mask) | (ones ? ~mask & 0xffff : 0)).toString(16);
    });
    return `IPv6StringToNum(${params.str(words.join(':'))})`;
  };
  return `if(position(${s}, ':') > 0, ${bind('m', ipv6Sql(s), `coalesce(m >= ${bound(false)} AND m <= ${bound(true)}, 0)`)}, 0)`;
}

const exists = (arr: string, lambda: string): string => `arrayExists(${lambda}, ${arr})`;

export class ValueCompiler {
  constructor(
    private readonly params: Params,
    private readonly fields: FieldResolver,
  ) {}

  /** Several plain case-insensitive equalities (OR) as one `has()` lookup. */
  equalitySet(field: FieldSql, texts: string[]): string {
    return exists(field.strings, `s -> has(${this.params.strs(texts.map((t) => t.toLowerCase()))}, lowerUTF8(s))`);
  }

  value(v: ValueIR, field: FieldSql): string {
    const p = this.params;
    switch (v.kind) {
      case 'string': {
        const fold = v.cased ? (s: string) => s : (s: string) => s.toLowerCase();
        const subject = v.cased ? 's' : 'lowerUTF8(s)';
        const text = plainText(v.parts);
        if (text !== null) return exists(field.strings, `s -> ${subject} = ${p.str(fold(text))}`);
        const like = likePattern(v.parts, fold);
        if (like === '%') return `notEmpty(${field.strings})`;
        return exists(field.strings, `s -> like(${subject}, ${p.str(like)})`);
      }
      case 'number':
        return exists(field.leaves, `t -> coalesce(${numericSql('t')} = ${p.num(v.value)}, 0)`);
      case 'boolean':
        return exists(
          field.leaves,
          `t -> t = ${p.str(String(v.value))} OR (substring(t, 1, 1) = '"' AND lowerUTF8(JSONExtractString(t)) = ${p.str(String(v.value))})`,
        );
      case 'null':
        return `(empty(${field.values}) OR has(${field.values}, 'null'))`;
      case 'exists':
        return v.value ? `notEmpty(${field.values})` : `empty(${field.values})`;
      case 'regex':
        return exists(field.strings, `s -> match(s, ${p.str(re2Pattern(v.pattern, v.flags))})`);
      case 'cidr':
        return exists(field.leaves, `t -> substring(t, 1, 1) = '"' AND ${bind('s', 'JSONExtractString(t)', cidrSql(v.network, p, 's'))}`);
      case 'compare':
        return exists(field.leaves, `t -> coalesce(${numericSql('t')} ${OPS[v.op]} ${p.num(v.value)}, 0)`);
      case 'timepart':
        return exists(field.leaves, `t -> coalesce(${TIME_PARTS[v.part]}(${timestampSql('t')}) ${OPS[v.op]} ${p.num(v.value)}, 0)`);
      case 'fieldref': {
        const other = this.fields.field(v.field);
        const fold = v.cased ? (s: string) => s : (s: string) => `lowerUTF8(${s})`;
        const rel = { equals: 'equals', contains: 'positionUTF8', startswith: 'startsWith', endswith: 'endsWith' }[v.mode];
        const test = rel === 'positionUTF8' ? `positionUTF8(${fold('a')}, ${fold('b')}) > 0` : `${rel}(${fold('a')}, ${fold('b')})`;
        return exists(field.strings, `a -> ${exists(other.strings, `b -> ${test}`)}`);
      }
      case 'anyOf':
        return `(${v.values.map((x) => this.value(x, field)).join(' OR ') || '0'})`;
    }
  }
}
