// The watchdog's ops messages (kind ops-watchdog): one per ops address and webhook target per
// change of a subject. The dedupe key names the subject, its episode (the last tick or newest row
// when it started failing, the same on every replica) and the state, so a second replica or a
// retried check records nothing twice.
import type { Config } from '../config/schema.ts';
import { opsAlertDrafts } from '../notifications/ops-drafts.ts';
import type { NotificationDraft } from '../notifications/store.ts';
import type { Verdict } from './decide.ts';

export const WATCHDOG_KIND = 'ops-watchdog';

export type WatchdogMessageState = 'stopped' | 'recovered' | 'lagging' | 'caught-up';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The drafts for one verdict with a transition; none for a verdict without. */
export function watchdogDrafts(
  config: Pick<Config, 'notifications' | 'timezone'>,
  verdict: Verdict,
  now: number,
): NotificationDraft[] {
  if (verdict.transition === null) return [];
  const failing = verdict.transition === 'alert';
  const state: WatchdogMessageState =
    verdict.watched === 'ticks' ? (failing ? 'stopped' : 'recovered') : failing ? 'lagging' : 'caught-up';
  const episodeState = failing ? verdict.next : verdict.recoveredFrom!;
  const episode = new Date(episodeState.episode ?? episodeState.since).toISOString();
  const data = {
    subject: verdict.subject,
    watched: verdict.watched,
    state,
    detector: verdict.detector,
    lastTickAt: verdict.watched === 'ticks' ? iso(verdict.lastAt) : null,
    lastOutcome: verdict.lastOutcome,
    newestAt: verdict.watched === 'data' ? iso(verdict.lastAt) : null,
    ageSeconds: Math.round(verdict.ageMs / 1000),
    boundSeconds: Math.round(verdict.boundMs / 1000),
    watchingSince: new Date(verdict.next.firstSeenAt).toISOString(),
    failingSince: new Date(episodeState.since).toISOString(),
    checkedAt: new Date(now).toISOString(),
    timeZone: config.timezone,
  };
  return opsAlertDrafts(config.notifications.ops, {
    cause: `watchdog:${verdict.subject}:${episode}`,
    kind: WATCHDOG_KIND,
    key: `${WATCHDOG_KIND}-${state}`,
    data,
  });
}
