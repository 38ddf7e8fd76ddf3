// Group commit: many small writes of the same kind coalesced into few statements. An item waits
// at most `maxWaitMs` (or until `maxItems` are waiting) and then goes with the others in one
// write, so a stream of 500 items a second costs a statement every few dozen items instead of
// one each. One committer can serve many callers at once (e.g. every delivery job of a process):
// each `add()` returns the promise of the write that will carry the item, so a caller waits for
// its own items only, and an error reaches every caller whose items it concerned.

export interface GroupCommit<T> {
  /**
   * Queues `item`; it is written within `maxWaitMs`. The promise settles with the write that
   * carries it, and is shared by the items of that write: a caller that keeps the distinct
   * promises and awaits them all has waited for each of its items. A rejection not awaited is
   * not reported as unhandled.
   */
  add(item: T): Promise<void>;
  /**
   * Writes what is waiting now, then resolves once every write so far has settled. It never
   * rejects: a failed write is reported through the promises that `add()` returned for its items.
   */
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
  /** The write the next items join, created with its first item and started when it is full or due. */
  let next: { items: T[]; promise: Promise<void>; settle: (written: Promise<void>) => void } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const writes = new Set<Promise<void>>();

  function writeWaiting(): void {
    clearTimeout(timer);
    timer = undefined;
    if (!next) return;
    const { items, settle } = next;
    next = undefined;
    let written: Promise<void>;
    try {
      written = write(items);
    } catch (error) {
      written = Promise.reject(error);
    }
    settle(written);
  }

  function nextWrite(): NonNullable<typeof next> {
    if (next) return next;
    let settle!: (written: Promise<void>) => void;
    const promise = new Promise<void>((resolve) => (settle = resolve));
    writes.add(promise);
    // Also the handler that keeps a failure nobody awaits from counting as an unhandled rejection.
    void promise.then(
      () => writes.delete(promise),
      () => writes.delete(promise),
    );
    next = { items: [], promise, settle };
    return next;
  }

  return {
    add(item) {
      const batch = nextWrite();
      batch.items.push(item);
      if (batch.items.length >= options.maxItems) writeWaiting();
      else timer ??= setTimeout(writeWaiting, options.maxWaitMs);
      return batch.promise;
    },
    async flush() {
      writeWaiting();
      await Promise.allSettled([...writes]);
    },
  };
}
