/**
 * The OCSF schema itself, for validating our Detection Findings in tests.
 *
 * No PyPI package carries OCSF 1.8.0 (there is no `ocsf-schema` distribution; the newest schema
 * bundled by any package is 1.7.0, in pydantic-ocsf 3.0.0 as `ocsf/schemas/v1_7_0.json`: the
 * ocsf-schema repository's own dictionary, events and objects, uncompiled). That file is
 * installed into the project-local test venv (the one moto uses, see moto.ts) on first use,
 * and `validateOcsf` resolves it the way the OCSF server does: `extends` chains, dictionary
 * types and enums, requirements and `at_least_one`/`just_one` constraints. Profiles are
 * `$include`d files not in the bundle, so a profile attribute is reported as unknown.
 *
 * Environment: OCSF_PIP_SPEC (default pydantic-ocsf==3.0.0), plus moto.ts's PYTHON / MOTO_VENV.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureMoto } from './moto.js';

type Attr = { type?: string; is_array?: boolean; enum?: Record<string, unknown>; requirement?: string };
type Def = {
  uid?: number;
  category?: string;
  extends?: string;
  attributes?: Record<string, Attr | string[]>;
  constraints?: Record<string, string[]>;
};
interface Schema {
  version: string;
  events: Record<string, Def>;
  categories_meta: { attributes: Record<string, { uid: number }> };
  objects: Record<string, Def>;
  dictionary: { attributes: Record<string, Attr>; types: { attributes: Record<string, { type?: string; regex?: string }> } };
}

function schemaFile(venv: string): string | null {
  const lib = join(venv, 'lib');
  if (!existsSync(lib)) return null;
  for (const py of readdirSync(lib)) {
    const f = join(lib, py, 'site-packages', 'ocsf', 'schemas', 'v1_7_0.json');
    if (existsSync(f)) return f;
  }
  return null;
}

/** Installs (first use) and loads the OCSF schema. */
export function loadOcsfSchema(): Schema {
  const bin = ensureMoto();
  const venv = join(bin, '..', '..');
  let file = schemaFile(venv);
  if (!file) {
    const spec = process.env.OCSF_PIP_SPEC ?? 'pydantic-ocsf==3.0.0';
    // --no-deps: only the schema JSON is used, not the pydantic models.
    const pip = spawnSync(join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', '--no-deps', spec], {
      encoding: 'utf8',
    });
    file = schemaFile(venv);
    if (pip.status !== 0 || !file)
      throw new Error(`pip install '${spec}' into ${venv} failed (exit ${pip.status}): ${pip.stderr.slice(-1500)}. Is PyPI reachable?`);
  }
  return JSON.parse(readFileSync(file, 'utf8')) as Schema;
}

function resolve(defs: Record<string, Def>, name: string): { attributes: Record<string, Attr>; constraints: Record<string, string[]> } {
  const chain: Def[] = [];
  for (let n: string | undefined = name; n && defs[n]; n = defs[n]?.extends) chain.unshift(defs[n] as Def);
  if (!chain.length) throw new Error(`OCSF schema has no "${name}"`);
  const attributes: Record<string, Attr> = {};
  let constraints: Record<string, string[]> = {};
  for (const d of chain) {
    for (const [k, v] of Object.entries(d.attributes ?? {})) {
      if (k.startsWith('$') || Array.isArray(v)) continue;
      attributes[k] = { ...attributes[k], ...v };
    }
    if (d.constraints) constraints = d.constraints;
  }
  return { attributes, constraints };
}

const COMPUTED = /^[a-z_]+\.(class|category|type)_uid$/;

/** Errors of `value` as an instance of event class `className` (empty: valid). */
export function validateOcsf(schema: Schema, value: Record<string, unknown>, className: string): string[] {
  const errors: string[] = [];
  const primitive = schema.dictionary.types.attributes;
  const check = (v: unknown, attr: Attr, path: string): void => {
    const t = attr.type ?? 'string_t';
    if (primitive[t]) {
      const base = primitive[t]?.type ?? t;
      const ok =
        base === 'string_t'
          ? typeof v === 'string'
          : base === 'integer_t' || base === 'long_t' || base === 'timestamp_t'
            ? Number.isInteger(v)
            : base === 'float_t'
              ? typeof v === 'number'
              : base === 'boolean_t'
                ? typeof v === 'boolean'
                : true;
      if (!ok) errors.push(`${path}: ${JSON.stringify(v)} is not ${t}`);
      const regex = primitive[t]?.regex;
      if (ok && regex && typeof v === 'string' && !new RegExp(regex).test(v)) errors.push(`${path}: "${v}" does not match ${t}`);
      if (attr.enum && !COMPUTED.test(path) && !Object.hasOwn(attr.enum, String(v)))
        errors.push(`${path}: ${JSON.stringify(v)} not in enum ${Object.keys(attr.enum)}`);
      return;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      errors.push(`${path}: must be a ${t} object`);
      return;
    }
    // `object` is OCSF's free-form object (e.g. `unmapped`): any attributes.
    if (t === 'object') return;
    object(v as Record<string, unknown>, resolve(schema.objects, t), path);
  };
  const object = (o: Record<string, unknown>, def: ReturnType<typeof resolve>, path: string): void => {
    for (const [k, v] of Object.entries(o)) {
      const local = def.attributes[k];
      const dict = schema.dictionary.attributes[k];
      if (!local || !dict) {
        errors.push(`${path}.${k}: not an attribute of this class/object`);
        continue;
      }
      const attr: Attr = { ...dict, ...local };
      if (dict.is_array) {
        if (!Array.isArray(v)) errors.push(`${path}.${k}: must be an array`);
        else for (const [i, x] of v.entries()) check(x, attr, `${path}.${k}[${i}]`);
      } else if (Array.isArray(v)) errors.push(`${path}.${k}: must not be an array`);
      else check(v, attr, `${path}.${k}`);
    }
    for (const [k, a] of Object.entries(def.attributes))
      if (a.requirement === 'required' && o[k] === undefined) errors.push(`${path}.${k}: required`);
    const one = def.constraints.at_least_one;
    if (one && !one.some((k) => o[k] !== undefined)) errors.push(`${path}: needs at least one of ${one.join(', ')}`);
    const just = def.constraints.just_one;
    if (just && just.filter((k) => o[k] !== undefined).length !== 1) errors.push(`${path}: needs exactly one of ${just.join(', ')}`);
  };
  object(value, resolve(schema.events, className), className);
  // The schema compiler derives these three (their enums in the source are placeholders).
  let category: string | undefined;
  for (let n: string | undefined = className; n && !category; n = schema.events[n]?.extends) category = schema.events[n]?.category;
  const categoryUid = category ? schema.categories_meta.attributes[category]?.uid : undefined;
  const classUid = categoryUid === undefined ? undefined : categoryUid * 1000 + (schema.events[className]?.uid ?? 0);
  if (value.category_uid !== categoryUid) errors.push(`category_uid: ${value.category_uid} is not ${categoryUid} (${category})`);
  if (value.class_uid !== classUid) errors.push(`class_uid: ${value.class_uid} is not ${classUid}`);
  if (classUid !== undefined && value.type_uid !== classUid * 100 + Number(value.activity_id))
    errors.push(`type_uid: ${value.type_uid} is not class_uid*100+activity_id`);
  return errors;
}
