import { type LoadedRules, type LoadOptions, loadRules, SigmaEngine } from '../../rules/engine/index.js';

/** Indents a YAML block so it can sit under `detection:`. */
function indent(text: string, by: number): string {
  const lines = text.replace(/^\n+|\s+$/g, '').split('\n');
  const min = Math.min(...lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)?.[0].length ?? 0));
  return lines.map((l) => ' '.repeat(by) + l.slice(min)).join('\n');
}

/** A complete rule document around a detection block (YAML text, condition included). */
export function ruleYaml(detection: string, head = ''): string {
  return `title: Test rule
id: 5b2c7a1e-1111-4a4a-9b9b-000000000001
${head}logsource:
    product: aws
    service: cloudtrail
detection:
${indent(detection, 4)}
`;
}

export function load(text: string, options: LoadOptions = {}): LoadedRules {
  return loadRules([{ text, file: 'inline.yml' }], options);
}

/** Compiles one rule from a detection block; throws with the rejection when it does not load. */
export function ruleMatcher(detection: string, options: LoadOptions = {}): (event: unknown) => boolean {
  const loaded = load(ruleYaml(detection), options);
  if (loaded.rejected.length) throw new Error(loaded.rejected.map((r) => r.message).join('\n'));
  const engine = new SigmaEngine(loaded);
  return (event) => engine.match('cloudtrail', event).length > 0;
}

/** The single rejection a detection block causes (or undefined when it loads). */
export function rejection(detection: string, options: LoadOptions = {}) {
  return load(ruleYaml(detection), options).rejected[0];
}
