// Every job the daemon knows: name → payload schema, queue and handler. The enqueue side
// (lib/queue/queues.ts) and the process side (processJob) both go through this map.
import { UnrecoverableError, type Job, type JobsOptions } from 'bullmq';
import type { z } from 'zod';
import type { AppContext } from '../lib/context.ts';
import * as deliverNotifications from './deliver-notifications.ts';
import * as detectPaymentHealth from './detect-payment-health.ts';
import * as fanoutIncidentEvent from './fanout-incident-event.ts';
import * as sweepNotifications from './sweep-notifications.ts';

interface JobDefinition<S extends z.ZodType> {
  name: string;
  queue: 'detection' | 'notifications';
  payload: S;
  defaultOptions: JobsOptions;
  handle: (data: z.infer<S>, ctx: AppContext) => Promise<unknown>;
}

function define<S extends z.ZodType>(definition: JobDefinition<S>): JobDefinition<S> {
  return definition;
}

export const jobRegistry = {
  [detectPaymentHealth.name]: define(detectPaymentHealth),
  [fanoutIncidentEvent.name]: define(fanoutIncidentEvent),
  [deliverNotifications.name]: define(deliverNotifications),
  [sweepNotifications.name]: define(sweepNotifications),
} as const;

export type JobName = keyof typeof jobRegistry;
export type JobPayload<N extends JobName> = z.input<(typeof jobRegistry)[N]['payload']>;

/** The processor behind every worker: validates the payload at the boundary, then runs the handler. */
export async function processJob(job: Job, ctx: AppContext): Promise<unknown> {
  const definition = (jobRegistry as Record<string, JobDefinition<z.ZodType>>)[job.name];
  if (!definition)
    throw new UnrecoverableError(
      `unknown job "${job.name}"; expected one of ${Object.keys(jobRegistry).join(', ')}`,
    );
  const parsed = definition.payload.safeParse(job.data);
  if (!parsed.success) {
    throw new UnrecoverableError(
      `job ${job.name} ${job.id}: invalid payload: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  return definition.handle(parsed.data, ctx);
}
