// Worker for the ops-alerts queue: ops alerts delivered, on an SMTP connection of their own.
import { Worker } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import { processJob } from '../jobs/registry.ts';
import { redisOptions } from '../lib/queue/redis.ts';

export function startOpsAlertsWorker(ctx: AppContext): Worker {
  return new Worker('ops-alerts', (job, token) => processJob(job, ctx, token), {
    connection: redisOptions(ctx.env.redisUrl),
    prefix: ctx.queues.prefix,
    concurrency: ctx.config().workers.opsAlerts.concurrency,
    autorun: true,
  });
}
