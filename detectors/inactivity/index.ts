// The inactivity detector's public surface.
export { detectInactivity, periodEnded, periodStands, stepReached, type InactivityRules } from './detect.ts';
export { inactivitySettingsProblems, inactivitySettingsSchema, type InactivitySettings } from './settings.ts';
export { CAUSE_KIND, DETECTOR } from './types.ts';
export type * from './types.ts';
