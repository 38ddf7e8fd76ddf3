// A strict reader of the Prometheus text exposition format (version 0.0.4), for tests: every line
// is a HELP, a TYPE or a sample; each sample belongs to the family its TYPE line declared (with
// _bucket, _sum and _count for histograms); label values are unescaped; and each histogram's
// buckets never decrease and end in +Inf equal to its _count. Anything else throws, naming the line.
// (The npm parsers merge the series of a labelled histogram, so they cannot check it.)

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: Family | undefined;
  text.split('\n').forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line)})`;
    if (line === '') return;
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const [, keyword, name, ...rest] = line.split(' ');
      if (!name || !NAME.test(name) || NAME.exec(name)![0] !== name)
        throw new Error(`${where}: bad metric name`);
      const family = families.get(name) ?? { name, help: '', type: 'untyped' as const, samples: [] };
      families.set(name, family);
      if (keyword === 'HELP') family.help = rest.join(' ');
      else {
        const type = rest.join(' ');
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type))
          throw new Error(`${where}: unknown type`);
        if (family.samples.length > 0) throw new Error(`${where}: TYPE after the family's samples`);
        family.type = type as Family['type'];
      }
      current = family;
      return;
    }
    if (line.startsWith('#')) return;
    const sample = parseSample(line, where);
    const family = current;
    const base = family?.name ?? '';
    const allowed =
      family?.type === 'histogram'
        ? [`${base}_bucket`, `${base}_sum`, `${base}_count`]
        : family?.type === 'summary'
          ? [base, `${base}_sum`, `${base}_count`]
          : [base];
    if (!family || !allowed.includes(sample.name))
      throw new Error(
        `${where}: sample outside its family (${family ? `in ${family.name}` : 'before any TYPE'})`,
      );
    family.samples.push(sample);
  });
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family);
  return families;
}

function parseSample(line: string, where: string): Sample {
  const name = NAME.exec(line)?.[0];
  if (!name) throw new Error(`${where}: expected a metric name`);
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith('{')) {
    rest = rest.slice(1);
    while (!rest.startsWith('}')) {
      const label = LABEL_NAME.exec(rest)?.[0];
      if (!label || rest[label.length] !== '=' || rest[label.length + 1] !== '"')
        throw new Error(`${where}: expected label="value"`);
      rest = rest.slice(label.length + 2);
      let value = '';
      for (;;) {
        const c = rest[0];
        if (c === undefined) throw new Error(`${where}: unterminated label value`);
        rest = rest.slice(1);
        if (c === '"') break;
        if (c === '\\') {
          const e = rest[0];
          rest = rest.slice(1);
          if (e === 'n') value += '\n';
          else if (e === '\\' || e === '"') value += e;
          else throw new Error(`${where}: bad escape \\${e ?? ''}`);
        } else value += c;
      }
      if (label in labels) throw new Error(`${where}: label ${label} twice`);
      labels[label] = value;
      if (rest.startsWith(',')) rest = rest.slice(1);
      else if (!rest.startsWith('}')) throw new Error(`${where}: expected , or }`);
    }
    rest = rest.slice(1);
  }
  const parts = rest.split(' ');
  if (parts[0] !== '' || parts.length < 2 || parts.length > 3)
    throw new Error(`${where}: expected " value [timestamp]"`);
  const raw = parts[1]!;
  const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw);
  if (raw === '' || (Number.isNaN(value) && raw !== 'NaN')) throw new Error(`${where}: bad value ${raw}`);
  if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) throw new Error(`${where}: bad timestamp`);
  return { name, labels, value };
}

function checkHistogram(family: Family): void {
  const series = new Map<string, { buckets: Array<[number, number]>; count?: number }>();
  const keyOf = (labels: Record<string, string>) =>
    JSON.stringify(
      Object.entries(labels)
        .filter(([k]) => k !== 'le')
        .sort(),
    );
  for (const s of family.samples) {
    const entry = series.get(keyOf(s.labels)) ?? { buckets: [] };
    series.set(keyOf(s.labels), entry);
    if (s.name.endsWith('_bucket')) {
      if (s.labels.le === undefined) throw new Error(`${family.name}: a bucket without le`);
      entry.buckets.push([s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value]);
    } else if (s.name.endsWith('_count')) entry.count = s.value;
  }
  for (const [key, { buckets, count }] of series) {
    const last = buckets.at(-1);
    if (!last || last[0] !== Infinity) throw new Error(`${family.name}${key}: no +Inf bucket`);
    if (last[1] !== count)
      throw new Error(`${family.name}${key}: +Inf bucket ${last[1]} but _count ${count}`);
    buckets.forEach(([le, n], i) => {
      if (i > 0 && (le <= buckets[i - 1]![0] || n < buckets[i - 1]![1]))
        throw new Error(`${family.name}${key}: buckets out of order or decreasing at le=${le}`);
    });
  }
}

/** The value of the first sample named `name` whose labels include `labels` (0 when there is none). */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  for (const family of families.values())
    for (const s of family.samples)
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
  return 0;
}
