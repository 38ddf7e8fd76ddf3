// Maintenance windows (config `maintenance.windows`): recurring spans, such as a bank's nightly
// maintenance, during which a subject's trouble is expected and its users are not warned. Pure:
// the moment is passed in, and the zone's rules (offsets, daylight saving time) come from Intl
// for the window's IANA zone, so a window at 01:30-03:30 local stays at those local times on
// both sides of a clock change.
import { atWallClock, wallClock } from '../policy/quiet-hours.ts';

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface MaintenanceWindow {
  /** Names the window in ops messages and in the withheld deliveries' reason. */
  name: string;
  /** The detector whose subjects it covers (a registered detector's id). */
  detector: string;
  /** Subject keys as the detector names them; `*` matches any run of characters ("unionpay:*"). */
  subjects: readonly string[];
  /** The local days on which an occurrence starts. */
  days: readonly Weekday[];
  /** Local wall-clock times "HH:MM"; `from` later than `to` spans midnight into the next day. */
  from: string;
  to: string;
  /** IANA zone of `days`, `from` and `to`. */
  timezone: string;
}

export interface MaintenanceOccurrence {
  window: MaintenanceWindow;
  /** When this occurrence began and ends (epoch ms). */
  start: number;
  end: number;
}

/** Whether `subjectKey` matches a pattern where `*` stands for any run of characters. */
export function subjectMatches(pattern: string, subjectKey: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`).test(subjectKey);
}

/**
 * The occurrence of a window that covers the subject at `at`, or null. The first window in the
 * config's order wins when several do. An occurrence starts on one of its `days` at `from` local
 * time; one that spans midnight started the local day before.
 */
export function maintenanceAt(
  windows: readonly MaintenanceWindow[],
  subject: { detector: string; subjectKey: string },
  at: number,
): MaintenanceOccurrence | null {
  for (const window of windows) {
    if (window.detector !== subject.detector) continue;
    if (!window.subjects.some((p) => subjectMatches(p, subject.subjectKey))) continue;
    const occurrence = occurrenceAt(window, at);
    if (occurrence) return occurrence;
  }
  return null;
}

/** The window's occurrence that holds `at`: one that started today, or yesterday, local time. */
export function occurrenceAt(window: MaintenanceWindow, at: number): MaintenanceOccurrence | null {
  const today = wallClock(at, window.timezone);
  const from = hm(window.from);
  const to = hm(window.to);
  const spansMidnight = from.hour * 60 + from.minute > to.hour * 60 + to.minute;
  for (const back of spansMidnight ? [0, 1] : [0]) {
    const day = new Date(Date.UTC(today.year, today.month - 1, today.day - back));
    if (!window.days.includes(WEEKDAYS[day.getUTCDay()]!)) continue;
    const date = { year: day.getUTCFullYear(), month: day.getUTCMonth() + 1, day: day.getUTCDate() };
    const endDay = new Date(Date.UTC(date.year, date.month - 1, date.day + (spansMidnight ? 1 : 0)));
    const start = atWallClock({ ...date, ...from }, window.timezone);
    const end = atWallClock(
      {
        year: endDay.getUTCFullYear(),
        month: endDay.getUTCMonth() + 1,
        day: endDay.getUTCDate(),
        ...to,
      },
      window.timezone,
    );
    if (at >= start && at < end) return { window, start, end };
  }
  return null;
}

function hm(time: string): { hour: number; minute: number } {
  const [hour, minute] = time.split(':').map(Number);
  return { hour: hour!, minute: minute! };
}
