/**
 * The ECS field reference itself, for validating our ECS documents in tests: `ecs_flat` of
 * Elastic's `@elastic/ecs` npm package (generated from the elastic/ecs release, same version).
 * Fetched once with `npm pack` into the git-ignored test/.venv/npm/ (not a project dependency:
 * only the tests read it). Environment: ECS_NPM_SPEC (default @elastic/ecs@9.4.0).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface EcsField {
  type: string;
  normalize: string[];
  allowed_values?: { name: string; expected_event_types?: string[] }[];
}
export type EcsFlat = Record<string, EcsField>;

const CACHE = join(dirname(fileURLToPath(import.meta.url)), '..', '.venv', 'npm');

export function loadEcsFlat(): { version: string; fields: EcsFlat } {
  const spec = process.env.ECS_NPM_SPEC ?? '@elastic/ecs@9.4.0';
  const dir = join(CACHE, spec.replace(/[@/]/g, '_'));
  const file = join(dir, 'package', 'build', 'commonjs', 'ecs_flat.js');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    try {
      execFileSync('npm', ['pack', spec, '--silent', '--pack-destination', dir], { stdio: 'pipe', timeout: 120_000 });
      const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
      if (!tgz) throw new Error('npm pack wrote no tarball');
      execFileSync('tar', ['xzf', tgz], { cwd: dir, stdio: 'pipe' });
    } catch (err) {
      throw new Error(`fetching ${spec} with npm pack into ${dir} failed: ${(err as Error).message}. Is the npm registry reachable?`);
    }
  }
  const require = createRequire(import.meta.url);
  const pkg = require(join(dir, 'package', 'package.json')) as { version: string };
  return { version: pkg.version, fields: (require(file) as { EcsFlat: EcsFlat }).EcsFlat };
}

const NUMBER = new Set(['long', 'integer', 'short', 'byte', 'float', 'half_float', 'scaled_float', 'double', 'unsigned_long']);
const STRING = new Set(['keyword', 'constant_keyword', 'wildcard', 'text', 'match_only_text', 'version']);
const IP = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+)$/;

/**
 * Errors of an ECS document (empty: valid): every leaf is an ECS field of the right type, arrays
 * only where ECS normalizes to an array, allowed values respected, and each `event.type` expected
 * by one of the document's `event.category` values. Keys under `customPrefixes` are skipped.
 */
export function validateEcs(fields: EcsFlat, doc: Record<string, unknown>, customPrefixes: string[] = []): string[] {
  const errors: string[] = [];
  const leaf = (name: string, v: unknown): void => {
    const f = fields[name];
    if (!f) return void errors.push(`${name}: not an ECS field`);
    const values = Array.isArray(v) ? v : [v];
    if (Array.isArray(v) && !f.normalize.includes('array')) errors.push(`${name}: ECS does not make it an array`);
    for (const x of values) {
      const ok =
        f.type === 'date'
          ? typeof x === 'string' && !Number.isNaN(Date.parse(x))
          : f.type === 'ip'
            ? typeof x === 'string' && IP.test(x)
            : NUMBER.has(f.type)
              ? typeof x === 'number'
              : STRING.has(f.type)
                ? typeof x === 'string'
                : f.type === 'boolean'
                  ? typeof x === 'boolean'
                  : true;
      if (!ok) errors.push(`${name}: ${JSON.stringify(x)} is not ${f.type}`);
      if (f.allowed_values && !f.allowed_values.some((a) => a.name === x)) errors.push(`${name}: "${x}" is not an allowed value`);
    }
  };
  const walk = (prefix: string, o: Record<string, unknown>): void => {
    for (const [k, v] of Object.entries(o)) {
      const name = prefix ? `${prefix}.${k}` : k;
      if (customPrefixes.some((p) => name === p || name.startsWith(`${p}.`))) continue;
      if (v === null || v === undefined) continue;
      if (typeof v === 'object' && !Array.isArray(v) && fields[name]?.type !== 'object' && fields[name]?.type !== 'flattened')
        walk(name, v as Record<string, unknown>);
      else leaf(name, v);
    }
  };
  walk('', doc);
  const event = (doc.event ?? {}) as { category?: string[]; type?: string[] };
  const expected = new Set(
    (event.category ?? []).flatMap((c) => fields['event.category']?.allowed_values?.find((a) => a.name === c)?.expected_event_types ?? []),
  );
  for (const t of event.type ?? [])
    if (!expected.has(t)) errors.push(`event.type: "${t}" is expected by none of the categories ${event.category}`);
  return errors;
}
