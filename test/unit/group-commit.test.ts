// Group commit (lib/db/group-commit.ts): items are written in batches bounded by count and by
// time, nothing is lost, and a failed write reaches exactly the callers whose items it carried.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { groupCommit } from '../../lib/db/group-commit.ts';

describe('groupCommit', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('writes a full batch at once and the rest after maxWaitMs', async () => {
    const writes: number[][] = [];
    const commits = groupCommit(async (items: number[]) => void writes.push(items), {
      maxItems: 3,
      maxWaitMs: 50,
    });
    for (let i = 1; i <= 5; i++) commits.add(i);
    expect(writes).toEqual([[1, 2, 3]]);
    await vi.advanceTimersByTimeAsync(49);
    expect(writes).toEqual([[1, 2, 3]]);
    await vi.advanceTimersByTimeAsync(1);
    expect(writes).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    await commits.flush();
    expect(writes.flat()).toEqual([1, 2, 3, 4, 5]);
  });

  it('flush() writes what is waiting without waiting for the timer, and waits for writes in progress', async () => {
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const written: string[] = [];
    const commits = groupCommit(
      async (items: string[]) => {
        await slow;
        written.push(...items);
      },
      { maxItems: 100, maxWaitMs: 10_000 },
    );
    commits.add('a');
    commits.add('b');
    let flushed = false;
    const flushing = commits.flush().then(() => (flushed = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(flushed).toBe(false);
    release();
    await flushing;
    expect(written).toEqual(['a', 'b']);
  });

  it('rejects the promise of the items a failed write carried, and keeps writing later items', async () => {
    const written: number[] = [];
    const commits = groupCommit(
      async (items: number[]) => {
        if (items.includes(2)) throw new Error('database is down');
        written.push(...items);
      },
      { maxItems: 2, maxWaitMs: 5 },
    );
    const first = commits.add(1);
    const second = commits.add(2); // a full batch: written now, and fails
    const third = commits.add(3);
    expect(second).toBe(first);
    expect(third).not.toBe(first);
    await expect(first).rejects.toThrow('database is down');
    await vi.advanceTimersByTimeAsync(5);
    await expect(third).resolves.toBeUndefined();
    expect(written).toEqual([3]);
    // flush() waits for writes but reports nothing: errors belong to the items' callers.
    await expect(commits.flush()).resolves.toBeUndefined();
  });

  it('lets several callers share groups while each waits for its own items only', async () => {
    const writes: string[][] = [];
    let failNext = false;
    const commits = groupCommit(
      async (items: string[]) => {
        if (failNext) {
          failNext = false;
          throw new Error('deadlock detected');
        }
        writes.push(items);
      },
      { maxItems: 100, maxWaitMs: 50 },
    );
    const jobA = new Set([commits.add('a1'), commits.add('a2')]);
    const jobB = new Set([commits.add('b1')]);
    await vi.advanceTimersByTimeAsync(50);
    expect(writes).toEqual([['a1', 'a2', 'b1']]);
    await expect(Promise.all(jobA)).resolves.toBeDefined();
    await expect(Promise.all(jobB)).resolves.toBeDefined();

    failNext = true;
    jobB.add(commits.add('b2'));
    await vi.advanceTimersByTimeAsync(50);
    const jobC = new Set([commits.add('c1')]);
    await vi.advanceTimersByTimeAsync(50);
    await expect(Promise.all(jobB)).rejects.toThrow('deadlock detected');
    await expect(Promise.all(jobC)).resolves.toBeDefined();
    expect(writes).toEqual([['a1', 'a2', 'b1'], ['c1']]);
  });

  it('does not report a failed write nobody awaited as an unhandled rejection', async () => {
    vi.useRealTimers();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const commits = groupCommit(
        async () => {
          throw new Error('lost connection');
        },
        { maxItems: 1, maxWaitMs: 5 },
      );
      void commits.add(1);
      await commits.flush();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
