// Worker for the notifications queue: fan-outs, deliveries and the sweeper.
import { Worker } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import { processJob } from '../jobs/registry.ts';
import { redisOptions } from '../lib/queue/redis.ts';

export function startNotificationsWorker(ctx: AppContext): Worker {
  return new Worker('notifications', (job, token) => processJob(job, ctx, token), {
    connection: redisOptions(ctx.env.redisUrl),
    prefix: ctx.queues.prefix,
    concurrency: ctx.config().workers.notifications.concurrency,
    autorun: true,
  });
}
