// Which channels to suggest while one is broken in a region: enabled, offered there, proven by
// enough recent volume, healthy now; most surely healthy first, then the platform's priority.
import { pairKey, type SignalSeries } from './series.ts';
import { normalQuantile, wilsonInterval } from './stats.ts';
import { thresholdsFor, type PaymentHealthSettings } from './thresholds.ts';
import type { PaymentChannel } from './types.ts';

export interface BackupQuery {
  failing: string;
  region: string;
  channels: readonly PaymentChannel[];
  settings: PaymentHealthSettings;
  series: SignalSeries;
  isHealthy: (pairKey: string) => boolean;
  now: number;
}

export function rankBackupChannels(query: BackupQuery): string[] {
  const { failing, region, channels, settings, series, isHealthy, now } = query;
  const candidates: Array<{ id: string; successPercent: number; priority: number }> = [];
  for (const channel of channels) {
    if (channel.id === failing || !channel.enabled) continue;
    if (!channel.regions.includes('*') && !channel.regions.includes(region)) continue;
    const key = pairKey(channel.id, region);
    const pairSeries = series.get(key);
    if (!pairSeries || !isHealthy(key)) continue;
    const thresholds = thresholdsFor(settings, channel.id, region);
    const longest = thresholds.windows[thresholds.windows.length - 1]!;
    const counts = pairSeries.between(now - longest.seconds * 1000, now);
    if (counts.attempts < thresholds.backup.minAttempts) continue;
    // Health is the Wilson lower bound of the success share, so a quiet channel's lucky streak
    // does not outrank a busy channel's proven record. Whole percents: channels within a point
    // of each other are equally healthy, and the platform's priority decides between them.
    const z = normalQuantile(thresholds.confidence);
    const successPercent = Math.floor(
      100 * wilsonInterval(counts.attempts - counts.failures, counts.attempts, z).lower,
    );
    candidates.push({ id: channel.id, successPercent, priority: channel.priority });
  }
  candidates.sort(
    (a, b) => b.successPercent - a.successPercent || a.priority - b.priority || a.id.localeCompare(b.id),
  );
  const maxListed = thresholdsFor(settings, failing, region).backup.maxListed;
  return candidates.slice(0, maxListed).map((c) => c.id);
}
