// Read-ahead for a stream of batches: while the consumer works on one item (e.g. writes a batch
// to the database), the source already produces the next (reads and renders the following
// batch), so the two overlap instead of taking turns. At most one item is read ahead, so memory
// stays bounded by two items, and the order and the errors are the source's own.

/** Yields `source`'s items in order, asking for the next one as soon as one is handed out. */
export async function* readAhead<T>(source: AsyncIterable<T>): AsyncGenerator<T, void, undefined> {
  const iterator = source[Symbol.asyncIterator]();
  let ahead: Promise<IteratorResult<T>> | undefined = iterator.next();
  let exhausted = false;
  try {
    for (;;) {
      const step: IteratorResult<T> = await ahead;
      ahead = undefined;
      if (step.done) {
        exhausted = true;
        return;
      }
      ahead = iterator.next();
      // Its failure is reported when the consumer asks for that item, not as an unhandled rejection.
      ahead.catch(() => undefined);
      yield step.value;
    }
  } finally {
    // The consumer stopped early (or failed), or the source failed: let the read in flight settle,
    // and close the source so that it can release what it holds. So a consumer's error reaches
    // its caller only once that read is over (one batch's query and rendering).
    if (!exhausted) {
      await ahead?.catch(() => undefined);
      await iterator.return?.();
    }
  }
}
