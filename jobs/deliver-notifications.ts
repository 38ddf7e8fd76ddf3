// Job: deliver a batch of recorded notifications (claim, render, send, record).
import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import { deliverNotifications } from '../lib/notifications/deliver.ts';

export const name = 'deliver-notifications';
export const queue = 'notifications';

/** Notifications per delivery job: one job per recipient would cap throughput at BullMQ's job rate. */
export const MAX_IDS_PER_JOB = 1_000;

export const payload = z.strictObject({
  ids: z.array(z.string().regex(/^\d+$/, 'expected a notifications id')).min(1).max(MAX_IDS_PER_JOB),
});

export const defaultOptions: JobsOptions = {
  // Sending failures are handled per message inside the job; a failed job (e.g. the database
  // was down) is retried as a whole, and claims make that safe.
  attempts: 5,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: { age: 3_600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3_600 },
};

export async function handle(data: z.infer<typeof payload>, ctx: AppContext) {
  const outcome = await deliverNotifications(
    {
      db: ctx.db,
      config: ctx.config,
      logger: ctx.logger,
      templates: await ctx.templates(),
      email: ctx.email,
      workerId: ctx.workerId,
    },
    data.ids,
  );
  // Temporary failures come back when due; the sweeper is the safety net if this is lost.
  for (const retry of outcome.retries) {
    await ctx.queues.enqueue(
      name,
      { ids: [retry.id] },
      {
        // The deployment id keeps a recreated database's notification ids apart from this one's.
        jobId: `retry@${ctx.deploymentId}@${retry.id}@${retry.retryAt}`,
        delay: Math.max(0, retry.retryAt - Date.now()),
      },
    );
  }
  return {
    claimed: outcome.claimed,
    sent: outcome.sent,
    failed: outcome.failed,
    cancelled: outcome.cancelled,
    lost: outcome.lost,
    retries: outcome.retries.length,
  };
}

/**
 * Puts ids on the queue in jobs of at most MAX_IDS_PER_JOB, with job ids derived from `key`, which
 * must not be made from database ids alone (a recreated database repeats them): the fan-out's keys
 * hold the event's uid, the sweeper's the deployment id.
 */
export async function enqueueDeliveries(ctx: AppContext, ids: readonly string[], key: string): Promise<void> {
  const jobs = [];
  for (let i = 0; i < ids.length; i += MAX_IDS_PER_JOB) {
    jobs.push({
      payload: { ids: ids.slice(i, i + MAX_IDS_PER_JOB) },
      jobId: `deliver@${key}@${i / MAX_IDS_PER_JOB}`,
    });
  }
  await ctx.queues.enqueueBulk(name, jobs);
}
