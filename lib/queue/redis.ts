// Redis connections for BullMQ. Workers need `maxRetriesPerRequest: null` so that a Redis restart
// pauses them instead of failing their blocking commands. BullMQ closes connections it creates
// from options, but never an instance it is handed, so workers get options.
import type { ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';

export function redisOptions(url: string): ConnectionOptions {
  return { url, maxRetriesPerRequest: null };
}

export function createRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null });
}
