// The backtest's HTML report for ops (`forewarn backtest --format html --out report.html`): one
// self-contained page, uPlot and its CSS inlined and a CSP that allows no request at all, so it
// opens offline from a file or an attachment. Generic: each detector's backtest says what it
// plots (lib/backtest/report-series.ts); this module lays out whatever it is given. The tables
// are static HTML (escaped); the charts are drawn by a small inline script from JSON embedded in
// a script element, escaped so that no platform value can end it.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ReportIncident, ReportPart, SubjectSeries } from './report-series.ts';

/** One backtest run on the page: A, and B with `--compare`. */
export interface ReportRun {
  /** The config it ran with, e.g. "config/forewarn.yaml". */
  config: string;
  part: ReportPart;
  ticks: number;
}

export interface ReportPage {
  detector: string;
  fromMs: number;
  toMs: number;
  stepMs: number;
  generatedAt: number;
  runs: [ReportRun] | [ReportRun, ReportRun];
}

export type CompareChange = 'same' | 'changed' | 'removed' | 'added';

/** An incident of A beside the one of B it overlaps (same subject and kind), either may be missing. */
export interface ComparedIncident {
  change: CompareChange;
  a: ReportIncident | null;
  b: ReportIncident | null;
}

const RUN_NAMES = ['A', 'B'] as const;

/**
 * Pairs the incidents of two runs: same subject and kind, overlapping in time (an open one lasts
 * to `toMs`). Equal times and backups are the same incident; other overlaps changed; the rest were removed
 * (only in A) or added (only in B).
 */
export function compareIncidents(
  a: readonly ReportIncident[],
  b: readonly ReportIncident[],
  toMs: number,
): ComparedIncident[] {
  const end = (i: ReportIncident) => i.resolvedAt ?? toMs;
  const unmatched = new Set(b);
  const out: ComparedIncident[] = [];
  for (const x of a) {
    const match = [...unmatched].find(
      (y) => y.subject === x.subject && y.kind === x.kind && y.openedAt <= end(x) && x.openedAt <= end(y),
    );
    if (!match) {
      out.push({ change: 'removed', a: x, b: null });
      continue;
    }
    unmatched.delete(match);
    // Other backups named to users are a change too, even at the same times.
    const same =
      match.openedAt === x.openedAt &&
      match.resolvedAt === x.resolvedAt &&
      match.backups.join(',') === x.backups.join(',');
    out.push({ change: same ? 'same' : 'changed', a: x, b: match });
  }
  for (const y of unmatched) out.push({ change: 'added', a: null, b: y });
  return out.sort((p, q) => openedOf(p) - openedOf(q));
}

function openedOf(c: ComparedIncident): number {
  return (c.a ?? c.b)!.openedAt;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * JSON for a script element: `<`, `>` and `&` as escapes (no `</script>` or `<!--` can appear),
 * and U+2028/U+2029, which older engines take as line ends inside strings.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** "2026-03-02 12:01:45" in UTC, as every time on the page. */
function utc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 120) return s % 60 === 0 ? `${m} min` : `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

function delayOf(i: ReportIncident): string {
  return i.firstDegradedAt === null ? '—' : duration(i.openedAt - i.firstDegradedAt);
}

function lastedOf(i: ReportIncident): string {
  return i.resolvedAt === null ? 'still open' : duration(i.resolvedAt - i.openedAt);
}

/** Values rounded to what a chart can show: 4 significant digits (a share), whole ms. */
function compact(value: number | null, unit: 'share' | 'ms'): number | null {
  if (value === null) return null;
  return unit === 'ms' ? Math.round(value) : Number(value.toPrecision(4));
}

interface ChartData {
  title: string;
  unit: 'share' | 'ms';
  series: Array<{ label: string; role: string; run: number }>;
  values: Array<Array<number | null>>;
  /** [run, from s, to s] of each incident shaded on this chart. */
  spans: Array<[number, number, number]>;
}

/** The series of one subject for every chart: A's lines, and B's baselines and thresholds. */
function chartsOf(page: ReportPage, subject: string): { x: number[]; charts: ChartData[] } {
  const [first] = page.runs;
  const layout = first.part.layout;
  const found = page.runs.map((run) => run.part.subjects.find((s) => s.subject === subject) ?? null);
  const base = found.find((s) => s !== null) ?? null;
  const x = base ? base.times.map((t) => Math.round(t / 1000)) : [];
  let offset = 0;
  const charts = layout.charts.map((chart) => {
    const data: ChartData = { title: chart.title, unit: chart.unit, series: [], values: [], spans: [] };
    page.runs.forEach((run, r) => {
      const s: SubjectSeries | null = found[r]!;
      chart.series.forEach((def, k) => {
        // The observed values are the same data in both runs; only A's are drawn.
        if (r > 0 && def.role === 'observed') return;
        data.series.push({ label: def.label, role: def.role, run: r });
        const column = s && s.times.length === x.length ? s.values[offset + k]! : x.map(() => null);
        data.values.push(column.map((v) => compact(v, chart.unit)));
      });
      for (const i of run.part.incidents) {
        if (i.subject !== subject || !chart.kinds.includes(i.kind)) continue;
        data.spans.push([r, Math.round(i.openedAt / 1000), Math.round((i.resolvedAt ?? page.toMs) / 1000)]);
      }
    });
    offset += chart.series.length;
    return data;
  });
  return { x, charts };
}

function incidentCells(i: ReportIncident | null): string {
  if (!i) return '<td colspan="5" class="none">—</td>';
  return (
    `<td>${escapeHtml(utc(i.openedAt))}</td><td>${escapeHtml(delayOf(i))}</td>` +
    `<td>${escapeHtml(i.resolvedAt === null ? 'still open' : utc(i.resolvedAt))}${
      i.resolveReason ? ` <span class="muted">(${escapeHtml(i.resolveReason)})</span>` : ''
    }</td><td>${escapeHtml(lastedOf(i))}</td><td>${escapeHtml(i.backups.join(', ') || '—')}</td>`
  );
}

function summaryTable(page: ReportPage): string {
  const [a, b] = page.runs;
  if (!b) {
    if (a.part.incidents.length === 0) return '<p class="empty">No incidents in this range.</p>';
    const rows = a.part.incidents
      .map(
        (i) =>
          `<tr><td>${escapeHtml(i.subject)}</td><td>${escapeHtml(i.kind)}</td>${incidentCells(i)}` +
          `<td class="evidence">${escapeHtml(i.evidence)}</td></tr>`,
      )
      .join('\n');
    return (
      '<table class="incidents"><thead><tr><th>subject</th><th>kind</th><th>opened</th><th>delay</th>' +
      '<th>resolved</th><th>lasted</th><th>backups named</th><th>evidence</th></tr></thead>' +
      `<tbody>\n${rows}\n</tbody></table>`
    );
  }
  const compared = compareIncidents(a.part.incidents, b.part.incidents, page.toMs);
  const counts = { added: 0, removed: 0, changed: 0, same: 0 };
  for (const c of compared) counts[c.change]++;
  const words: Record<CompareChange, string> = {
    added: 'only B',
    removed: 'only A',
    changed: 'changed',
    same: 'same',
  };
  const rows = compared
    .map((c) => {
      const i = (c.a ?? c.b)!;
      return (
        `<tr class="${c.change}"><td class="change">${words[c.change]}</td><td>${escapeHtml(i.subject)}</td>` +
        `<td>${escapeHtml(i.kind)}</td>${incidentCells(c.a)}${incidentCells(c.b)}` +
        `<td class="evidence">${c.a ? `A: ${escapeHtml(c.a.evidence)}` : ''}${c.a && c.b ? '<br>' : ''}${
          c.b ? `B: ${escapeHtml(c.b.evidence)}` : ''
        }</td></tr>`
      );
    })
    .join('\n');
  return (
    `<p class="counts">B (${escapeHtml(b.config)}) against A (${escapeHtml(a.config)}): ` +
    `<b>${counts.added}</b> added, <b>${counts.removed}</b> removed, <b>${counts.changed}</b> changed, ` +
    `${counts.same} the same.</p>` +
    (compared.length === 0
      ? '<p class="empty">No incidents in either run.</p>'
      : '<table class="incidents compare"><thead><tr><th rowspan="2">change</th><th rowspan="2">subject</th>' +
        '<th rowspan="2">kind</th><th colspan="5" class="run-a">A</th><th colspan="5" class="run-b">B</th>' +
        '<th rowspan="2">evidence</th></tr><tr>' +
        '<th>opened</th><th>delay</th><th>resolved</th><th>lasted</th><th>backups</th>'.repeat(2) +
        `</tr></thead><tbody>\n${rows}\n</tbody></table>`)
  );
}

function subjectSection(page: ReportPage, subject: string, index: number, chartCount: number): string {
  const items = page.runs
    .flatMap((run, r) =>
      run.part.incidents
        .filter((i) => i.subject === subject)
        .map(
          (i) =>
            `<li>${page.runs.length > 1 ? `<span class="tag run-${r === 0 ? 'a' : 'b'}">${RUN_NAMES[r]}</span> ` : ''}` +
            `<b>${escapeHtml(i.kind)}</b> opened ${escapeHtml(utc(i.openedAt))} ` +
            `(${escapeHtml(delayOf(i))} after the first degraded tick), ` +
            `${i.resolvedAt === null ? 'still open' : `resolved ${escapeHtml(utc(i.resolvedAt))}`}; ` +
            `backups named: ${escapeHtml(i.backups.join(', ') || 'none')}</li>`,
        ),
    )
    .join('');
  const charts = Array.from(
    { length: chartCount },
    (_, c) => `<div class="chart" data-subject="${index}" data-chart="${c}"></div>`,
  ).join('');
  return (
    `<section class="subject"><h3>${escapeHtml(subject)}</h3>` +
    (items
      ? `<ul class="subject-incidents">${items}</ul>`
      : '<p class="muted">Degraded at times; no incident opened.</p>') +
    `${charts}</section>`
  );
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
.muted, .none { color: #777; }
table.incidents { border-collapse: collapse; margin: 0.5em 0 1.5em; }
table.incidents th, table.incidents td { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; text-align: left; }
table.incidents th { background: #f3f3f3; }
td.evidence { font-size: 12px; max-width: 38em; }
tr.added td.change { background: #dbeafe; font-weight: bold; }
tr.removed td.change { background: #fde2e2; font-weight: bold; }
tr.changed td.change { background: #fef3c7; }
th.run-a, .tag.run-a { background: #fde2e2; }
th.run-b, .tag.run-b { background: #dbeafe; }
.tag { padding: 0 4px; border-radius: 3px; font-weight: bold; }
section.subject { border-top: 1px solid #ddd; padding-top: 0.5em; margin-top: 1em; }
section.subject h3 { margin: 0.2em 0; }
.chart { margin: 0.3em 0 0.8em; }
.chart-title { font-weight: bold; font-size: 13px; margin-bottom: 2px; }
.key span { display: inline-block; margin-right: 1.2em; }
.swatch { display: inline-block; width: 14px; height: 10px; margin-right: 4px; vertical-align: middle; }
`;

// Draws the charts from the embedded JSON: DOM built with textContent only, never innerHTML.
const CLIENT = String.raw`
(function () {
  var started = performance.now();
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var SPAN_FILL = ['rgba(214,39,40,0.16)', 'rgba(31,119,180,0.16)'];
  var SPAN_EDGE = ['rgb(214,39,40)', 'rgb(31,119,180)'];
  var STROKE = {
    observed: ['#1f3b73', '#1f3b73'],
    baseline: ['#2ca02c', '#17becf'],
    threshold: ['#d62728', '#9467bd']
  };
  function fmt(unit, v) {
    if (v == null) return '—';
    return unit === 'share' ? (v * 100).toFixed(v < 0.1 ? 2 : 1) + '%' : Math.round(v) + ' ms';
  }
  function tick(unit, v) {
    if (unit === 'share') return Number((v * 100).toFixed(1)) + '%';
    return v >= 1000 ? Number((v / 1000).toFixed(1)) + ' s' : Math.round(v) + ' ms';
  }
  function spansPlugin(spans) {
    return {
      hooks: {
        drawClear: [function (u) {
          var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
          ctx.save();
          for (var i = 0; i < spans.length; i++) {
            var s = spans[i];
            var x0 = u.valToPos(s[1], 'x', true), x1 = u.valToPos(s[2], 'x', true);
            var left = Math.max(u.bbox.left, Math.min(x0, x1)), right = Math.min(u.bbox.left + u.bbox.width, Math.max(x0, x1));
            if (right < u.bbox.left || left > u.bbox.left + u.bbox.width) continue;
            var w = Math.max(2, right - left);
            ctx.fillStyle = SPAN_FILL[s[0]];
            ctx.fillRect(left, top, w, height);
            // A strip per run (A at the top, B at the bottom) tells them apart where they overlap.
            ctx.fillStyle = SPAN_EDGE[s[0]];
            var strip = 6 * devicePixelRatio;
            ctx.fillRect(left, s[0] === 0 ? top : top + height - strip, w, strip);
          }
          ctx.restore();
        }]
      }
    };
  }
  function draw(el) {
    var subject = data.subjects[Number(el.dataset.subject)];
    var chart = subject.charts[Number(el.dataset.chart)];
    var title = document.createElement('div');
    title.className = 'chart-title';
    title.textContent = chart.title;
    el.appendChild(title);
    var series = [{}];
    var bands = [];
    var baselineOf = {}, thresholdOf = {};
    chart.series.forEach(function (s, i) {
      var run = data.runs.length > 1 ? ' (' + data.runs[s.run] + ')' : '';
      series.push({
        label: s.label + (s.role === 'observed' ? '' : run),
        stroke: STROKE[s.role][s.run],
        width: s.role === 'observed' ? 1.5 : 1.2,
        dash: s.role === 'threshold' ? (s.run === 0 ? [6, 4] : [2, 3]) : s.run === 1 ? [8, 3, 2, 3] : undefined,
        spanGaps: false,
        value: function (u, v) { return fmt(chart.unit, v); }
      });
      if (s.role === 'baseline') baselineOf[s.run] = i + 1;
      if (s.role === 'threshold') thresholdOf[s.run] = i + 1;
    });
    // The band between the baseline and the threshold: what is still normal.
    if (baselineOf[0] && thresholdOf[0]) bands.push({ series: [thresholdOf[0], baselineOf[0]], fill: 'rgba(44,160,44,0.10)' });
    var width = Math.max(600, Math.min(1400, el.clientWidth || 900));
    var opts = {
      width: width,
      height: 200,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'); },
      series: series,
      bands: bands,
      scales: { x: { time: true, range: [data.fromS, data.toS] }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.05 : 1]; } } },
      axes: [{}, { size: 60, values: function (u, vals) { return vals.map(function (v) { return tick(chart.unit, v); }); } }],
      plugins: [spansPlugin(chart.spans)],
      legend: { live: true }
    };
    new uPlot(opts, [subject.x].concat(chart.values), el);
  }
  try {
    var els = document.querySelectorAll('.chart');
    for (var i = 0; i < els.length; i++) draw(els[i]);
    document.body.dataset.charts = String(els.length);
    document.body.dataset.renderMs = String(Math.round(performance.now() - started));
    // Since navigation began: parsing the page and its data included.
    document.body.dataset.readyMs = String(Math.round(performance.now()));
    document.body.dataset.rendered = 'true';
  } catch (e) {
    document.body.dataset.rendered = 'error';
    throw e;
  }
})();
`;

let uplotAssets: { js: string; css: string } | null = null;

function uplot(): { js: string; css: string } {
  if (!uplotAssets) {
    const require = createRequire(import.meta.url);
    uplotAssets = {
      // Inside a script element only `</script` could end it; uPlot's build has none, but be sure.
      js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8').replace(
        /<\/script/gi,
        '<\\/script',
      ),
      css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8').replace(
        /<\/style/gi,
        '<\\/style',
      ),
    };
  }
  return uplotAssets;
}

/** The subjects worth a chart: an incident in any run, or degraded at some tick. */
export function shownSubjects(page: ReportPage): { shown: string[]; quiet: string[] } {
  const all = new Set<string>();
  const worth = new Set<string>();
  for (const run of page.runs) {
    for (const s of run.part.subjects) {
      all.add(s.subject);
      if (s.notable) worth.add(s.subject);
    }
    for (const i of run.part.incidents) {
      all.add(i.subject);
      worth.add(i.subject);
    }
  }
  const sorted = [...all].sort();
  return { shown: sorted.filter((s) => worth.has(s)), quiet: sorted.filter((s) => !worth.has(s)) };
}

export function renderReportHtml(page: ReportPage): string {
  const [a, b] = page.runs;
  const layout = a.part.layout;
  const { shown, quiet } = shownSubjects(page);
  const data = {
    runs: page.runs.map((_, r) => RUN_NAMES[r]),
    fromS: Math.round(page.fromMs / 1000),
    toS: Math.round(page.toMs / 1000),
    subjects: shown.map((s) => chartsOf(page, s)),
  };
  const { js, css } = uplot();
  const title = `Backtest of ${page.detector}, ${utc(page.fromMs)} to ${utc(page.toMs)} UTC`;
  const configs = page.runs
    .map(
      (run, r) =>
        `${b ? `<b>${RUN_NAMES[r]}</b>: ` : ''}${escapeHtml(run.config)} (${run.ticks} ticks, the warm-up included)`,
    )
    .join('; ');
  const spanKey = page.runs
    .map(
      (_, r) =>
        `<span><span class="swatch" style="background: ${r === 0 ? 'rgba(214,39,40,0.5)' : 'rgba(31,119,180,0.5)'}"></span>` +
        `${b ? `incident of ${RUN_NAMES[r]} (strip at the ${r === 0 ? 'top' : 'bottom'})` : 'incident'}</span>`,
    )
    .join('');
  const quietNote =
    quiet.length === 0
      ? ''
      : ` <details><summary>${quiet.length} quiet ${escapeHtml(layout.subjectNoun)} left out (no incident, never degraded)</summary>` +
        `<p class="muted">${escapeHtml(quiet.join(', '))}</p></details>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${css}</style>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="muted">Step ${escapeHtml(duration(page.stepMs))}; config ${configs}. Written ${escapeHtml(utc(page.generatedAt))} UTC. All times UTC.
Delay: from the first degraded tick of the run that opened the incident (the platform's data does not say when an outage began).</p>
<h2>Incidents</h2>
${summaryTable(page)}
<h2>By ${escapeHtml(layout.subjectNoun)}</h2>
<p>${shown.length} of ${shown.length + quiet.length} ${escapeHtml(layout.subjectNoun)} shown: those with an incident or degraded at some tick.${quietNote}</p>
<p class="key">${spanKey}<span><span class="swatch" style="background: rgba(44,160,44,0.3)"></span>between baseline and threshold</span>
<span>solid: observed; dashed: threshold${b ? '; B’s lines dotted' : ''}</span></p>
${shown.map((s, i) => subjectSection(page, s, i, layout.charts.length)).join('\n')}
<script type="application/json" id="report-data">${scriptJson(data)}</script>
<script>${js}</script>
<script>${CLIENT}</script>
</body>
</html>
`;
}
