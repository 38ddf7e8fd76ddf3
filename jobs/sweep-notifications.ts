// Job: the sweeper. PostgreSQL holds the truth, so whatever the queue lost (Redis flushed, a job
// dropped between commit and enqueue, a worker killed holding claims) is found here and queued
// again: events whose fan-out stalled, and deliveries that are due or whose claim expired.
import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import { readDueNotifications, readStalledEvents } from '../lib/notifications/store.ts';
import { enqueueDeliveries } from './deliver-notifications.ts';

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

export const jobIdFor = (tickAt: number) => `sweep@${tickAt}`;

/** How many due deliveries one sweep queues at most; the next sweep takes the rest. */
const MAX_SWEPT = 50_000;

export async function handle(data: z.infer<typeof payload>, ctx: AppContext) {
  const { staleSeconds } = ctx.config().notifications.sweeper;
  const tick = Date.parse(data.tickAt);
  const events = await readStalledEvents(ctx.db, staleSeconds);
  for (const eventId of events) {
    await ctx.queues.enqueue(
      'fanout-incident-event',
      { eventId },
      { jobId: `fanout@${eventId}@sweep@${tick}` },
    );
  }
  const due = await readDueNotifications(ctx.db, staleSeconds, MAX_SWEPT);
  await enqueueDeliveries(ctx, due, `sweep@${tick}`);
  if (events.length > 0 || due.length > 0) {
    ctx.logger.warn(
      { component: 'sweeper', events: events.length, deliveries: due.length },
      'sweeper re-queued work the queue had lost or left behind',
    );
  }
  return { events: events.length, deliveries: due.length };
}
