import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.js';

const demo = new URL('../../demo/data', import.meta.url).pathname;
const pack = new URL('../../rules/breakglass', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gw-hunt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function capture(argv: string[]): Promise<{ code: number; lines: Record<string, unknown>[] }> {
  const out: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await main(argv);
    return {
      code,
      lines: out
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    };
  } finally {
    spy.mockRestore();
    err.mockRestore();
  }
}

describe('glasswatch hunt', () => {
  it('finds over the store exactly what the streaming engine finds over the files', async () => {
    const store = join(dir, 'store');
    expect(await main(['replay', demo, '--store', store, '--out', 'none', '--quiet'])).toBe(3);
    const live = await capture(['rules', 'match', pack, '--input', demo]);
    const hunt = await capture(['hunt', pack, '--from', '2026-11-20T00:00:00Z', '--to', '2026-11-21T00:00:00Z', '--store', store]);
    expect(hunt.code).toBe(0);
    const key = (l: Record<string, unknown>) => `${l.rule}|${l.eventId}`;
    expect(live.lines.length).toBeGreaterThan(20);
    expect(hunt.lines.map(key).sort()).toEqual(live.lines.map(key).sort());
    for (const l of hunt.lines) expect(l.author).toBe('glasswatch');
    // one time format everywhere: ISO 8601 with Z, as in alerts
    for (const l of hunt.lines) expect(l.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    // the time window is honoured
    const none = await capture(['hunt', pack, '--from', '2026-11-21T00:00:00Z', '--to', '2026-11-22T00:00:00Z', '--store', store]);
    expect(none.lines).toEqual([]);
  }, 120_000);

  it('refuses a bad period', async () => {
    expect(
      await main(['hunt', pack, '--from', '2026-11-21T00:00:00Z', '--to', '2026-11-20T00:00:00Z', '--store', join(dir, 'store')]),
    ).toBe(2);
    expect(await main(['hunt', pack, '--from', 'yesterday', '--to', '2026-11-20T00:00:00Z'])).toBe(2);
  });
});
