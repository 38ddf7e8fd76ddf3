// Connection errors as log lines: one JSON line per connection and code per interval, repeats
// counted and reported with the next line or when the server answers again, the same error
// forwarded by several emitters logged once. A fixed clock drives the interval.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { connectionErrorLog, connectionTo, isConnectionError } from '../../lib/connection-errors.ts';
import { captureLogs } from '../support/services.ts';

const INTERVAL_MS = 30_000;
const redis = connectionTo('redis', 'shared', 'redis://:pw@cache.internal:6380/0');
const worker = connectionTo('redis', 'worker:detection', 'redis://:pw@cache.internal:6380/0');
const db = connectionTo('postgres', 'forewarn', 'postgres://fw:pw@db.internal:5432/forewarn');

function refused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:6380'), { code: 'ECONNREFUSED' });
}

function setup() {
  let clock = Date.parse('2026-03-02T10:00:00.000Z');
  const { logger, lines } = captureLogs();
  const errors = connectionErrorLog(logger, { intervalMs: INTERVAL_MS, now: () => clock });
  return {
    errors,
    lines,
    advance: (ms: number) => (clock += ms),
    errorLines: () => lines().filter((l) => l.level === 'warn'),
    restoredLines: () => lines().filter((l) => l.level === 'info'),
  };
}

describe('connectionErrorLog', () => {
  it('names the connection, the server without credentials and the code, in one JSON line', () => {
    const { errors, lines } = setup();
    errors.report(redis, refused());
    expect(lines()).toHaveLength(1);
    const line = lines()[0]!;
    expect(line).toMatchObject({
      level: 'warn',
      component: 'connection',
      service: 'redis',
      connection: 'shared',
      server: 'cache.internal:6380',
      code: 'ECONNREFUSED',
      suppressed: 0,
      err: { message: 'connect ECONNREFUSED 10.0.0.7:6380', code: 'ECONNREFUSED' },
    });
    expect(line.msg).toBe(
      'Redis connection shared to cache.internal:6380: ECONNREFUSED; repeats within 30 s are counted, not logged',
    );
    expect(JSON.stringify(line)).not.toContain('pw');
  });

  it('logs one line per connection and code per interval, with the count of repeats left out', () => {
    const { errors, errorLines, advance } = setup();
    for (let i = 0; i < 20; i++) {
      errors.report(redis, refused());
      advance(1_000);
    }
    // 0 s logged; 1-19 s counted. 30 s: the next line carries them.
    expect(errorLines()).toHaveLength(1);
    advance(10_000);
    errors.report(redis, refused());
    expect(errorLines().map((l) => l.suppressed)).toEqual([0, 19]);
    errors.report(redis, refused());
    expect(errorLines()).toHaveLength(2);
  });

  it('keeps connections and codes apart', () => {
    const { errors, errorLines } = setup();
    errors.report(redis, refused());
    errors.report(worker, refused());
    errors.report(redis, Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    errors.report(redis, new Error('Connection is closed.'));
    errors.report(redis, new Error('Connection is closed.'));
    expect(errorLines().map((l) => [l.connection, l.code])).toEqual([
      ['shared', 'ECONNREFUSED'],
      ['worker:detection', 'ECONNREFUSED'],
      ['shared', 'ECONNRESET'],
      ['shared', null],
    ]);
  });

  it('logs an error forwarded by several emitters once (BullMQ queues re-emit their client’s)', () => {
    const { errors, errorLines, advance } = setup();
    const client = new EventEmitter();
    const queues = [new EventEmitter(), new EventEmitter()];
    errors.watch(client, redis, 'ready');
    queues.forEach((queue, i) => errors.watch(queue, connectionTo('redis', `queue:${i}`, 'redis://h')));
    for (const queue of queues) client.on('error', (error) => queue.emit('error', error));
    client.emit('error', refused());
    advance(INTERVAL_MS);
    client.emit('error', refused());
    expect(errorLines().map((l) => l.connection)).toEqual(['shared', 'shared']);
    expect(errorLines()[1]!.suppressed).toBe(0);
  });

  it('says when the server answers again, with what was counted on all its connections', () => {
    const { errors, errorLines, restoredLines, advance } = setup();
    const client = new EventEmitter();
    errors.watch(client, redis, 'ready');
    client.emit('ready'); // the first connect: nothing to say
    expect(restoredLines()).toHaveLength(0);
    for (let i = 0; i < 5; i++) {
      client.emit('error', refused());
      errors.report(worker, refused());
      errors.report(db, refused()); // another server: not part of Redis answering
      advance(500);
    }
    client.emit('ready');
    expect(restoredLines()).toHaveLength(1);
    expect(restoredLines()[0]).toMatchObject({
      service: 'redis',
      connection: 'shared',
      server: 'cache.internal:6380',
      suppressed: 8,
      connections: ['shared', 'worker:detection'],
    });
    expect(restoredLines()[0]!.msg).toBe(
      'Redis at cache.internal:6380 answers again (shared); 8 repeated error(s) of its connections were counted, not logged',
    );
    // PostgreSQL's count is still its own, for its next line.
    advance(INTERVAL_MS);
    errors.report(db, refused());
    expect(errorLines().at(-1)).toMatchObject({ service: 'postgres', suppressed: 4 });
  });

  it('holds the interval through a flapping server: no more than one error and one "again" line each', () => {
    const { errors, errorLines, restoredLines, advance } = setup();
    const client = new EventEmitter();
    errors.watch(client, redis, 'ready');
    for (let i = 0; i < 10; i++) {
      client.emit('error', refused());
      client.emit('error', refused());
      advance(1_000);
      client.emit('ready');
      advance(1_000);
    }
    expect(errorLines()).toHaveLength(1);
    expect(restoredLines()).toHaveLength(1);
    expect(restoredLines()[0]!.suppressed).toBe(1);
    // 20 s in; at 30 s the next line reports what the flapping left out (9 cycles of 2).
    advance(10_000);
    client.emit('error', refused());
    expect(errorLines()[1]!.suppressed).toBe(18);
  });

  it('tells connection errors from failed commands', () => {
    expect(isConnectionError(refused())).toBe(true);
    expect(isConnectionError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isConnectionError(new Error('Connection is closed.'))).toBe(true);
    expect(isConnectionError(new Error('Missing lock for job 12. moveToFinished'))).toBe(false);
    expect(isConnectionError('ECONNREFUSED-ish string')).toBe(false);
  });
});
