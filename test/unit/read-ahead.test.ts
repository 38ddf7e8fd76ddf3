// readAhead (lib/read-ahead.ts): the next item is produced while the consumer works on the
// current one, never more than one ahead; order, errors and early exits are the source's own.
import { describe, expect, it } from 'vitest';
import { readAhead } from '../../lib/read-ahead.ts';

/** A source that logs when each item is started and finished, and whether it was closed. */
function loggingSource(count: number, options: { failAt?: number } = {}) {
  const log: string[] = [];
  async function* source() {
    try {
      for (let i = 0; i < count; i++) {
        log.push(`start ${i}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (i === options.failAt) throw new Error(`item ${i} failed`);
        log.push(`ready ${i}`);
        yield i;
      }
    } finally {
      log.push('closed');
    }
  }
  return { log, source: source() };
}

describe('readAhead', () => {
  it('produces the next item while the consumer works on the current one', async () => {
    const { log, source } = loggingSource(3);
    const seen: number[] = [];
    for await (const item of readAhead(source)) {
      log.push(`consume ${item}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
      log.push(`consumed ${item}`);
      seen.push(item);
    }
    expect(seen).toEqual([0, 1, 2]);
    // Item 1 is started, and ready, before the consumer is done with item 0; never two ahead.
    expect(log).toEqual([
      'start 0',
      'ready 0',
      'start 1',
      'consume 0',
      'ready 1',
      'consumed 0',
      'start 2',
      'consume 1',
      'ready 2',
      'consumed 1',
      'closed',
      'consume 2',
      'consumed 2',
    ]);
  });

  it('reports a failure of the source at the item that failed, after the ones before it', async () => {
    const { log, source } = loggingSource(5, { failAt: 2 });
    const seen: number[] = [];
    const consume = async () => {
      for await (const item of readAhead(source)) {
        // Slow enough that item 2 has failed long before it is asked for.
        await new Promise((resolve) => setTimeout(resolve, 30));
        seen.push(item);
      }
    };
    await expect(consume()).rejects.toThrow('item 2 failed');
    expect(seen).toEqual([0, 1]);
    expect(log.filter((line) => line.startsWith('start'))).toEqual(['start 0', 'start 1', 'start 2']);
  });

  it('closes the source when the consumer stops early, after the read in flight has settled', async () => {
    const { log, source } = loggingSource(10);
    for await (const item of readAhead(source)) {
      if (item === 1) break;
    }
    expect(log.filter((line) => line.startsWith('start'))).toEqual(['start 0', 'start 1', 'start 2']);
    expect(log.at(-1)).toBe('closed');
    expect(log).toContain('ready 2');
  });

  it('passes a consumer’s error on and still closes the source', async () => {
    const { log, source } = loggingSource(10);
    const consume = async () => {
      for await (const item of readAhead(source)) {
        if (item === 0) throw new Error('write failed');
      }
    };
    await expect(consume()).rejects.toThrow('write failed');
    expect(log.at(-1)).toBe('closed');
  });
});
