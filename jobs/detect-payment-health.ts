// Job: run the payment-health detector for one scheduled tick.
import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import { runPaymentHealthTick } from '../lib/detection/payment-health-tick.ts';
import { enqueueDeliveries } from './deliver-notifications.ts';
import * as fanoutIncidentEvent from './fanout-incident-event.ts';

export const name = 'detect-payment-health';
export const queue = 'detection';

export const payload = z.strictObject({
  /** The cron fire time this job evaluates, ISO 8601. */
  tickAt: z.iso.datetime(),
});

export const defaultOptions: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1_000 },
  // Kept for an hour so that a replica firing the same tick late finds the id taken.
  removeOnComplete: { age: 3_600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3_600 },
};

/**
 * The job id of a tick: replicas that fire the same tick add the same job, which BullMQ keeps
 * once; another deployment's tick at the same time is another job.
 */
export function tickJobId(deploymentId: string, tickAt: number): string {
  return `payment-health@${deploymentId}@${new Date(tickAt).toISOString()}`;
}

export async function handle(data: z.infer<typeof payload>, ctx: AppContext) {
  const result = await runTickAndDispatch(ctx, Date.parse(data.tickAt));
  return { outcome: result.outcome, changes: result.changes.length, skippedRows: result.skippedRows };
}

/** One tick, then the fan-out of each event it recorded (also what `forewarn run` does). */
export async function runTickAndDispatch(
  ctx: AppContext,
  tickAt: number,
  options: { dryRun?: boolean } = {},
) {
  const result = await runPaymentHealthTick(ctx, tickAt, options);
  if (options.dryRun) return result;
  // The events are committed; their fan-out is the notification pipeline's (and the sweeper's,
  // should this enqueue be lost).
  await fanoutIncidentEvent.enqueueFanouts(
    ctx,
    result.recorded.map((recorded) => recorded.eventId),
  );
  // A data-feed alert the tick recorded itself (the sweeper sends it too, should this be lost).
  if (result.opsNotificationIds.length > 0)
    await enqueueDeliveries(ctx, result.opsNotificationIds, `feed@${ctx.deploymentId}@${result.tickAt}`);
  return result;
}
