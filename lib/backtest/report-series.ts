// What a detector's backtest hands the HTML report (`forewarn backtest --format html`): which
// charts it draws per subject, the series recorded on them tick by tick, and its incidents in a
// shape every detector shares. The page (lib/backtest/report-html.ts) is generic; each detector's
// backtest says what it plots. Series are downsampled while they are recorded: memory and the
// page's size depend on the number of subjects, not on the length of the history.

/** One line on a chart; `role` picks its style (observed solid, baseline grey, threshold dashed). */
export interface ReportSeriesDef {
  label: string;
  role: 'observed' | 'baseline' | 'threshold';
}

export interface ReportChart {
  title: string;
  unit: 'share' | 'ms';
  series: readonly ReportSeriesDef[];
  /** Incident kinds shaded on this chart. */
  kinds: readonly string[];
}

/** What a detector plots for every subject. Values are recorded in the order of the charts' series. */
export interface ReportLayout {
  /** What a subject is, in words: e.g. "channel × region". */
  subjectNoun: string;
  charts: readonly ReportChart[];
}

/** An incident as the report shows it, whatever the detector. Times in epoch milliseconds. */
export interface ReportIncident {
  subject: string;
  kind: string;
  openedAt: number;
  resolvedAt: number | null;
  resolveReason: string | null;
  /** The first tick of the degraded run that opened it (null: carried in from a stored state). */
  firstDegradedAt: number | null;
  /** The numbers that opened it, in words. */
  evidence: string;
  /** Backups named to users (payment channels, substitute products, ...). */
  backups: readonly string[];
}

/** Recorded series of one subject: times (epoch ms) and one array per series, aligned. */
export interface SubjectSeries {
  subject: string;
  times: number[];
  values: Array<Array<number | null>>;
  /** The detector saw it degraded at some tick (a near miss, when no incident opened). */
  notable: boolean;
}

/** What a backtest returns for the report, when it was asked to record series. */
export interface ReportPart {
  layout: ReportLayout;
  incidents: ReportIncident[];
  subjects: SubjectSeries[];
}

/** About 1,000 buckets of two points each: ~2,000 points per series, whatever the range. */
export const DEFAULT_BUCKETS = 1_000;

interface Bucket {
  // Per series: min, max, and whether the min came first (so the two points keep their order).
  min: Float64Array;
  max: Float64Array;
  minFirst: Uint8Array;
}

interface SubjectBuckets {
  buckets: Array<Bucket | undefined>;
  notable: boolean;
}

/**
 * Min/max-preserving bucketing, online: each bucket keeps, per series, the lowest and highest
 * value and which came first, and emits them as two points in that order. A one-tick spike (an
 * outage's first minutes) survives any amount of downsampling; a flat hour costs two points.
 */
export class SeriesRecorder {
  readonly fromMs: number;
  readonly toMs: number;
  readonly bucketMs: number;
  private readonly seriesCount: number;
  private readonly twoPoints: boolean;
  private readonly subjects = new Map<string, SubjectBuckets>();

  constructor(options: {
    fromMs: number;
    toMs: number;
    stepMs: number;
    seriesCount: number;
    buckets?: number;
  }) {
    const buckets = options.buckets ?? DEFAULT_BUCKETS;
    this.fromMs = options.fromMs;
    this.toMs = options.toMs;
    this.seriesCount = options.seriesCount;
    // Whole steps per bucket, so that every bucket holds the same number of ticks.
    const steps = Math.max(1, Math.ceil((options.toMs - options.fromMs) / buckets / options.stepMs));
    this.bucketMs = steps * options.stepMs;
    this.twoPoints = steps > 1;
  }

  /** Records one tick of one subject; ticks before `fromMs` (the warm-up) or after `toMs` are ignored. */
  add(subject: string, at: number, values: ReadonlyArray<number | null>, notable = false): void {
    if (at < this.fromMs || at > this.toMs) return;
    let s = this.subjects.get(subject);
    if (!s) {
      s = { buckets: [], notable: false };
      this.subjects.set(subject, s);
    }
    if (notable) s.notable = true;
    const index = Math.floor((at - this.fromMs) / this.bucketMs);
    let b = s.buckets[index];
    if (!b) {
      b = {
        min: new Float64Array(this.seriesCount).fill(NaN),
        max: new Float64Array(this.seriesCount).fill(NaN),
        minFirst: new Uint8Array(this.seriesCount),
      };
      s.buckets[index] = b;
    }
    for (let i = 0; i < this.seriesCount; i++) {
      const v = values[i];
      if (v === null || v === undefined || !Number.isFinite(v)) continue;
      if (Number.isNaN(b.min[i]!)) {
        b.min[i] = v;
        b.max[i] = v;
        b.minFirst[i] = 1;
        continue;
      }
      // The later of two equal extremes is not kept: the first one already shows the level.
      if (v < b.min[i]!) {
        b.min[i] = v;
        b.minFirst[i] = 0;
      } else if (v > b.max[i]!) {
        b.max[i] = v;
        b.minFirst[i] = 1;
      }
    }
  }

  /** The downsampled series of every subject seen, in subject order. */
  series(): SubjectSeries[] {
    return [...this.subjects.keys()].sort().map((subject) => this.seriesOf(subject));
  }

  private seriesOf(subject: string): SubjectSeries {
    const s = this.subjects.get(subject)!;
    const times: number[] = [];
    const values: Array<Array<number | null>> = Array.from({ length: this.seriesCount }, () => []);
    const count = Math.floor((this.toMs - this.fromMs) / this.bucketMs) + 1;
    for (let index = 0; index < count; index++) {
      const b = s.buckets[index];
      const start = this.fromMs + index * this.bucketMs;
      // An empty bucket still gets its points (nulls), so that uPlot draws a gap, not a line across.
      if (this.twoPoints) {
        times.push(start + Math.round(this.bucketMs / 4), start + Math.round((3 * this.bucketMs) / 4));
      } else {
        times.push(start);
      }
      for (let i = 0; i < this.seriesCount; i++) {
        const column = values[i]!;
        const lo = b ? b.min[i]! : NaN;
        const hi = b ? b.max[i]! : NaN;
        if (Number.isNaN(lo)) {
          column.push(null);
          if (this.twoPoints) column.push(null);
        } else if (!this.twoPoints) {
          column.push(lo);
        } else if (b!.minFirst[i]) {
          column.push(lo, hi);
        } else {
          column.push(hi, lo);
        }
      }
    }
    return { subject, times, values, notable: s.notable };
  }
}
