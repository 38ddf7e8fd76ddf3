// Whose job is it: the default queue prefix comes from the deployment id, and processJob hands a
// job of another deployment back to the queue (moveToDelayed with the worker's token, then
// DelayedError) before it looks at anything else, so nothing of it runs and nothing is dropped.
import { Writable } from 'node:stream';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { describe, expect, it, vi } from 'vitest';
import { processJob } from '../../jobs/registry.ts';
import type { AppContext } from '../../lib/context.ts';
import { createLogger } from '../../lib/logger.ts';
import { defaultQueuePrefix, FOREIGN_JOB_DELAY_MS, ownerOf, unstamp } from '../../lib/queue/identity.ts';

const OURS = '0f1e2d3c-4b5a-4697-8877-665544332211';
const THEIRS = '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d';
const NOW = Date.UTC(2026, 2, 2, 10, 0, 15);

function context(): { ctx: AppContext; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger({ level: 'debug', destination: sink });
  // processJob reads only these two before it hands a foreign job back; anything else it touched
  // would throw here.
  const ctx = { deploymentId: OURS, logger } as unknown as AppContext;
  return {
    ctx,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

function fakeJob(data: unknown, name = 'sweep-notifications') {
  const moveToDelayed = vi.fn(async (_timestamp: number, _token?: string) => undefined);
  const job = { id: 'sweep@x@1', name, queueName: 'notifications', data, moveToDelayed } as unknown as Job;
  return { job, moveToDelayed };
}

describe('defaultQueuePrefix', () => {
  it('is forewarn: and the first 12 hex digits of the deployment id', () => {
    expect(defaultQueuePrefix(OURS)).toBe('forewarn:0f1e2d3c4b5a');
    expect(defaultQueuePrefix(THEIRS)).not.toBe(defaultQueuePrefix(OURS));
  });
});

describe('the envelope', () => {
  it('names the owner and comes off before the job schema parses the rest', () => {
    const data = { tickAt: new Date(NOW).toISOString(), deploymentId: THEIRS };
    expect(ownerOf(data)).toBe(THEIRS);
    expect(unstamp(data)).toEqual({ tickAt: new Date(NOW).toISOString() });
    expect(ownerOf({ tickAt: 'x' })).toBeNull();
    expect(ownerOf(null)).toBeNull();
  });
});

describe('processJob', () => {
  it("leaves another deployment's job in the queue: delayed with the worker's token, DelayedError, a warning naming both", async () => {
    vi.useFakeTimers({ now: NOW, toFake: ['Date'] });
    try {
      const { ctx, lines } = context();
      // Even a job this release does not know: its owner may run another release.
      for (const name of ['sweep-notifications', 'some-future-job']) {
        const { job, moveToDelayed } = fakeJob(
          { tickAt: new Date(NOW).toISOString(), deploymentId: THEIRS },
          name,
        );
        await expect(processJob(job, ctx, 'lock-token')).rejects.toBeInstanceOf(DelayedError);
        expect(moveToDelayed).toHaveBeenCalledExactlyOnceWith(NOW + FOREIGN_JOB_DELAY_MS, 'lock-token');
      }
      const warnings = lines().filter((l) => l.code === 'FW_JOB_FOREIGN');
      expect(warnings).toHaveLength(2);
      expect(warnings[0]).toMatchObject({
        level: 'warn',
        jobId: 'sweep@x@1',
        job: 'sweep-notifications',
        jobDeployment: THEIRS,
        deployment: OURS,
      });
      expect(String(warnings[0]!.msg)).toContain(THEIRS);
      expect(String(warnings[0]!.msg)).toContain(OURS);
    } finally {
      vi.useRealTimers();
    }
  });

  it('fails a job that names no deployment (queued before 003) for good, and moves nothing', async () => {
    const { ctx } = context();
    const { job, moveToDelayed } = fakeJob({ tickAt: new Date(NOW).toISOString() });
    const failure = processJob(job, ctx, 'lock-token');
    await expect(failure).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(failure).rejects.toThrow(/deploymentId: expected the UUID of the deployment that queued it/);
    expect(moveToDelayed).not.toHaveBeenCalled();
  });

  it("checks its own deployment's job against the job's schema, envelope aside", async () => {
    const { ctx } = context();
    const { job, moveToDelayed } = fakeJob({ tickAt: 'yesterday', deploymentId: OURS });
    await expect(processJob(job, ctx, 'lock-token')).rejects.toThrow(/invalid payload: tickAt/);
    expect(moveToDelayed).not.toHaveBeenCalled();
  });
});
