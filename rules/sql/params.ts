/**
 * Query parameters. Every value that comes from a rule (strings, numbers, field path
 * segments, regexes) goes through here and reaches ClickHouse as a typed `{pN:Type}`
 * parameter, never as SQL text: a rule file can therefore not change the query shape.
 */
export class Params {
  readonly values: Record<string, unknown> = {};
  private readonly seen = new Map<string, string>();
  private next = 0;

  constructor(private readonly prefix = 'p') {}

  /** A placeholder for `value` typed `type`; identical (type, value) pairs share one parameter. */
  add(value: unknown, type: string): string {
    const key = `${type}\u0000${JSON.stringify(value)}`;
    const known = this.seen.get(key);
    if (known) return known;
    const name = `${this.prefix}${this.next++}`;
    this.values[name] = value;
    const placeholder = `{${name}:${type}}`;
    this.seen.set(key, placeholder);
    return placeholder;
  }

  str(value: string): string {
    return this.add(value, 'String');
  }

  strs(values: readonly string[]): string {
    return this.add([...values], 'Array(String)');
  }

  /** Float64 parameters are sent as JSON numbers; non-finite values never come from the IR. */
  num(value: number): string {
    if (!Number.isFinite(value)) throw new Error(`non-finite number ${value} cannot be a query parameter`);
    return this.add(value, 'Float64');
  }
}
