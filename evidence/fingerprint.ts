import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { GlasswatchConfig } from '../core/config.js';
import { breakGlassPackDir } from '../detectors/build.js';
import { listRuleFiles } from '../rules/engine/load.js';

/**
 * What a process ran with, as hashes an auditor can compare: the config file's bytes and the rule
 * pack (the bundled break-glass pack unless `detector.builtinRules: false`, plus `detector.rules`),
 * each rule file's path relative to its folder and its bytes, in listing order.
 */
export function configSha256(config: Pick<GlasswatchConfig, 'file'>): string {
  return createHash('sha256')
    .update(config.file ? readFileSync(config.file) : Buffer.alloc(0))
    .digest('hex');
}

export function rulePackSha256(config: Pick<GlasswatchConfig, 'sections'>): string {
  const detector = (config.sections.detector ?? {}) as { rules?: unknown; builtinRules?: unknown };
  const builtin = detector.builtinRules !== false;
  const extra =
    typeof detector.rules === 'string'
      ? detector.rules.split(',').map((s) => s.trim())
      : Array.isArray(detector.rules)
        ? detector.rules
        : [];
  const pack = breakGlassPackDir();
  const roots = [
    ...(builtin ? [pack] : []),
    ...extra.filter((p): p is string => typeof p === 'string' && (!builtin || resolve(p) !== resolve(pack))),
  ];
  const hash = createHash('sha256');
  for (const root of roots) {
    if (!existsSync(root)) continue;
    for (const file of listRuleFiles(root)) {
      hash.update(`${relative(root, file) || file}\u0000`);
      hash.update(readFileSync(file));
      hash.update('\u0000');
    }
  }
  return hash.digest('hex');
}
