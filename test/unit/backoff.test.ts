// Retry delays: exponential with full jitter, capped, never zero.
import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../../lib/notifications/backoff.ts';

describe('retry backoff', () => {
  const policy = { baseDelaySeconds: 30, maxDelaySeconds: 3_600 };

  it('doubles the ceiling with each attempt up to the maximum', () => {
    const top = () => 1; // the jitter's upper end
    expect(retryDelayMs(policy, 1, top)).toBe(30_000);
    expect(retryDelayMs(policy, 2, top)).toBe(60_000);
    expect(retryDelayMs(policy, 4, top)).toBe(240_000);
    expect(retryDelayMs(policy, 20, top)).toBe(3_600_000);
  });

  it('spreads retries over the whole interval, never below a tenth of a second', () => {
    expect(retryDelayMs(policy, 3, () => 0.5)).toBe(60_000);
    expect(retryDelayMs(policy, 3, () => 0)).toBe(100);
    expect(retryDelayMs({ baseDelaySeconds: 0.2, maxDelaySeconds: 10 }, 2, () => 0.5)).toBe(200);
  });
});
