// Worker for the fanout queue: incident events fanned out to their notifications, and the sweeper.
import { Worker } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import { processJob } from '../jobs/registry.ts';
import { redisOptions } from '../lib/queue/redis.ts';

export function startFanoutWorker(ctx: AppContext): Worker {
  return new Worker('fanout', (job, token) => processJob(job, ctx, token), {
    connection: redisOptions(ctx.env.redisUrl),
    prefix: ctx.queues.prefix,
    concurrency: ctx.config().workers.fanout.concurrency,
    autorun: true,
  });
}
