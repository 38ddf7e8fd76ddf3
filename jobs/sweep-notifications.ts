// Job: the sweeper. PostgreSQL holds the truth, so whatever the queue lost (Redis flushed, a job
// dropped between commit and enqueue, a worker killed holding claims) is found here and queued
// again: events whose fan-out stalled, and deliveries that are due or whose claim expired. The
// jobs it makes have stable ids, so a backlog that is still queued, or still waiting for its
// turn, is not queued again at every sweep; they are removed once done, so that the same work
// can be queued again if it is ever lost again.
import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import { readDueNotifications, readStalledEvents, type DueNotification } from '../lib/notifications/store.ts';
import { deliveryJobFor, MAX_IDS_PER_JOB } from './deliver-notifications.ts';
import { enqueueFanouts } from './fanout-incident-event.ts';

export const name = 'sweep-notifications';
export const queue = 'fanout';

export const payload = z.strictObject({
  tickAt: z.iso.datetime(),
});

export const defaultOptions: JobsOptions = {
  attempts: 1,
  removeOnComplete: { age: 3_600, count: 1_000 },
  removeOnFail: { age: 24 * 3_600 },
};

/** One sweep per tick and deployment, however many schedulers fire it. */
export const jobIdFor = (deploymentId: string, tickAt: number) => `sweep@${deploymentId}@${tickAt}`;

/** How many due deliveries one sweep queues at most; the next sweep takes the rest. */
const MAX_SWEPT = 50_000;

/** A stable id is free again once its job is done, whichever way it ended. */
const SWEPT: JobsOptions = { removeOnComplete: true, removeOnFail: true };

export async function handle(data: z.infer<typeof payload>, ctx: AppContext) {
  const { staleSeconds } = ctx.config().notifications.sweeper;
  const events = await readStalledEvents(ctx.db, staleSeconds);
  await enqueueFanouts(ctx, events, { swept: true, options: SWEPT });
  const due = await readDueNotifications(ctx.db, staleSeconds, MAX_SWEPT);
  for (const audience of ['ops', 'user'] as const) {
    const { job, idPrefix } = deliveryJobFor(audience);
    await ctx.queues.enqueueBulk(
      job,
      sweptBatches(
        due.filter((n) => n.audience === audience),
        `${idPrefix}@sweep@${ctx.deploymentId}`,
      ).map((batch) => ({ ...batch, options: SWEPT })),
    );
  }
  if (events.length > 0 || due.length > 0) {
    ctx.logger.warn(
      { component: 'sweeper', events: events.length, deliveries: due.length },
      'sweeper re-queued work the queue had lost or left behind',
    );
  }
  return { events: events.length, deliveries: due.length };
}

/**
 * Due deliveries as jobs with ids that the next sweep gives the same work: pending rows by
 * ranges of MAX_IDS_PER_JOB ids (a range keeps its id however much of it is left), and each
 * expired claim alone, named by its attempt (a claim that ran out is taken over only by a claim
 * of that row alone, so that a message that crashed its worker is retried without others; the
 * next attempt is new work).
 */
function sweptBatches(
  due: readonly DueNotification[],
  key: string,
): Array<{ payload: { ids: string[] }; jobId: string }> {
  const ranges = new Map<bigint, string[]>();
  const batches = [];
  for (const n of due) {
    if (n.claimExpired) {
      batches.push({ payload: { ids: [n.id] }, jobId: `${key}@claim-${n.id}@${n.attempts}` });
      continue;
    }
    const range = BigInt(n.id) / BigInt(MAX_IDS_PER_JOB);
    const ids = ranges.get(range) ?? [];
    if (ids.length === 0) ranges.set(range, ids);
    ids.push(n.id);
  }
  for (const [range, ids] of ranges) batches.push({ payload: { ids }, jobId: `${key}@${range}` });
  return batches;
}
