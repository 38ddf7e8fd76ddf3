// Simulated attempts as the payment-health detector reads platform rows, so unit tests and
// benchmarks can replay the detector on generated traffic without a database.
import type { ObservedAttempt } from '../detectors/payment-health/observe.ts';
import type { SimAttempt } from './traffic.ts';

export function observed(a: SimAttempt): ObservedAttempt {
  return {
    channel: a.channelId,
    region: a.region,
    userId: a.userId,
    status: a.status,
    createdAt: a.createdAt,
    finishedAt: a.finishedAt,
    latencyMs: a.latencyMs,
    errorCode: a.errorCode,
  };
}

/** The attempts as the detector reads them, lazily. */
export function* observeAll(attempts: Iterable<SimAttempt>): Generator<ObservedAttempt> {
  for (const a of attempts) yield observed(a);
}
