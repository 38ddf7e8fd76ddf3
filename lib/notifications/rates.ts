// Sending rates per channel (notifications.rates), shared by every replica of a deployment: one
// token bucket per channel in Redis, which counts messages, not jobs (BullMQ's limiter counts
// jobs, and a delivery job carries up to a thousand messages). Delivery takes a token per message
// before each send and waits while the bucket is empty, at most maxWaitSeconds. The bucket's
// arithmetic is takeTokens below; the Lua script does the same in one atomic step, on Redis's
// own clock, so that replicas with different clocks share one bucket.
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.ts';

export interface BucketState {
  /** Tokens left (fractions accrue between takes). */
  tokens: number;
  /** When `tokens` was counted (epoch ms). */
  at: number;
}

export interface BucketLimits {
  perSecond: number;
  /** The most tokens the bucket holds: how many messages may go at once after a quiet spell. */
  burst: number;
}

/**
 * The bucket after trying to take `n` tokens at `now` (a missing bucket is full): `waitMs` 0 when
 * they were taken, else how long until there are `n` (nothing is taken then).
 */
export function takeTokens(
  state: BucketState | null,
  n: number,
  now: number,
  limits: BucketLimits,
): { state: BucketState; waitMs: number } {
  const before = state ?? { tokens: limits.burst, at: now };
  const tokens = Math.min(
    limits.burst,
    before.tokens + (Math.max(0, now - before.at) * limits.perSecond) / 1000,
  );
  if (tokens >= n) return { state: { tokens: tokens - n, at: now }, waitMs: 0 };
  return { state: { tokens, at: now }, waitMs: Math.ceil(((n - tokens) * 1000) / limits.perSecond) };
}

/** takeTokens in Redis: KEYS[1] the bucket; ARGV perSecond, burst, n. Returns the wait in ms. */
const TAKE_TOKENS = `
local perMs = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(saved[1])
local at = tonumber(saved[2])
if tokens == nil or at == nil then tokens = burst; at = now end
tokens = math.min(burst, tokens + math.max(0, now - at) * perMs)
local wait = 0
if tokens >= n then tokens = tokens - n else wait = math.ceil((n - tokens) / perMs) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / perMs) + 60000)
return wait
`;

type WithTakeTokens = Redis & {
  forewarnTakeTokens(key: string, perSecond: number, burst: number, n: number): Promise<number>;
};

/** The script defined once per connection (ioredis sends EVALSHA, and the script when Redis lacks it). */
const defined = new WeakSet<Redis>();

function withScript(redis: Redis): WithTakeTokens {
  if (!defined.has(redis)) {
    redis.defineCommand('forewarnTakeTokens', { numberOfKeys: 1, lua: TAKE_TOKENS });
    defined.add(redis);
  }
  return redis as WithTakeTokens;
}

export type TakeResult = { taken: true } | { taken: false; afterMs: number; reason: string };

export interface SendingRates {
  /**
   * Takes a token per message from the channel's bucket, waiting while it is empty. A channel
   * without a rate is not limited. Gives up when the wait would pass the channel's
   * maxWaitSeconds: the messages are then retried after `afterMs`.
   */
  take(channel: string, messages: number): Promise<TakeResult>;
}

/**
 * The rates of `config().notifications.rates`, with buckets at `<prefix>:rate:<channel>` (the
 * deployment's queue prefix, so that replicas of one deployment share them and two deployments
 * do not).
 */
export function sendingRates(
  redis: Redis,
  prefix: string,
  config: () => Config,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): SendingRates {
  const client = withScript(redis);
  return {
    async take(channel, messages) {
      const rate = config().notifications.rates[channel];
      if (!rate) return { taken: true };
      const burst = rate.burst ?? Math.max(1, Math.ceil(rate.perSecond));
      const maxWaitMs = rate.maxWaitSeconds * 1000;
      let waited = 0;
      // More messages than the bucket holds are taken a bucketful at a time.
      for (let left = messages; left > 0;) {
        const n = Math.min(left, burst);
        const waitMs = await client.forewarnTakeTokens(`${prefix}:rate:${channel}`, rate.perSecond, burst, n);
        if (waitMs === 0) {
          left -= n;
          continue;
        }
        if (waited + waitMs > maxWaitMs)
          return {
            taken: false,
            afterMs: waitMs,
            reason: `the sending rate of channel "${channel}" (${rate.perSecond}/s, shared by every replica) had no room within ${rate.maxWaitSeconds} s`,
          };
        await sleep(waitMs);
        waited += waitMs;
      }
      return { taken: true };
    },
  };
}
