// The payment-health detector's public surface.
export {
  detectPaymentHealth,
  initialPaymentHealthState,
  assess,
  baselineRate,
  DETECTOR,
  INCIDENT_KINDS,
} from './detect.ts';
export type { PaymentHealthFindings, PaymentHealthSignals } from './detect.ts';
export { buildSeries, pairKey, PairSeries, BUCKET_MS, zeroCounts } from './series.ts';
export type { BucketRow, Counts, SignalSeries } from './series.ts';
export {
  thresholdsFor,
  lookback,
  paymentHealthThresholdsSchema,
  paymentHealthOverridesSchema,
} from './thresholds.ts';
export type { PaymentHealthSettings, PaymentHealthThresholds } from './thresholds.ts';
export type * from './types.ts';
export { replayPaymentHealth } from './replay.ts';
export type { ReplayedIncident, ReplayOptions } from './replay.ts';
