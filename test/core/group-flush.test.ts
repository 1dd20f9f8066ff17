// GroupFlush: the store sink's group commit. A caller's flush covers everything buffered before
// the call; callers that come while a flush runs share the next one; never two flushes at once.
import { describe, expect, it } from 'vitest';
import { GroupFlush } from '../../core/store/group-flush.js';

/** A buffer whose flushes are released by the test, recording what each flush took. */
function harness() {
  let buffered: number[] = [];
  const flushes: number[][] = [];
  const gates: (() => void)[] = [];
  let failNext = false;
  let running = 0;
  let maxRunning = 0;
  const group = new GroupFlush(async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    const taken = buffered;
    buffered = [];
    try {
      await new Promise<void>((resolve) => gates.push(resolve));
      if (failNext) {
        failNext = false;
        buffered = [...taken, ...buffered];
        throw new Error('insert failed');
      }
      flushes.push(taken);
    } finally {
      running--;
    }
  });
  const tick = () => new Promise((r) => setTimeout(r, 0));
  return {
    group,
    flushes,
    add: (n: number) => buffered.push(n),
    release: async () => {
      await tick();
      gates.shift()?.();
      await tick();
    },
    failNext: () => {
      failNext = true;
    },
    get maxRunning() {
      return maxRunning;
    },
    get waiting() {
      return gates.length;
    },
  };
}

describe('GroupFlush', () => {
  it('callers that arrive while a flush runs share the next one, which holds all their rows', async () => {
    const h = harness();
    const done: string[] = [];
    h.add(1);
    const a = h.group.flush().then(() => done.push('a'));
    h.add(2);
    const b = h.group.flush().then(() => done.push('b'));
    h.add(3);
    const c = h.group.flush().then(() => done.push('c'));
    await h.release(); // the first flush: row 1 only
    expect(h.flushes).toEqual([[1]]);
    expect(done).toEqual(['a']); // b and c wait: their rows were not in it
    await h.release(); // one flush for both
    await Promise.all([a, b, c]);
    expect(h.flushes).toEqual([[1], [2, 3]]);
    expect(done).toEqual(['a', 'b', 'c']);
    expect(h.maxRunning).toBe(1);
  });

  it('a caller never resolves before a flush that started after its call', async () => {
    const h = harness();
    h.add(1);
    const first = h.group.flush();
    h.add(2);
    let secondDone = false;
    const second = h.group.flush().then(() => {
      secondDone = true;
    });
    await h.release();
    await first;
    expect(secondDone).toBe(false);
    expect(h.waiting).toBe(1); // the next flush started by itself, with row 2
    await h.release();
    await second;
    expect(h.flushes).toEqual([[1], [2]]);
  });

  it('a failed flush rejects its callers; the next call flushes the rows again', async () => {
    const h = harness();
    h.add(1);
    h.failNext();
    const failed = h.group.flush();
    const rejected = expect(failed).rejects.toThrow('insert failed');
    await h.release();
    await rejected;
    const again = h.group.flush();
    await h.release();
    await again;
    expect(h.flushes).toEqual([[1]]);
  });

  it('with nothing running, a flush starts at once', async () => {
    const h = harness();
    h.add(7);
    const p = h.group.flush();
    expect(h.waiting).toBe(1);
    await h.release();
    await p;
    expect(h.flushes).toEqual([[7]]);
  });
});
