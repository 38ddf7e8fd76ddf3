// Whose job is this? Every job carries the deployment id of the database that queued it (added
// by Queues.enqueue, checked by processJob before anything else), and the default key prefix is
// derived from that id, so deployments on one Redis do not even see each other's keys. Should two
// share a prefix all the same (an explicit FOREWARN_QUEUE_PREFIX), a worker leaves the other's
// jobs in the queue for their owner instead of running them against the wrong database.
import { DelayedError, type Job } from 'bullmq';
import { z } from 'zod';
import { ForewarnError } from '../errors.ts';
import type { Logger } from '../logger.ts';

/** How long a refused job waits before a worker (its owner's, one hopes) takes it again. */
export const FOREIGN_JOB_DELAY_MS = 5_000;

/** `forewarn:` and the first 12 hex digits of the deployment id (48 bits: no two ever meet). */
export function defaultQueuePrefix(deploymentId: string): string {
  return `forewarn:${deploymentId.replaceAll('-', '').slice(0, 12)}`;
}

/** The field every payload carries besides its job's own (which each job's schema defines). */
const envelope = z.object({ deploymentId: z.uuid() });

export type Stamped<T> = T & { deploymentId: string };

export function stamp<T extends object>(payload: T, deploymentId: string): Stamped<T> {
  return { ...payload, deploymentId };
}

/** The deployment a job's data names, or null when it names none (a job from before 003). */
export function ownerOf(data: unknown): string | null {
  const parsed = envelope.safeParse(data);
  return parsed.success ? parsed.data.deploymentId : null;
}

/** The job's own payload, without the envelope, for its schema to parse. */
export function unstamp(data: unknown): unknown {
  if (typeof data !== 'object' || data === null) return data;
  const { deploymentId: _owner, ...payload } = data as Record<string, unknown>;
  return payload;
}

/**
 * Refuses a job queued by another deployment: it goes back to the delayed set untouched (no
 * attempt counted, nothing run, nothing dropped) for its owner's workers, and BullMQ is told so
 * with DelayedError, which it does not count as a failure.
 */
export async function leaveForOwner(
  job: Job,
  token: string | undefined,
  ours: string,
  theirs: string,
  logger: Logger,
): Promise<never> {
  logger.warn(
    {
      component: 'worker',
      code: 'FW_JOB_FOREIGN',
      queue: job.queueName,
      job: job.name,
      jobId: job.id,
      jobDeployment: theirs,
      deployment: ours,
    },
    `job ${job.name} ${job.id} belongs to deployment ${theirs}, this worker serves deployment ${ours}: ` +
      `left in the queue for its owner. Two deployments share the queue prefix; give each its own FOREWARN_QUEUE_PREFIX (or leave it unset).`,
  );
  if (token === undefined) {
    throw new ForewarnError('FW_JOB_FOREIGN', `job ${job.id}: no lock token to hand it back with`);
  }
  await job.moveToDelayed(Date.now() + FOREIGN_JOB_DELAY_MS, token);
  throw new DelayedError();
}
