// The semaphore (lib/semaphore.ts): at most `limit` tasks at once, waiters in order, and a
// cancelled waiter leaves the line without taking or leaking a place.
import { describe, expect, it } from 'vitest';
import { semaphore } from '../../lib/semaphore.ts';

/** A task that runs until `finish()` is called, and records when it started. */
function heldTask(name: string, started: string[]) {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    task: async () => {
      started.push(name);
      await done;
      return name;
    },
    finish,
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('semaphore', () => {
  it('runs at most `limit` tasks at once, the others in the order they came', async () => {
    const started: string[] = [];
    const gate = semaphore(2);
    const tasks = ['a', 'b', 'c', 'd'].map((name) => heldTask(name, started));
    const results = tasks.map((t) => gate.turn().run(t.task));
    await settle();
    expect(started).toEqual(['a', 'b']);
    tasks[1]!.finish();
    await settle();
    expect(started).toEqual(['a', 'b', 'c']);
    tasks[0]!.finish();
    await settle();
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    tasks[2]!.finish();
    tasks[3]!.finish();
    await expect(Promise.all(results)).resolves.toEqual(['a', 'b', 'c', 'd']);
  });

  it('lets a cancelled waiter leave the line: it never runs, and its place goes to the next', async () => {
    const started: string[] = [];
    const gate = semaphore(1);
    const a = heldTask('a', started);
    const b = heldTask('b', started);
    const c = heldTask('c', started);
    const running = gate.turn().run(a.task);
    const bTurn = gate.turn();
    const bResult = bTurn.run(b.task);
    const cResult = gate.turn().run(c.task);
    await settle();
    bTurn.cancel(new Error('send timed out'));
    await expect(bResult).rejects.toThrow('send timed out');
    a.finish();
    await settle();
    expect(started).toEqual(['a', 'c']);
    c.finish();
    await expect(Promise.all([running, cResult])).resolves.toEqual(['a', 'c']);
    // No place was leaked or lost: two more run one after the other, the first at once.
    const d = heldTask('d', started);
    const e = heldTask('e', started);
    const dResult = gate.turn().run(d.task);
    const eResult = gate.turn().run(e.task);
    await settle();
    expect(started).toEqual(['a', 'c', 'd']);
    d.finish();
    await settle();
    expect(started).toEqual(['a', 'c', 'd', 'e']);
    e.finish();
    await expect(Promise.all([dResult, eResult])).resolves.toEqual(['d', 'e']);
  });

  it('ignores a cancel once the task has started, and frees the place when a task fails', async () => {
    const gate = semaphore(1);
    const turn = gate.turn();
    const failing = turn.run(async () => {
      turn.cancel(new Error('too late'));
      throw new Error('connection dropped');
    });
    await expect(failing).rejects.toThrow('connection dropped');
    await expect(gate.turn().run(async () => 'next')).resolves.toBe('next');
  });
});
