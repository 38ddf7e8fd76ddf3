// Worker for the detection queue: detector ticks.
import { Worker } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import { processJob } from '../jobs/registry.ts';
import { redisOptions } from '../lib/queue/redis.ts';

export function startDetectionWorker(ctx: AppContext): Worker {
  return new Worker('detection', (job, token) => processJob(job, ctx, token), {
    connection: redisOptions(ctx.env.redisUrl),
    prefix: ctx.queues.prefix,
    concurrency: ctx.config().workers.detection.concurrency,
    autorun: true,
  });
}
