import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AuditEvent } from '../../core/event.js';
import { normalizeBuffer } from '../../ingest/index.js';
import type { NormalizeOptions, NormalizeResult } from '../../ingest/types.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/ingest/', import.meta.url));

export function fixture(name: string): Buffer {
  return readFileSync(FIXTURES + name);
}

export function run(name: string, options?: NormalizeOptions, bytes: Buffer = fixture(name)): NormalizeResult[] {
  return [...normalizeBuffer(bytes, name, options)];
}

export function events(results: NormalizeResult[]): AuditEvent[] {
  return results.flatMap((r) => (r.kind === 'event' ? [r.event] : []));
}

export function deads(results: NormalizeResult[]): Extract<NormalizeResult, { kind: 'dead' }>[] {
  return results.flatMap((r) => (r.kind === 'dead' ? [r] : []));
}

export function skips(results: NormalizeResult[]): Extract<NormalizeResult, { kind: 'skipped' }>[] {
  return results.flatMap((r) => (r.kind === 'skipped' ? [r] : []));
}
