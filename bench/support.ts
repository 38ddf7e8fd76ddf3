// Shared pieces of the benchmarks: a scratch database, timing, memory, and how figures are printed.
import { mkdir, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
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

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

export interface MemoryPeaks {
  /** Resident set, at its highest: includes whatever the process held before (RSS never shrinks). */
  peakRssMb: number;
  /**
   * Live JavaScript heap, at its highest: heap in use as each full collection ends while watched
   * (read just after it, so a little new garbage may count), and after one forced at the end.
   * Garbage waiting for the collector is not counted, so this is what the work holds.
   */
  peakLiveHeapMb: number;
  /** Live heap after a full collection when `stop()` is called (with --expose-gc): a leak shows here. */
  liveHeapAfterMb: number;
}

/** Watches this process's memory until `stop()`. */
export function watchMemory(): { stop(): MemoryPeaks } {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.(); // start from a collected heap: earlier garbage is not the watched work's
  let peakRss = process.memoryUsage.rss();
  let peakLiveHeap = process.memoryUsage().heapUsed;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
  const collections = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        peakLiveHeap = Math.max(peakLiveHeap, process.memoryUsage().heapUsed);
      }
    }
  });
  collections.observe({ entryTypes: ['gc'] });
  return {
    stop() {
      clearInterval(sampler);
      collections.disconnect();
      gc?.();
      const liveHeapAfter = process.memoryUsage().heapUsed;
      peakLiveHeap = Math.max(peakLiveHeap, liveHeapAfter);
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      const mib = (bytes: number) => bytes / 1024 / 1024;
      return {
        peakRssMb: mib(peakRss),
        peakLiveHeapMb: mib(peakLiveHeap),
        liveHeapAfterMb: mib(liveHeapAfter),
      };
    },
  };
}

/**
 * The positive integers in environment variable `name` (comma-separated), or `fallback` when it
 * is unset; anything else stops the benchmark with what was expected.
 */
export function positiveIntsFromEnv(name: string, fallback: readonly number[]): number[] {
  return intsFromEnv(name, fallback, false);
}

/** One positive integer from environment variable `name`, or `fallback` when it is unset. */
export function positiveIntFromEnv(name: string, fallback: number): number {
  return intsFromEnv(name, [fallback], true)[0]!;
}

function intsFromEnv(name: string, fallback: readonly number[], single: boolean): number[] {
  const text = process.env[name];
  if (text === undefined || text === '') return [...fallback];
  const parts = text.split(',').map((part) => part.trim());
  const expected = single ? 'one positive integer' : 'positive integers separated by commas';
  if ((single && parts.length !== 1) || parts.some((part) => !/^[1-9]\d*$/.test(part))) {
    throw new Error(
      `${name}: expected ${expected}, such as "${fallback.join(',')}", got ${JSON.stringify(text)}`,
    );
  }
  return parts.map(Number);
}

/**
 * With BENCH_CPU_PROFILE=<folder>, records a CPU profile of this process from now until `stop()`
 * into `<folder>/<label>-<pid>.cpuprofile` (open it in Chrome's DevTools); otherwise does nothing.
 */
export async function profileCpu(label: string): Promise<{ stop(): Promise<void> }> {
  const folder = process.env.BENCH_CPU_PROFILE;
  if (!folder) return { stop: async () => undefined };
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      await mkdir(folder, { recursive: true });
      await writeFile(join(folder, `${label}-${process.pid}.cpuprofile`), JSON.stringify(profile));
    },
  };
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
