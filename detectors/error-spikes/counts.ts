// A code's counts between ticks (its row in forewarn.subject_state): settled occurrences in three
// tiers whose resolution falls with age, so that a code's state stays small however busy it is:
// minutes for the surge window, hours for the rest of the count window, days for the baseline
// weeks before it. Where it happened (channels, regions) is kept by minute for the surge window
// and by day for the count window; a few example attempt ids, newest first.
import { DAY, floorTo, HOUR, MINUTE, type Horizons } from './settings.ts';

/** [bucket start (epoch ms), occurrences]. */
export type Bucket = [at: number, n: number];
/** [bucket start, occurrences by channel, occurrences by region]. */
export type Places = [at: number, channels: Record<string, number>, regions: Record<string, number>];

export interface CodeCounts {
  v: 1;
  /** The reading these counts belong to (see ErrorSpikesSignals.epoch): other counts are discarded. */
  epoch: number;
  minutes: Bucket[];
  hours: Bucket[];
  days: Bucket[];
  minutePlaces: Places[];
  dayPlaces: Places[];
  /** Attempt ids, newest first. */
  examples: string[];
}

/**
 * Occurrences of a code as a reader groups them: by creation time in the bucket of its tier
 * (bucketStartFor), channel and region.
 */
export interface PlacedOccurrences {
  code: string;
  at: number;
  channel: string;
  region: string;
  n: number;
}

/** The bucket an occurrence created at `createdAt` is counted in: minute, hour or day by its age. */
export function bucketStartFor(createdAt: number, h: Horizons): number {
  if (createdAt >= h.surgeFrom) return floorTo(createdAt, MINUTE);
  if (createdAt >= h.windowFrom) return floorTo(createdAt, HOUR);
  return floorTo(createdAt, DAY);
}

export function emptyCounts(epoch: number): CodeCounts {
  return { v: 1, epoch, minutes: [], hours: [], days: [], minutePlaces: [], dayPlaces: [], examples: [] };
}

export function copyCounts(c: CodeCounts): CodeCounts {
  const places = (list: Places[]): Places[] => list.map(([at, ch, re]) => [at, { ...ch }, { ...re }]);
  return {
    v: 1,
    epoch: c.epoch,
    minutes: c.minutes.map(([a, n]) => [a, n]),
    hours: c.hours.map(([a, n]) => [a, n]),
    days: c.days.map(([a, n]) => [a, n]),
    minutePlaces: places(c.minutePlaces),
    dayPlaces: places(c.dayPlaces),
    examples: [...c.examples],
  };
}

/** Sparse buckets as a map while they are being changed. */
class Tier {
  readonly map = new Map<number, number>();
  add(at: number, n: number): void {
    this.map.set(at, (this.map.get(at) ?? 0) + n);
  }
  list(): Bucket[] {
    return [...this.map].filter(([, n]) => n !== 0).sort((a, b) => a[0] - b[0]);
  }
}

class PlaceTier {
  readonly map = new Map<number, { channels: Record<string, number>; regions: Record<string, number> }>();
  add(at: number, channels: Record<string, number>, regions: Record<string, number>): void {
    let entry = this.map.get(at);
    if (!entry) this.map.set(at, (entry = { channels: {}, regions: {} }));
    for (const [k, n] of Object.entries(channels)) entry.channels[k] = (entry.channels[k] ?? 0) + n;
    for (const [k, n] of Object.entries(regions)) entry.regions[k] = (entry.regions[k] ?? 0) + n;
  }
  list(): Places[] {
    return [...this.map].sort((a, b) => a[0] - b[0]).map(([at, e]): Places => [at, e.channels, e.regions]);
  }
}

/** Counts being changed for one tick: add occurrences, then `done` gives them back in their tiers. */
export class CountsBuilder {
  private readonly h: Horizons;
  private readonly minutes = new Tier();
  private readonly hours = new Tier();
  private readonly days = new Tier();
  private readonly minutePlaces = new PlaceTier();
  private readonly dayPlaces = new PlaceTier();
  private examples: string[];
  private readonly epoch: number;

  constructor(from: CodeCounts, h: Horizons) {
    this.h = h;
    this.epoch = from.epoch;
    // Re-tiered as of this tick: what aged out of a tier moves to the next, coarser one.
    for (const [at, n] of [...from.minutes, ...from.hours, ...from.days]) this.count(at, n);
    // Stored minute places are already in their day's places too.
    for (const [at, ch, re] of from.minutePlaces) if (at >= h.surgeFrom) this.minutePlaces.add(at, ch, re);
    for (const [at, ch, re] of from.dayPlaces)
      if (at >= floorTo(h.windowFrom, DAY)) this.dayPlaces.add(at, ch, re);
    this.examples = [...from.examples];
  }

  /** Adds occurrences bucketed at `at` (a minute, hour or day start: its tier decides). */
  count(at: number, n: number): void {
    const { surgeFrom, windowFrom, baselineFrom } = this.h;
    if (at >= surgeFrom) this.minutes.add(floorTo(at, MINUTE), n);
    else if (at >= windowFrom) this.hours.add(floorTo(at, HOUR), n);
    else if (at >= baselineFrom) this.days.add(floorTo(at, DAY), n);
  }

  /** Adds where occurrences bucketed at `at` (a minute or a day start) happened. */
  place(at: number, channels: Record<string, number>, regions: Record<string, number>): void {
    if (at >= this.h.surgeFrom) this.minutePlaces.add(floorTo(at, MINUTE), channels, regions);
    const day = floorTo(at, DAY);
    if (day >= floorTo(this.h.windowFrom, DAY)) this.dayPlaces.add(day, channels, regions);
  }

  /** Newer ids first; at most `limit` are kept. */
  noteExamples(ids: readonly string[], limit: number): void {
    const merged = [...new Set([...ids, ...this.examples])];
    merged.sort((a, b) => compareIds(b, a));
    this.examples = merged.slice(0, limit);
  }

  done(): CodeCounts {
    return {
      v: 1,
      epoch: this.epoch,
      minutes: this.minutes.list(),
      hours: this.hours.list(),
      days: this.days.list(),
      minutePlaces: this.minutePlaces.list(),
      dayPlaces: this.dayPlaces.list(),
      examples: this.examples,
    };
  }
}

/** Attempt ids are bigints as text: compared as numbers, whatever their length. */
export function compareIds(a: string, b: string): number {
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

export function isEmpty(c: CodeCounts): boolean {
  return c.minutes.length === 0 && c.hours.length === 0 && c.days.length === 0;
}

const sum = (list: readonly Bucket[]): number => list.reduce((s, [, n]) => s + n, 0);

/** What a code's counts say at a tick (counts re-tiered as of that tick). */
export interface CodeView {
  /** Occurrences in the count window (whole hours), and in the surge window. */
  inWindow: number;
  inSurgeWindow: number;
  /** Occurrences in the baseline weeks before the count window, and in the count window before the surge window. */
  beforeWindow: number;
  beforeSurge: number;
}

export function viewOf(c: CodeCounts): CodeView {
  const minutes = sum(c.minutes);
  const hours = sum(c.hours);
  return { inWindow: minutes + hours, inSurgeWindow: minutes, beforeWindow: sum(c.days), beforeSurge: hours };
}

/** The most affected channels and regions among the places, most first (ties by name). */
export function topPlaces(
  places: readonly Places[],
  limit: number,
): {
  topChannels: Array<{ channel: string; count: number }>;
  topRegions: Array<{ region: string; count: number }>;
} {
  const channels = new Map<string, number>();
  const regions = new Map<string, number>();
  for (const [, ch, re] of places) {
    for (const [k, n] of Object.entries(ch)) channels.set(k, (channels.get(k) ?? 0) + n);
    for (const [k, n] of Object.entries(re)) regions.set(k, (regions.get(k) ?? 0) + n);
  }
  const top = (m: Map<string, number>) =>
    [...m]
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, limit);
  return {
    topChannels: top(channels).map(([channel, count]) => ({ channel, count })),
    topRegions: top(regions).map(([region, count]) => ({ region, count })),
  };
}
