// Job: fan an incident event out to the notifications it causes, then queue their delivery.
import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import { fanOutIncidentEvent } from '../lib/notifications/fanout.ts';
import { enqueueDeliveries } from './deliver-notifications.ts';

export const name = 'fanout-incident-event';
export const queue = 'notifications';

export const payload = z.strictObject({
  eventId: z.string().regex(/^\d+$/, 'expected an incident_events id'),
});

export const defaultOptions: JobsOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: { age: 24 * 3_600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3_600 },
};

/** One fan-out per event however often it is asked for; the sweeper uses its own ids. */
export const jobIdFor = (eventId: string) => `fanout@${eventId}`;

export async function handle(data: z.infer<typeof payload>, ctx: AppContext) {
  return fanOutIncidentEvent(ctx, data.eventId, (ids, batchKey) =>
    enqueueDeliveries(ctx, ids, `fanout@${batchKey}`),
  );
}
