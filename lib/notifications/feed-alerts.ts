// The ops alert for a stalled data feed: most payment pairs went silent at once, or attempts
// arrive again. One email per ops address (and one POST per ops webhook target) per change, recorded in the tick's own transaction
// (so a crash cannot lose it or send it twice) and delivered like any other notification.
import type { PaymentHealthFindings } from '../../detectors/payment-health/index.ts';
import type { Config } from '../config/schema.ts';
import { opsAlertDrafts } from './ops-drafts.ts';
import type { NotificationDraft } from './store.ts';

export function feedAlertDrafts(
  config: Config['notifications'],
  /** The config's `timezone`: ops read the alert's times in it. */
  timeZone: string,
  detector: string,
  feed: PaymentHealthFindings['feed'],
  now: number,
  openIncidents: number,
): NotificationDraft[] {
  if ((!feed.started && !feed.ended) || feed.since === null) return [];
  const state = feed.started ? 'silent' : 'resumed';
  const silentSince = new Date(feed.since).toISOString();
  const data = {
    detector,
    state,
    silentSince,
    resumedAt: state === 'resumed' ? new Date(now).toISOString() : null,
    silentPairs: feed.silentPairs,
    seenPairs: feed.seenPairs,
    openIncidents,
    timeZone,
  };
  return opsAlertDrafts(config.ops, {
    cause: `feed:${detector}:${silentSince}`,
    kind: 'ops-feed-silent',
    key: `ops-feed-silent-${state}`,
    data,
  });
}
