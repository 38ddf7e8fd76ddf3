// Job: fan an incident event out to the notifications it causes, then queue their delivery.
import { z } from 'zod';
import { UnrecoverableError, type JobsOptions } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import { fanOutCauseEvent } from '../lib/notifications/fanout.ts';
import { readIncidentEventId, readIncidentEventUids } from '../lib/notifications/store.ts';
import { enqueueDeliveries } from './deliver-notifications.ts';

export const name = 'fanout-incident-event';
export const queue = 'fanout';

export const payload = z.strictObject({
  /**
   * The event's uid (incident_events.uid), not its id: a recreated or restored database hands
   * out the same ids again, and a job id built from one could name a job Redis still keeps.
   */
  eventUid: z.uuid({ message: 'expected an incident_events uid' }),
});

export const defaultOptions: JobsOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: { age: 24 * 3_600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3_600 },
};

/** One fan-out per event however often it is asked for; the sweeper uses its own ids. */
export const jobIdFor = (eventUid: string) => `fanout@${eventUid}`;

export async function handle(data: z.infer<typeof payload>, ctx: AppContext) {
  const eventId = await readIncidentEventId(ctx.db, data.eventUid);
  if (eventId === null) {
    // Events are committed before their fan-out is queued, so this one will never appear.
    throw new UnrecoverableError(
      `incident event ${data.eventUid} does not exist in this database; expected the uid of a row of forewarn.incident_events`,
    );
  }
  return fanOutCauseEvent(ctx, eventId, (ids, batchKey) => enqueueDeliveries(ctx, ids, `fanout@${batchKey}`));
}

/**
 * Queues the fan-out of committed events, given their ids, under ids made from their uids.
 * `swept` (the sweeper) gives them an id of their own, never the original's (which may still
 * be kept as completed or failed), and the same one at every sweep.
 */
export async function enqueueFanouts(
  ctx: AppContext,
  eventIds: readonly string[],
  sweep: { swept?: boolean; options?: JobsOptions } = {},
): Promise<void> {
  if (eventIds.length === 0) return;
  const uids = await readIncidentEventUids(ctx.db, eventIds);
  await ctx.queues.enqueueBulk(
    name,
    uids.map((eventUid) => ({
      payload: { eventUid },
      jobId: sweep.swept ? `${jobIdFor(eventUid)}@sweep` : jobIdFor(eventUid),
      ...(sweep.options ? { options: sweep.options } : {}),
    })),
  );
}
