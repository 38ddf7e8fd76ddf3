// When to try a temporarily failed delivery again: exponential backoff with full jitter
// (AWS Architecture Blog, "Exponential Backoff and Jitter"), so that a recovering SMTP server is
// not hit by every retry at the same moment.

export interface BackoffPolicy {
  baseDelaySeconds: number;
  maxDelaySeconds: number;
}

/** Delay in ms before attempt `attempt + 1`, given `attempt` attempts so far (1 or more). */
export function retryDelayMs(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const ceiling =
    Math.min(policy.maxDelaySeconds, policy.baseDelaySeconds * 2 ** Math.max(0, attempt - 1)) * 1000;
  // Never less than a tenth of a second: a retry in the same instant would meet the same failure.
  return Math.max(100, Math.round(random() * ceiling));
}
