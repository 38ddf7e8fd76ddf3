// The backtest report's pure parts: min/max bucketing keeps spikes and gaps with a bounded number
// of points, platform values cannot break out of the page (escaped in HTML and in the embedded
// JSON), and --compare pairs incidents into same / changed / removed / added.
import { describe, expect, it } from 'vitest';
import {
  compareIncidents,
  renderReportHtml,
  scriptJson,
  shownSubjects,
  type ReportPage,
} from '../../lib/backtest/report-html.ts';
import { SeriesRecorder, type ReportIncident, type ReportPart } from '../../lib/backtest/report-series.ts';

const T0 = Date.UTC(2026, 2, 2, 0, 0);
const STEP = 15_000;
const DAY = 86_400_000;

describe('SeriesRecorder', () => {
  it('keeps a one-tick spike and a gap over 30 days in about 2,000 points', () => {
    const r = new SeriesRecorder({ fromMs: T0, toMs: T0 + 30 * DAY, stepMs: STEP, seriesCount: 2 });
    const spikeAt = T0 + 12 * DAY + 7 * STEP;
    const gapFrom = T0 + 20 * DAY;
    for (let t = T0 - 6 * 3_600_000; t <= T0 + 30 * DAY; t += STEP) {
      const inGap = t >= gapFrom && t < gapFrom + DAY;
      r.add('pair', t, [inGap ? null : t === spikeAt ? 1 : 0.02, 0.03], t === spikeAt);
    }
    const [s] = r.series();
    expect(s!.times.length).toBeLessThanOrEqual(2_002);
    expect(s!.times.length).toBeGreaterThan(1_900);
    expect(s!.values.map((v) => v.length)).toEqual([s!.times.length, s!.times.length]);
    // The spike survives (its bucket's max), the baseline stays flat, the gap is nulls.
    expect(Math.max(...s!.values[0]!.map((v) => v ?? 0))).toBe(1);
    expect(s!.values[0]!.filter((v) => v === 1)).toHaveLength(1);
    expect(new Set(s!.values[1])).toEqual(new Set([0.03]));
    const gapPoints = s!.times.filter(
      (t, i) => t > gapFrom + r.bucketMs && t < gapFrom + DAY - r.bucketMs && s!.values[0]![i] === null,
    );
    expect(gapPoints.length).toBeGreaterThan(50);
    expect(s!.notable).toBe(true);
    // The warm-up (before fromMs) is not drawn.
    expect(s!.times[0]).toBeGreaterThanOrEqual(T0);
  });

  it('keeps the order of a bucket’s min and max', () => {
    const r = new SeriesRecorder({
      fromMs: T0,
      toMs: T0 + 10 * STEP,
      stepMs: STEP,
      seriesCount: 1,
      buckets: 2,
    });
    // Bucket 1: rises to 0.9 then drops to 0.1; bucket 2: drops to 0.1 then rises to 0.9.
    [0.5, 0.9, 0.1, 0.5, 0.5, 0.5, 0.1, 0.9, 0.5, 0.5].forEach((v, i) => r.add('p', T0 + i * STEP, [v]));
    const [s] = r.series();
    expect(s!.values[0]!.slice(0, 4)).toEqual([0.9, 0.1, 0.1, 0.9]);
    expect(s!.notable).toBe(false);
  });

  it('one point per tick when the range is short', () => {
    const r = new SeriesRecorder({ fromMs: T0, toMs: T0 + 4 * STEP, stepMs: STEP, seriesCount: 1 });
    for (let i = 0; i <= 4; i++) r.add('p', T0 + i * STEP, [i]);
    expect(r.series()[0]).toMatchObject({
      times: [0, 1, 2, 3, 4].map((i) => T0 + i * STEP),
      values: [[0, 1, 2, 3, 4]],
    });
  });
});

const HOSTILE = '</script><script>alert(1)</script>\u2028<img src=x onerror=alert(2)>';

function incident(over: Partial<ReportIncident>): ReportIncident {
  return {
    subject: 'c1 × R1',
    kind: 'failures',
    openedAt: T0 + 3_600_000,
    resolvedAt: T0 + 4_000_000,
    resolveReason: 'recovered',
    firstDegradedAt: T0 + 3_555_000,
    evidence: '10/10 failed',
    backups: ['c2'],
    ...over,
  };
}

function part(incidents: ReportIncident[], subjects: string[]): ReportPart {
  const r = new SeriesRecorder({ fromMs: T0, toMs: T0 + 2 * 3_600_000, stepMs: STEP, seriesCount: 2 });
  for (const s of subjects) for (let t = T0; t <= T0 + 2 * 3_600_000; t += STEP) r.add(s, t, [0.02, 0.03]);
  return {
    layout: {
      subjectNoun: 'thing',
      charts: [
        {
          title: 'share',
          unit: 'share',
          kinds: ['failures'],
          series: [
            { label: 'share', role: 'observed' },
            { label: 'threshold', role: 'threshold' },
          ],
        },
      ],
    },
    incidents,
    subjects: r.series(),
  };
}

describe('the page escapes platform data', () => {
  it('in the embedded JSON: no </script>, <!--, U+2028 or U+2029 survive, and it parses back', () => {
    const json = scriptJson({ s: HOSTILE, t: '<!-- \u2029 &' });
    expect(json).not.toMatch(/[<>\u2028\u2029&]/);
    expect(JSON.parse(json)).toEqual({ s: HOSTILE, t: '<!-- \u2029 &' });
  });

  it('in the tables and the charts’ data', () => {
    const page: ReportPage = {
      detector: 'd',
      fromMs: T0,
      toMs: T0 + 2 * 3_600_000,
      stepMs: STEP,
      generatedAt: T0,
      runs: [
        {
          config: 'a.yaml',
          ticks: 481,
          part: part(
            [incident({ subject: HOSTILE, evidence: HOSTILE, backups: [HOSTILE] })],
            [HOSTILE, 'quiet'],
          ),
        },
      ],
    };
    const html = renderReportHtml(page);
    expect(html.includes('<script>alert(1)')).toBe(false);
    expect(html.includes('<img src=x')).toBe(false);
    expect(html.includes('&#60;img src=x onerror=alert(2)&#62;')).toBe(true);
    // Exactly the page's own three scripts.
    expect(html.match(/<script\b/g)).toHaveLength(3);
    expect(html.match(/<\/script>/g)).toHaveLength(3);
    // In text U+2028 is harmless; in the script’s JSON it would not be (subjects go by index there).
    const json = /id="report-data">([^<]*)<\/script>/.exec(html)![1]!;
    expect(json.includes('\u2028')).toBe(false);
    expect(html).toContain('1 of 2 thing shown');
    expect(html).toContain('1 quiet thing left out');
  });
});

describe('compareIncidents', () => {
  it('same, changed (other times or backups), removed and added', () => {
    const a = [
      incident({ subject: 's1' }),
      incident({ subject: 's2' }),
      incident({ subject: 's3' }),
      incident({ subject: 's4' }),
    ];
    const b = [
      incident({ subject: 's1' }),
      incident({ subject: 's2', openedAt: T0 + 3_700_000 }),
      incident({ subject: 's4', backups: ['c3'] }),
      incident({ subject: 's5' }),
      // Same subject and kind, but later and not overlapping: a different incident.
      incident({ subject: 's3', openedAt: T0 + 5_000_000, resolvedAt: null }),
    ];
    const compared = compareIncidents(a, b, T0 + 6_000_000);
    const bySubject = (s: string) => compared.filter((c) => (c.a ?? c.b)!.subject === s).map((c) => c.change);
    expect(bySubject('s1')).toEqual(['same']);
    expect(bySubject('s2')).toEqual(['changed']);
    expect(bySubject('s4')).toEqual(['changed']);
    expect(bySubject('s5')).toEqual(['added']);
    expect(bySubject('s3')).toEqual(['removed', 'added']);
    expect(compared).toHaveLength(6);
  });

  it('shows a subject with an incident in either run', () => {
    const page: ReportPage = {
      detector: 'd',
      fromMs: T0,
      toMs: T0 + 2 * 3_600_000,
      stepMs: STEP,
      generatedAt: T0,
      runs: [
        { config: 'a', ticks: 1, part: part([], ['x', 'y', 'z']) },
        { config: 'b', ticks: 1, part: part([incident({ subject: 'y' })], ['x', 'y', 'z']) },
      ],
    };
    expect(shownSubjects(page)).toEqual({ shown: ['y'], quiet: ['x', 'z'] });
  });
});
