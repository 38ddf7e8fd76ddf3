// Job: run one registered detector for one scheduled tick. Each detector in the registry
// (lib/detection/registry.ts) has a job of this kind, named `detect-<detector id>`, on the
// detection queue; jobs/registry.ts registers one per detector and the scheduler enqueues them.
import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import type { Detector, TickResult } from '../lib/detection/detector.ts';
import { enqueueDeliveries } from './deliver-notifications.ts';
import * as fanoutIncidentEvent from './fanout-incident-event.ts';

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

/** The name of a detector's tick job. */
export function jobName<Id extends string>(detectorId: Id): `detect-${Id}` {
  return `detect-${detectorId}`;
}

/**
 * The job id of a tick: replicas that fire the same tick add the same job, which BullMQ keeps
 * once; another deployment's tick at the same time is another job.
 */
export function tickJobId(detectorId: string, deploymentId: string, tickAt: number): string {
  return `${detectorId}@${deploymentId}@${new Date(tickAt).toISOString()}`;
}

/** A detector's tick job, for the job registry. */
export function detectionJob<Id extends string>(detector: Detector<Id>) {
  return {
    name: jobName(detector.id),
    queue,
    payload,
    defaultOptions,
    async handle(data: z.infer<typeof payload>, ctx: AppContext) {
      const result = await runTickAndDispatch(detector.tick, ctx, Date.parse(data.tickAt));
      return { outcome: result.outcome, changes: result.changeCount, skippedRows: result.skippedRows };
    },
  } as const;
}

/**
 * One tick of a detector (its `tick`, or its typed `run`), then the fan-out of each event it
 * recorded (also what `forewarn run` does).
 */
export async function runTickAndDispatch<R extends TickResult>(
  tick: (ctx: AppContext, tickAt: number, options?: { dryRun?: boolean }) => Promise<R>,
  ctx: AppContext,
  tickAt: number,
  options: { dryRun?: boolean } = {},
): Promise<R> {
  const result = await tick(ctx, tickAt, options);
  if (options.dryRun) return result;
  // The events are committed; their fan-out is the notification pipeline's (and the sweeper's,
  // should this enqueue be lost).
  await fanoutIncidentEvent.enqueueFanouts(ctx, result.eventIds);
  // An ops alert the tick recorded itself (the sweeper sends it too, should this be lost).
  if (result.opsNotificationIds.length > 0)
    await enqueueDeliveries(ctx, result.opsNotificationIds, `feed@${ctx.deploymentId}@${result.tickAt}`);
  return result;
}
