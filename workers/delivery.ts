// Worker for the delivery queue: notifications delivered to users.
import { Worker } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import { processJob } from '../jobs/registry.ts';
import { redisOptions } from '../lib/queue/redis.ts';

export function startDeliveryWorker(ctx: AppContext): Worker {
  return new Worker('delivery', (job, token) => processJob(job, ctx, token), {
    connection: redisOptions(ctx.env.redisUrl),
    prefix: ctx.queues.prefix,
    concurrency: ctx.config().workers.delivery.concurrency,
    autorun: true,
  });
}
