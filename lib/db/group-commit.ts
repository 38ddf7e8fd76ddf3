// Group commit: many small writes of the same kind coalesced into few statements. An item waits
// at most `maxWaitMs` (or until `maxItems` are waiting) and then goes with the others in one
// write, so a stream of 500 items a second costs a statement every few dozen items instead of
// one each. Callers do not wait per item; they call `flush()` at the end, which writes what is
// left and rejects if any write failed, so an error is never lost.

export interface GroupCommit<T> {
  /** Queues `item`; it is written within `maxWaitMs`. */
  add(item: T): void;
  /** Writes what is waiting and resolves once every write so far has succeeded. */
  flush(): Promise<void>;
}

export interface GroupCommitOptions {
  /** Most items in one write. */
  maxItems: number;
  /** Longest an item waits for others before it is written. */
  maxWaitMs: number;
}

export function groupCommit<T>(
  write: (items: T[]) => Promise<void>,
  options: GroupCommitOptions,
): GroupCommit<T> {
  let waiting: T[] = [];
  let timer: NodeJS.Timeout | undefined;
  const writes = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;

  function writeWaiting(): void {
    clearTimeout(timer);
    timer = undefined;
    if (waiting.length === 0) return;
    const batch = waiting;
    waiting = [];
    const done = write(batch).then(
      () => undefined,
      (error: unknown) => {
        failure ??= { error };
      },
    );
    writes.add(done);
    void done.finally(() => writes.delete(done));
  }

  return {
    add(item) {
      waiting.push(item);
      if (waiting.length >= options.maxItems) writeWaiting();
      else timer ??= setTimeout(writeWaiting, options.maxWaitMs);
    },
    async flush() {
      writeWaiting();
      await Promise.all(writes);
      if (failure) throw failure.error;
    },
  };
}
