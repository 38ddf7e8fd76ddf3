// Group commit (lib/db/group-commit.ts): items are written in batches bounded by count and by
// time, nothing is lost, and a failed write surfaces at flush().
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

  it('rejects flush() with the error of a failed write, and keeps writing later items', async () => {
    const written: number[] = [];
    const commits = groupCommit(
      async (items: number[]) => {
        if (items.includes(2)) throw new Error('database is down');
        written.push(...items);
      },
      { maxItems: 2, maxWaitMs: 5 },
    );
    commits.add(1);
    commits.add(2); // a full batch: written now, and fails
    commits.add(3);
    await expect(commits.flush()).rejects.toThrow('database is down');
    expect(written).toEqual([3]);
  });
});
