// Which channels to suggest while one is broken in a region: enabled, offered there, healthy
// now, and proven so: enough recent successes that the upper bound of its failure share stays
// below its own threshold. "Not proven degraded" is not enough: a quiet channel in a region that
// is down as a whole has simply not failed often enough yet. Most surely healthy first, then the
// platform's priority.
import { pairKey, windowOf, type SignalSet } from './signals.ts';
import { normalQuantile, wilsonInterval } from './stats.ts';
import { thresholdAt, thresholdsFor, type PaymentHealthSettings } from './thresholds.ts';
import type { PaymentChannel } from './types.ts';

export interface BackupQuery {
  failing: string;
  region: string;
  channels: readonly PaymentChannel[];
  settings: PaymentHealthSettings;
  set: SignalSet;
  /** Nothing open or confirming on the pair, and healthy this tick. */
  isHealthyNow: (pairKey: string) => boolean;
  /** The pair's learned failure share. */
  baselineOf: (pairKey: string) => number;
}

export function rankBackupChannels(query: BackupQuery): string[] {
  const { failing, region, channels, settings, set, isHealthyNow, baselineOf } = query;
  const candidates: Array<{ id: string; successPercent: number; priority: number }> = [];
  for (const channel of channels) {
    if (channel.id === failing || !channel.enabled) continue;
    if (!channel.regions.includes('*') && !channel.regions.includes(region)) continue;
    const key = pairKey(channel.id, region);
    const sig = set.pairs.get(key);
    if (!sig || !isHealthyNow(key)) continue;
    const t = thresholdsFor(settings, channel.id, region);
    const recent = windowOf(set, sig, t.backup.windowSeconds);
    const successes = recent.finished - recent.failures;
    if (successes < t.backup.minSuccesses) continue;
    const proof = wilsonInterval(recent.failures, recent.finished, normalQuantile(t.backup.confidence));
    if (proof.upper >= Math.min(1, thresholdAt(baselineOf(key), t.failures))) continue;
    // Rank by the Wilson lower bound of the success share, so a quiet channel's lucky streak
    // does not outrank a busy channel's proven record. Whole percents: channels within a point
    // of each other are equally healthy, and the platform's priority decides between them.
    const z = normalQuantile(t.confidence);
    const successPercent = Math.floor(100 * wilsonInterval(successes, recent.finished, z).lower);
    candidates.push({ id: channel.id, successPercent, priority: channel.priority });
  }
  candidates.sort(
    (a, b) => b.successPercent - a.successPercent || a.priority - b.priority || a.id.localeCompare(b.id),
  );
  const maxListed = thresholdsFor(settings, failing, region).backup.maxListed;
  return candidates.slice(0, maxListed).map((c) => c.id);
}
