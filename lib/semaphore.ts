// A semaphore whose waiting places can be cancelled, e.g. when a send's time runs out before
// a connection is free for it.

export interface Turn {
  /** Runs `task` once a place is free (at once if one is); rejects if cancelled while waiting. */
  run<T>(task: () => Promise<T>): Promise<T>;
  /** Gives up the place in the line with `error`; does nothing once the task has started. */
  cancel(error: Error): void;
}

interface Waiter {
  start: () => void;
  leave: (error: Error) => void;
  cancelled: boolean;
}

export interface Semaphore {
  turn(): Turn;
}

/**
 * At most `limit` tasks run at once; the others wait in order. A turn taken with `turn()` runs
 * its task once a place is free; cancelling it while it waits rejects `run()` and frees its place
 * in the line (cancelling later does nothing: the task is the caller's to abort).
 */
export function semaphore(limit: number): Semaphore {
  let running = 0;
  /** Waiting turns, oldest first; a cancelled one stays until it reaches the front. */
  const line: Waiter[] = [];
  // A finishing task hands its place straight to the next waiter, so none can slip in between.
  const release = () => {
    for (let next = line.shift(); next; next = line.shift()) {
      if (!next.cancelled) return next.start();
    }
    running--;
  };
  return {
    turn() {
      let waiter: Waiter | undefined;
      return {
        async run<T>(task: () => Promise<T>): Promise<T> {
          if (running < limit) running++;
          else {
            await new Promise<void>((resolve, reject) => {
              waiter = { start: resolve, leave: reject, cancelled: false };
              line.push(waiter);
            });
            waiter = undefined;
          }
          try {
            return await task();
          } finally {
            release();
          }
        },
        cancel(error: Error) {
          if (!waiter || waiter.cancelled) return;
          waiter.cancelled = true;
          waiter.leave(error);
        },
      };
    },
  };
}
