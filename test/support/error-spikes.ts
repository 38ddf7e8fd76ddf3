// An in-memory stand-in for the error-spikes reader (lib/platform/error-codes.ts and the tick's
// read): attempts as the platform holds them now, read tick by tick as the live reader reads
// them (settled part since the last tick's settle horizon, the recent part in full), fed to the
// pure detector, its changes and saved counts kept as forewarn's tables would keep them.
import { readFileSync } from 'node:fs';
import {
  bucketStartFor,
  compareIds,
  detectErrorSpikes,
  horizonsAt,
  initialErrorSpikesState,
  type CodeCounts,
  type ErrorSpikesFindings,
  type ErrorSpikesThresholds,
  type PlacedOccurrences,
  type Rule,
  type SpikeChange,
  type TickOccurrences,
} from '../../detectors/error-spikes/index.ts';
import { parseConfigText } from '../../lib/config/load.ts';

export const shippedErrorSpikes: ErrorSpikesThresholds = parseConfigText(
  readFileSync(new URL('../../config/forewarn.yaml', import.meta.url), 'utf8'),
  'config/forewarn.yaml',
).detectors.errorSpikes;

export interface SpikeAttempt {
  id: number;
  code: string | null;
  status: 'failed' | 'timeout' | 'pending' | 'succeeded';
  createdAt: number;
  finishedAt: number | null;
  channel: string;
  region: string;
}

export class SpikeHarness {
  readonly attempts: SpikeAttempt[] = [];
  settings: ErrorSpikesThresholds;
  /** The reader's cache: null makes the next tick read the whole range again. */
  cache: { epoch: number; knownFrom: number; settledTo: number } | null = null;
  readonly counts = new Map<string, CodeCounts>();
  readonly open = new Map<string, number>();
  readonly changes: SpikeChange[] = [];
  last: ErrorSpikesFindings | null = null;

  constructor(settings: ErrorSpikesThresholds = shippedErrorSpikes) {
    this.settings = settings;
  }

  private sorted = true;

  add(...rows: SpikeAttempt[]): void {
    for (const row of rows) this.attempts.push(row);
    this.sorted = false;
  }

  private firstAttemptAt(): number | null {
    return this.attempts.length === 0 ? null : this.attempts[this.firstFrom(-Infinity)]!.createdAt;
  }

  /** The index of the first attempt created at or after `ms`. */
  private firstFrom(ms: number): number {
    if (!this.sorted) {
      this.attempts.sort((a, b) => a.createdAt - b.createdAt);
      this.sorted = true;
    }
    let lo = 0;
    let hi = this.attempts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.attempts[mid]!.createdAt < ms) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  tick(now: number): SpikeChange[] {
    const h = horizonsAt(this.settings, now);
    const fromMs = this.cache ? Math.max(this.cache.settledTo, h.baselineFrom) : h.baselineFrom;
    const settledTo = Math.max(fromMs, now - h.settleMs);
    const epoch = this.cache?.epoch ?? now;
    // As the reader: the baseline weeks, or the platform's history since its first attempt.
    const knownFrom = this.cache?.knownFrom ?? Math.max(h.baselineFrom, this.firstAttemptAt() ?? now);
    const parts = {
      settled: new Map<string, PlacedOccurrences>(),
      recent: new Map<string, PlacedOccurrences>(),
    };
    const examples = { settled: {} as Record<string, string[]>, recent: {} as Record<string, string[]> };
    for (let i = this.firstFrom(fromMs); i < this.attempts.length; i++) {
      const a = this.attempts[i]!;
      if (a.createdAt >= now) break;
      if (!a.code) continue;
      if (a.status !== 'failed' && a.status !== 'timeout') continue;
      if (Math.max(a.createdAt, a.finishedAt ?? a.createdAt) > now) continue;
      const part = a.createdAt >= settledTo ? 'recent' : 'settled';
      const at = bucketStartFor(a.createdAt, h);
      const key = `${a.code}|${at}|${a.channel}|${a.region}`;
      const o = parts[part].get(key);
      if (o) o.n++;
      else parts[part].set(key, { code: a.code, at, channel: a.channel, region: a.region, n: 1 });
      if (a.createdAt >= h.windowFrom) (examples[part][a.code] ??= []).push(String(a.id));
    }
    const top = (m: Record<string, string[]>) =>
      Object.fromEntries(
        Object.entries(m).map(([code, ids]) => [
          code,
          ids.sort((x, y) => compareIds(y, x)).slice(0, this.settings.evidence.exampleIds),
        ]),
      );
    const occurrences = (part: 'settled' | 'recent'): TickOccurrences => ({
      occurrences: [...parts[part].values()],
      examples: top(examples[part]),
    });
    const findings = detectErrorSpikes(
      {
        epoch,
        knownFrom,
        settled: occurrences('settled'),
        recent: occurrences('recent'),
        counts: Object.fromEntries(this.counts),
        swept: [...this.counts.keys()],
        open: [...this.open].map(([key, openedAt]) => {
          const [code, rule] = key.split('|') as [string, Rule];
          return { code, rule, openedAt };
        }),
      },
      initialErrorSpikesState(),
      this.settings,
      now,
    );
    for (const s of findings.saved) {
      if (s.counts) this.counts.set(s.code, s.counts);
      else this.counts.delete(s.code);
    }
    for (const c of findings.changes) {
      const key = `${c.code}|${c.kind}`;
      if (c.type === 'opened') {
        if (this.open.has(key)) throw new Error(`${key} opened twice`);
        this.open.set(key, c.at);
      } else {
        if (!this.open.has(key)) throw new Error(`${key} resolved while not open`);
        this.open.delete(key);
      }
    }
    this.cache = { epoch, knownFrom, settledTo };
    this.changes.push(...findings.changes);
    this.last = findings;
    return findings.changes;
  }

  /** Ticks every `step` ms in [from, to]; returns the changes. */
  run(from: number, to: number, step: number): SpikeChange[] {
    const out: SpikeChange[] = [];
    for (let t = from; t <= to; t += step) out.push(...this.tick(t));
    return out;
  }
}

/** A failed attempt with `code`, finished two seconds after its creation. */
export function failure(
  id: number,
  code: string,
  createdAt: number,
  place: { channel?: string; region?: string } = {},
): SpikeAttempt {
  return {
    id,
    code,
    status: 'failed',
    createdAt,
    finishedAt: createdAt + 2_000,
    channel: place.channel ?? 'alipay',
    region: place.region ?? 'CN-GD',
  };
}

/** A seeded generator of uniform numbers in [0, 1) (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A succeeded attempt long ago: the platform's history reaches back past the baseline weeks. */
export function oldHistory(at: number): SpikeAttempt {
  return {
    id: 0,
    code: null,
    status: 'succeeded',
    createdAt: at,
    finishedAt: at + 1_000,
    channel: 'alipay',
    region: 'CN-GD',
  };
}
