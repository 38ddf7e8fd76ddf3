// Every job the daemon knows: name → payload schema, queue and handler. The enqueue side
// (lib/queue/queues.ts) and the process side (processJob) both go through this map. Each schema
// is the job's own payload; the deployment id every job also carries is the queue's envelope
// (lib/queue/identity.ts), checked here before anything else.
import { UnrecoverableError, type Job, type JobsOptions } from 'bullmq';
import type { z } from 'zod';
import type { AppContext } from '../lib/context.ts';
import { leaveForOwner, ownerOf, unstamp } from '../lib/queue/identity.ts';
import * as deliverNotifications from './deliver-notifications.ts';
import * as deliverOpsAlerts from './deliver-ops-alerts.ts';
import { detectors, type RegisteredDetector } from '../lib/detection/registry.ts';
import * as detect from './detect.ts';
import * as fanoutIncidentEvent from './fanout-incident-event.ts';
import * as sweepNotifications from './sweep-notifications.ts';

interface JobDefinition<S extends z.ZodType> {
  name: string;
  queue: 'detection' | 'fanout' | 'delivery' | 'ops-alerts';
  payload: S;
  defaultOptions: JobsOptions;
  handle: (data: z.infer<S>, ctx: AppContext) => Promise<unknown>;
}

function define<S extends z.ZodType>(definition: JobDefinition<S>): JobDefinition<S> {
  return definition;
}

/** One tick job per registered detector: `detect-<id>`. */
type DetectionJobs = {
  [D in RegisteredDetector as `detect-${D['id']}`]: JobDefinition<typeof detect.payload>;
};
const detectionJobs = Object.fromEntries(
  detectors.map((detector) => [detect.jobName(detector.id), define(detect.detectionJob(detector))]),
) as DetectionJobs;

export const jobRegistry = {
  ...detectionJobs,
  [fanoutIncidentEvent.name]: define(fanoutIncidentEvent),
  [deliverNotifications.name]: define(deliverNotifications),
  [deliverOpsAlerts.name]: define(deliverOpsAlerts),
  [sweepNotifications.name]: define(sweepNotifications),
} as const;

export type JobName = keyof typeof jobRegistry;
export type JobPayload<N extends JobName> = z.input<(typeof jobRegistry)[N]['payload']>;

/**
 * The processor behind every worker: leaves another deployment's job for its owner, validates the
 * payload at the boundary, then runs the handler. `token` is the worker's lock on the job.
 */
export async function processJob(job: Job, ctx: AppContext, token?: string): Promise<unknown> {
  // Before the name or the payload: another deployment may run a release with other jobs.
  const owner = ownerOf(job.data);
  if (owner !== null && owner !== ctx.deploymentId) {
    return leaveForOwner(job, token, ctx.deploymentId, owner, ctx.logger);
  }
  const definition = (jobRegistry as Record<string, JobDefinition<z.ZodType>>)[job.name];
  if (!definition)
    throw new UnrecoverableError(
      `unknown job "${job.name}"; expected one of ${Object.keys(jobRegistry).join(', ')}`,
    );
  if (owner === null) {
    // Queued by a release before deployment ids; PostgreSQL still has its work, and the sweeper
    // queues it again in the new form.
    throw new UnrecoverableError(
      `job ${job.name} ${job.id}: invalid payload: deploymentId: expected the UUID of the deployment that queued it, got ${JSON.stringify((job.data as { deploymentId?: unknown } | null)?.deploymentId) ?? 'none'}`,
    );
  }
  const parsed = definition.payload.safeParse(unstamp(job.data));
  if (!parsed.success) {
    throw new UnrecoverableError(
      `job ${job.name} ${job.id}: invalid payload: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  return definition.handle(parsed.data, ctx);
}
