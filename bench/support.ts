// Shared pieces of the benchmarks: a scratch database, timing, and how figures are printed.
import pg from 'pg';

export interface Figure {
  label: string;
  value: number;
  unit: string;
}

export interface BenchResult {
  name: string;
  figures: Figure[];
  notes?: string[];
}

export const figure = (label: string, value: number, unit: string): Figure => ({ label, value, unit });

export async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A fresh database for one benchmark, dropped afterwards. */
export async function benchDatabase(name: string): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export function print(result: BenchResult): void {
  const width = Math.max(...result.figures.map((f) => f.label.length));
  process.stdout.write(`\n${result.name}\n`);
  for (const f of result.figures) {
    const value = Number.isInteger(f.value) ? f.value.toLocaleString('en-US') : f.value.toFixed(2);
    process.stdout.write(`  ${f.label.padEnd(width)}  ${value} ${f.unit}\n`);
  }
  for (const note of result.notes ?? []) process.stdout.write(`  (${note})\n`);
}
