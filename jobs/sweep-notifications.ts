// Job: the sweeper. PostgreSQL holds the truth, so whatever the queue lost (Redis flushed, a job
// dropped between commit and enqueue, a worker killed holding claims) is found here and queued
// again: events whose fan-out stalled, and deliveries that are due or whose claim expired.
import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import { readDueNotifications, readStalledEvents } from '../lib/notifications/store.ts';
import { enqueueDeliveries, name as deliverName } from './deliver-notifications.ts';
import { enqueueFanouts } from './fanout-incident-event.ts';

export const name = 'sweep-notifications';
export const queue = 'notifications';

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

export async function handle(data: z.infer<typeof payload>, ctx: AppContext) {
  const { staleSeconds } = ctx.config().notifications.sweeper;
  const tick = Date.parse(data.tickAt);
  const events = await readStalledEvents(ctx.db, staleSeconds);
  // Ids of their own (the event's uid and this tick), never the original's, which may still be
  // kept as completed or failed.
  await enqueueFanouts(ctx, events, { sweptAt: tick });
  const due = await readDueNotifications(ctx.db, staleSeconds, MAX_SWEPT);
  await enqueueDeliveries(
    ctx,
    due.filter((n) => !n.claimExpired).map((n) => n.id),
    `sweep@${ctx.deploymentId}@${tick}`,
  );
  // A claim that ran out is taken over only by a claim of that row alone (claimNotifications):
  // one job each, so that a message that crashed its worker is retried without others.
  await ctx.queues.enqueueBulk(
    deliverName,
    due
      .filter((n) => n.claimExpired)
      .map((n) => ({
        payload: { ids: [n.id] },
        jobId: `deliver@sweep@${ctx.deploymentId}@${tick}@claim-${n.id}`,
      })),
  );
  if (events.length > 0 || due.length > 0) {
    ctx.logger.warn(
      { component: 'sweeper', events: events.length, deliveries: due.length },
      'sweeper re-queued work the queue had lost or left behind',
    );
  }
  return { events: events.length, deliveries: due.length };
}
