// The BullMQ queues and the typed way to put a job on them: the payload is validated against its
// job's schema on the way in, as it is on the way out (jobs/registry.ts), and stamped with the
// deployment id (lib/queue/identity.ts) so that a worker can tell whose job it holds.
import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { jobRegistry, type JobName, type JobPayload } from '../../jobs/registry.ts';
import { stamp } from './identity.ts';

/**
 * One queue per kind of work, each with its own workers (workers/), so that none waits behind
 * another: a new incident's fan-out and its ops alert never queue behind minutes of user email.
 */
export const QUEUE_NAMES = ['detection', 'fanout', 'delivery', 'ops-alerts'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export class Queues {
  private readonly queues = new Map<QueueName, Queue>();
  private readonly connection: Redis;
  readonly prefix: string;
  /** Stamped on every job added here. */
  readonly deploymentId: string;

  constructor(connection: Redis, prefix: string, deploymentId: string) {
    this.connection = connection;
    this.prefix = prefix;
    this.deploymentId = deploymentId;
  }

  get(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.connection, prefix: this.prefix });
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Adds a job; a job whose `jobId` already exists is not added again (BullMQ's dedupe). */
  async enqueue<N extends JobName>(
    name: N,
    payload: JobPayload<N>,
    options: JobsOptions = {},
  ): Promise<void> {
    const definition = jobRegistry[name];
    const data = stamp(definition.payload.parse(payload), this.deploymentId);
    await this.get(definition.queue).add(name, data, { ...definition.defaultOptions, ...options });
  }

  /** Adds many jobs of one kind in one round trip. */
  async enqueueBulk<N extends JobName>(
    name: N,
    jobs: ReadonlyArray<{ payload: JobPayload<N>; jobId: string; options?: JobsOptions }>,
  ): Promise<void> {
    if (jobs.length === 0) return;
    const definition = jobRegistry[name];
    await this.get(definition.queue).addBulk(
      jobs.map((job) => ({
        name,
        data: stamp(definition.payload.parse(job.payload), this.deploymentId),
        opts: { ...definition.defaultOptions, ...job.options, jobId: job.jobId },
      })),
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
