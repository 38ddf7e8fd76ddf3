// Quiet hours in a recipient's own time zone: whether a moment falls in a daily window such as
// 22:00-08:00 there, and when that window ends. The zone's rules (offsets, daylight saving time)
// come from Intl for the zone's IANA name; nothing here assumes an offset.

/** A daily window of local wall-clock times, "HH:MM"; `from` later than `to` spans midnight. */
export interface QuietWindow {
  from: string;
  to: string;
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
}

/** One formatter per zone: making one costs far more than using it, and users share a few zones. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether `timeZone` is an IANA zone Intl knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The wall clock in `timeZone` at `at` (epoch ms). */
export function wallClock(at: number, timeZone: string): WallClock {
  const parts: Record<string, number> = {};
  for (const p of formatterFor(timeZone).formatToParts(at))
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
  };
}

/**
 * The moment the wall clock in `timeZone` shows the given local time. Found by asking Intl what
 * the clock shows at a guess and moving the guess by the difference, twice (the second step
 * settles a daylight-saving change between guess and answer). A local time that does not exist
 * (skipped at a spring-forward) is read as clocks show it after the change, as Temporal's
 * "compatible" does: 02:30 on a night that skips 02:00-03:00 is 03:30.
 */
export function atWallClock(local: WallClock, timeZone: string): number {
  const target = Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute);
  const missing = (at: number) => {
    const seen = wallClock(at, timeZone);
    return target - Date.UTC(seen.year, seen.month - 1, seen.day, seen.hour, seen.minute);
  };
  let guess = target;
  for (let i = 0; i < 2; i++) guess += missing(guess);
  // In a gap the steps swing across it and stop before it: step once more, forward only.
  return guess + Math.max(0, missing(guess));
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/**
 * When the quiet window that `at` falls in ends, in `timeZone`; null when `at` is outside it.
 * With 22:00-08:00, 03:00 local is held until 08:00 that day, 23:00 until 08:00 the next.
 */
export function quietUntil(at: number, timeZone: string, window: QuietWindow): number | null {
  const from = minutesOf(window.from);
  const to = minutesOf(window.to);
  if (from === to) return null;
  const now = wallClock(at, timeZone);
  const minute = now.hour * 60 + now.minute;
  const spansMidnight = from > to;
  const quiet = spansMidnight ? minute >= from || minute < to : minute >= from && minute < to;
  if (!quiet) return null;
  // Before midnight in a window that spans it, the window ends tomorrow.
  const nextDay = spansMidnight && minute >= from;
  const day = new Date(Date.UTC(now.year, now.month - 1, now.day + (nextDay ? 1 : 0)));
  const end = atWallClock(
    {
      year: day.getUTCFullYear(),
      month: day.getUTCMonth() + 1,
      day: day.getUTCDate(),
      hour: Math.floor(to / 60),
      minute: to % 60,
    },
    timeZone,
  );
  return Math.max(end, at);
}

/**
 * When the local day that `at` falls in began in `timeZone` (its midnight), and when the next one
 * begins: what a per-day count counts from, and where a message over the day's cap waits for.
 * A day whose midnight does not exist (a zone that springs forward at 00:00) starts when clocks
 * show it after the change.
 */
export function localDay(at: number, timeZone: string): { start: number; next: number } {
  const now = wallClock(at, timeZone);
  const midnight = (offsetDays: number) => {
    const day = new Date(Date.UTC(now.year, now.month - 1, now.day + offsetDays));
    return atWallClock(
      { year: day.getUTCFullYear(), month: day.getUTCMonth() + 1, day: day.getUTCDate(), hour: 0, minute: 0 },
      timeZone,
    );
  };
  return { start: Math.min(midnight(0), at), next: midnight(1) };
}
