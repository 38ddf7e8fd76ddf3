// The payment-health detector's public surface.
export {
  detectPaymentHealth,
  initialPaymentHealthState,
  assessShare,
  baselineRate,
  quantileOfBins,
  upgradeState,
  DETECTOR,
  INCIDENT_KINDS,
} from './detect.ts';
export type { PaymentHealthFindings, PaymentHealthSignals } from './detect.ts';
export {
  BUCKET_MS,
  LATENCY_BINS,
  LATENCY_EDGES_MS,
  addTally,
  copyTally,
  emptyTally,
  latencyBin,
  pairKey,
  settledFromFor,
  windowOf,
} from './signals.ts';
export type { PairSignals, SignalSet, Tally } from './signals.ts';
export { effectiveFinish, noteBadUser, outcomeOf, rankCodes, SignalBuilder } from './observe.ts';
export type { AttemptStatus, ObservedAttempt, Outcome, SignalBuilderOptions } from './observe.ts';
export {
  thresholdsFor,
  lookback,
  windowLengths,
  settingsProblems,
  paymentHealthThresholdsSchema,
  paymentHealthOverridesSchema,
} from './thresholds.ts';
export type { PaymentHealthSettings, PaymentHealthThresholds } from './thresholds.ts';
export type * from './types.ts';
export { Replay, replayPaymentHealth } from './replay.ts';
export type { ReplayedIncident, ReplayOptions, ReplayResult } from './replay.ts';
export { channelStatuses } from './status.ts';
export type { ChannelState, ChannelStatus, OpenPaymentIncident, StatusInput } from './status.ts';
