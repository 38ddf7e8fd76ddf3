// The inactivity detector's own settings (config key detectors.inactivity, beside the base
// settings every detector has): the reminder steps, the oldest inactivity still reminded, the
// pacing and the page size. Every key is documented in config/forewarn.yaml.
import { z } from 'zod';

const positiveInt = z.number().int().positive();

const inactivityShape = {
  /** Days without activity at which a check-up goes out, ascending: [3, 30] reminds at 3 and 30 days. */
  stepDays: z.array(positiveInt).min(1).max(10),
  /** Users idle longer than this are never reminded (a first run must not mail accounts abandoned years ago). */
  maxIdleDays: positiveInt,
  /** At most this many check-ups are recorded per minute; the rest wait for the next passes. */
  remindersPerMinute: positiveInt,
  /** Users read per page of the scan (their states are read and their check-ups recorded per page). */
  pageSize: positiveInt.max(20_000),
};

export const inactivitySettingsSchema = z.strictObject(inactivityShape);

export type InactivitySettings = z.infer<typeof inactivitySettingsSchema>;

/** What no single key's check sees: steps in order, and the maximum beyond the last step. */
export function inactivitySettingsProblems(
  s: InactivitySettings,
): Array<{ path: string[]; expected: string; found: unknown }> {
  const problems: Array<{ path: string[]; expected: string; found: unknown }> = [];
  s.stepDays.forEach((days, i) => {
    if (i > 0 && days <= s.stepDays[i - 1]!)
      problems.push({
        path: ['stepDays', String(i)],
        expected: `steps in ascending order, each greater than the one before (${s.stepDays[i - 1]})`,
        found: days,
      });
  });
  const last = s.stepDays.at(-1)!;
  if (s.maxIdleDays <= last)
    problems.push({
      path: ['maxIdleDays'],
      expected: `more days than the last step (${last})`,
      found: s.maxIdleDays,
    });
  return problems;
}
