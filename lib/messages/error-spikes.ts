// The error-spikes watcher's message kinds: one ops alert when an error-code incident opens
// (templates/ops-error-spike). Ops only: its audience is the configured ops addresses and webhook targets, in one page.
// Incidents of one code that open within the ops group wait (a count and a surge) reach ops as
// one message.
import type { Config } from '../config/schema.ts';
import type { CauseEventPayload } from '../incidents/store.ts';
import type { SpikeOpened } from '../../detectors/error-spikes/index.ts';
import { DETECTOR } from '../../detectors/error-spikes/index.ts';
import type { TemplateInput } from '../../templates/kinds.ts';
import type { CauseEvent, MessageKind } from './kind.ts';
import { opsAudience, opsChannels } from './shared.ts';

/** What an error-spike cause event carries (see SpikeChange in detectors/error-spikes). */
export type ErrorSpikePayload = CauseEventPayload & SpikeOpened;

export const opsErrorSpike: MessageKind<ErrorSpikePayload> = {
  id: 'ops-error-spike',
  category: 'ops',
  on: { detector: DETECTOR, events: ['opened'] },
  channels: opsChannels,
  // Ops addresses and targets are a handful: one page, whatever `after` says.
  audience: opsAudience,

  data(ctx, event) {
    return errorSpikeData(ctx.config(), event);
  },

  group: (event) => `code:${event.payload.subject.code}`,
};

export const errorSpikesMessageKinds: readonly MessageKind<ErrorSpikePayload>[] = [opsErrorSpike];

/** The ops-error-spike template's data from an opened event. */
export function errorSpikeData(
  config: Config,
  event: CauseEvent<ErrorSpikePayload>,
): TemplateInput<'ops-error-spike'> {
  const p = event.payload;
  const e = p.evidence;
  return {
    incidentId: event.causeId,
    code: p.code,
    rule: p.kind,
    countNow: e.countNow,
    countBefore: e.countBefore,
    windowMinutes: e.windowMinutes,
    openedAt: new Date(p.at).toISOString(),
    // Ops read times in the config's zone.
    timeZone: config.timezone,
    topChannels: e.topChannels,
    topRegions: e.topRegions,
    exampleAttemptIds: e.exampleAttemptIds,
    dashboardUrl:
      config.notifications.links.dashboardUrl?.replace('{incidentId}', encodeURIComponent(event.causeId)) ??
      null,
  };
}
