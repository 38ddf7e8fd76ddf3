// Waiting with a bound: for checks that must answer in time even when a service hangs rather
// than refuses (a Redis command waits in the client's offline queue until it reconnects).

/** `work`'s result, or a rejection saying it gave no answer within `ms`. */
export async function bounded<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
