// `glasswatch replay` over a folder an attacker filled: a CloudTrail object with a record nested
// 5,000 deep, a 611 KB gzip that inflates to 600 MiB, and valid objects with a later root
// StopLogging. Every valid record is kept, the rest is dead-lettered with reasons naming the file,
// and the process stays under 1 GB of RSS. Run in a child process, as an operator runs it, so the
// peak RSS measured is the CLI's own.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;

/** The CLI from source in a child process (test/support/run-cli.ts): exit code and stderr. */
function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/support/run-cli.ts'), ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l.trim() !== '');

const dir = mkdtempSync(join(tmpdir(), 'gw-replay-hostile-'));
const input = join(dir, 'trail');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ACCOUNT = '111122223333';
const PREFIX = `AWSLogs/${ACCOUNT}/CloudTrail/us-east-1/2026/11/20`;

function record(id: string, eventName: string, time: string, root = false): Record<string, unknown> {
  return {
    eventVersion: '1.09',
    userIdentity: root
      ? { type: 'Root', principalId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:root`, accountId: ACCOUNT }
      : { type: 'IAMUser', principalId: 'AIDAEXAMPLE', arn: `arn:aws:iam::${ACCOUNT}:user/ops`, userName: 'ops', accountId: ACCOUNT },
    eventTime: time,
    eventSource: eventName === 'StopLogging' ? 'cloudtrail.amazonaws.com' : 's3.amazonaws.com',
    eventName,
    awsRegion: 'us-east-1',
    sourceIPAddress: '203.0.113.77',
    eventID: id,
    recipientAccountId: ACCOUNT,
  };
}

/** 600 MiB of spaces through gzip -9, streamed to disk: about 611 KB that inflates to 600 MiB. */
async function writeBomb(path: string): Promise<void> {
  const chunk = Buffer.alloc(1024 * 1024, 0x20);
  async function* spaces() {
    yield Buffer.from('{"Records":[');
    for (let i = 0; i < 600; i++) yield chunk;
  }
  await pipeline(spaces(), createGzip({ level: 9 }), createWriteStream(path));
}

beforeAll(async () => {
  const folder = join(input, PREFIX);
  mkdirSync(folder, { recursive: true });
  const deep = `${'{"x":'.repeat(5000)}1${'}'.repeat(5000)}`;
  const deepRecord = JSON.stringify(record('deep-1', 'PutBucketPolicy', '2026-11-20T10:01:00Z')).replace(
    /}$/,
    `,"requestParameters":${deep}}`,
  );
  writeFileSync(
    join(folder, `${ACCOUNT}_CloudTrail_us-east-1_20261120T1000Z_a.json.gz`),
    gzipSync(
      `{"Records":[${JSON.stringify(record('ok-1', 'GetBucketPolicy', '2026-11-20T10:00:00Z'))},${deepRecord},${JSON.stringify(record('ok-2', 'GetObject', '2026-11-20T10:02:00Z'))}]}`,
    ),
  );
  await writeBomb(join(folder, `${ACCOUNT}_CloudTrail_us-east-1_20261120T1005Z_b.json.gz`));
  writeFileSync(
    join(folder, `${ACCOUNT}_CloudTrail_us-east-1_20261120T1010Z_c.json.gz`),
    gzipSync(
      JSON.stringify({
        Records: [record('ok-3', 'ListBuckets', '2026-11-20T10:10:00Z'), record('stop-1', 'StopLogging', '2026-11-20T10:11:00Z', true)],
      }),
    ),
  );
  // The peak resident set of the CLI process, printed as it exits (getrusage ru_maxrss, KiB on Linux).
  writeFileSync(
    join(dir, 'peak-rss.mjs'),
    "process.on('exit', () => process.stderr.write('peak-rss-kib=' + process.resourceUsage().maxRSS + '\\n'));\n",
  );
}, 60_000);

describe('glasswatch replay over hostile files', () => {
  it('keeps every valid record (the later root StopLogging included), dead-letters the deep record and the bomb by file, under 1 GB RSS', async () => {
    const out = join(dir, 'events.jsonl');
    const dead = join(dir, 'dead.jsonl');
    const summaryFile = join(dir, 'summary.json');
    const run = await runCli(
      ['replay', input, '--out', out, '--dead-letters', dead, '--summary-json', summaryFile, '--quiet'],
      { NODE_OPTIONS: `--import ${join(dir, 'peak-rss.mjs')}` },
      150_000,
    );
    expect(run.stderr, run.stderr).not.toMatch(/RangeError|Cannot create a string|Maximum call stack/);
    expect(run.code, run.stderr).toBe(3); // ran, but some input was bad

    const events = lines(readFileSync(out, 'utf8')).map((l) => JSON.parse(l));
    expect(events.map((e) => e.id)).toEqual(['ok-1', 'ok-2', 'ok-3', 'stop-1']);
    expect(events.at(-1)).toMatchObject({ action: 'cloudtrail.amazonaws.com:StopLogging', actor: { type: 'Root' } });

    const letters = lines(readFileSync(dead, 'utf8')).map((l) => JSON.parse(l));
    expect(letters).toHaveLength(2);
    const deepLetter = letters.find((d) => d.file.endsWith('_a.json.gz'));
    expect(deepLetter).toMatchObject({ index: 1, reason: 'cloudtrail: record nested deeper than 512 levels (maxDepth) at Records[1]' });
    expect(deepLetter.text.startsWith('{"eventVersion":"1.09"')).toBe(true);
    const bomb = letters.find((d) => d.file.endsWith('_b.json.gz'));
    expect(bomb.reason).toBe(`${bomb.file} inflates beyond 268435456 bytes (maxDecompressedBytes)`);

    const peak = Number(/peak-rss-kib=(\d+)/.exec(run.stderr)?.[1]);
    expect(peak).toBeGreaterThan(0);
    expect(peak * 1024).toBeLessThan(1024 * 1024 * 1024);
    console.log(`replay over hostile files: peak RSS ${(peak / 1024).toFixed(0)} MiB`);
  }, 180_000);
});

describe('replayFiles input budget', () => {
  it('dead-letters a plain file over maxDecompressedBytes without reading it, and goes on', async () => {
    const { replayFiles } = await import('../../core/pipeline/replay.js');
    const folder = join(dir, 'budget');
    mkdirSync(folder);
    writeFileSync(
      join(folder, 'a-big.json'),
      JSON.stringify({ Records: [record('big-1', 'GetObject', '2026-11-20T10:00:00Z')], pad: 'x'.repeat(4096) }),
    );
    writeFileSync(
      join(folder, 'b-small.json'),
      JSON.stringify({ Records: [record('small-1', 'StopLogging', '2026-11-20T10:11:00Z', true)] }),
    );
    const summary = await replayFiles({ paths: [folder], stages: [], normalize: { maxDecompressedBytes: 2048 } });
    expect(summary.events.cloudtrail).toBe(1);
    expect(summary.deadLetterTotal).toBe(1);
    const reasons = Object.keys(summary.perFile[join(folder, 'a-big.json')]?.deadLetters ?? {});
    expect(reasons).toEqual([expect.stringMatching(/a-big\.json is \d+ bytes, beyond 2048 \(maxDecompressedBytes\)$/)]);
  });
});
