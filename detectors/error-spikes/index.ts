// The error-spikes detector's public surface.
export {
  BUCKET_MS,
  DETECTOR,
  RULES,
  detectErrorSpikes,
  initialErrorSpikesState,
  upgradeState,
} from './detect.ts';
export type {
  CodeAssessment,
  ErrorSpikesFindings,
  ErrorSpikesSignals,
  ErrorSpikesState,
  Rule,
  SpikeChange,
  SpikeEvidence,
  SpikeOpened,
  SpikeResolved,
  TickOccurrences,
} from './detect.ts';
export { bucketStartFor, compareIds, emptyCounts } from './counts.ts';
export type { Bucket, CodeCounts, PlacedOccurrences, Places } from './counts.ts';
export { poissonUpperTail } from './poisson.ts';
export {
  DAY,
  HOUR,
  MINUTE,
  WEEK,
  errorSpikesThresholdsSchema,
  horizonsAt,
  settingsProblems,
} from './settings.ts';
export type { ErrorSpikesThresholds, Horizons } from './settings.ts';
