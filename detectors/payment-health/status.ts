// What a checkout page needs to know about a region's payment channels right now: each channel's
// state, as the detector last judged it, its open incidents, and which channels to offer instead.
// Pure: the caller reads the channels (platform), the pair states and open incidents (forewarn)
// and the detector's last tick, and passes the settings the detector ran with.
//
// The backups are those the detector chose when the incident opened (rankBackupChannels, the same
// list the payment warnings name), minus any that is no longer healthy now: ranking them afresh
// would need the tick's signals, which only the detection worker reads.
import { pairKey } from './signals.ts';
import { thresholdsFor, type PaymentHealthSettings } from './thresholds.ts';
import type { Evidence, PairState, PaymentChannel } from './types.ts';

/**
 * degraded: an incident is open; quiet: the pair had no attempt for `silenceMinutes` before the
 * detector's last tick; unknown: the detector holds no state for the pair (no attempts seen in a
 * day, or no tick yet); healthy: otherwise.
 */
export type ChannelState = 'healthy' | 'degraded' | 'quiet' | 'unknown';

export interface OpenPaymentIncident {
  id: string;
  channel: string;
  kind: string;
  openedAt: number;
  evidence: Evidence;
  backupChannels: readonly string[];
}

export interface ChannelStatus {
  channel: string;
  displayName: string;
  state: ChannelState;
  /** Degraded on the last tick, not yet long enough to open an incident. */
  confirming: boolean;
  /** Creation time of the newest attempt the detector saw, epoch ms. */
  lastSeenAt: number | null;
  incidents: OpenPaymentIncident[];
  /** For a degraded channel: what to pay with instead, best first; otherwise empty. */
  backups: string[];
}

export interface StatusInput {
  region: string;
  channels: readonly PaymentChannel[];
  /** The region's pair states, by pair key ("alipay:CN-GD"). */
  pairs: ReadonlyMap<string, PairState>;
  /** The region's open incidents. */
  incidents: readonly OpenPaymentIncident[];
  /** The detector's last tick, epoch ms (null before the first). */
  evaluatedAt: number | null;
  settings: PaymentHealthSettings;
}

/** The channels offered in the region (enabled, listed there or everywhere), in priority order. */
export function channelStatuses(input: StatusInput): ChannelStatus[] {
  const { region, pairs, incidents, evaluatedAt, settings } = input;
  const offered = input.channels
    .filter((c) => c.enabled && (c.regions.includes('*') || c.regions.includes(region)))
    .sort((a, b) => a.priority - b.priority || a.id.localeCompare(b.id));
  const statuses = offered.map((channel): ChannelStatus => {
    const pair = pairs.get(pairKey(channel.id, region));
    const own = incidents.filter((i) => i.channel === channel.id).sort((a, b) => a.openedAt - b.openedAt);
    const silenceMs = thresholdsFor(settings, channel.id, region).silenceMinutes * 60_000;
    const state: ChannelState =
      own.length > 0
        ? 'degraded'
        : pair === undefined || evaluatedAt === null
          ? 'unknown'
          : pair.lastSeenAt === null || evaluatedAt - pair.lastSeenAt >= silenceMs
            ? 'quiet'
            : 'healthy';
    const confirming =
      pair !== undefined &&
      Object.values(pair.kinds).some((k) => k.open === null && k.degradedSince !== null);
    return {
      channel: channel.id,
      displayName: channel.displayName,
      state,
      confirming,
      lastSeenAt: pair?.lastSeenAt ?? null,
      incidents: own,
      backups: [],
    };
  });
  // As rankBackupChannels requires of a candidate: healthy now, and not on its way to an incident.
  const usable = new Set(
    statuses.filter((s) => s.state === 'healthy' && !s.confirming).map((s) => s.channel),
  );
  for (const status of statuses) {
    const named = status.incidents.flatMap((i) => i.backupChannels);
    status.backups = [...new Set(named)].filter((id) => usable.has(id));
  }
  return statuses;
}
