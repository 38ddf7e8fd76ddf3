// Inline delivery, for the fan-out: of a batch's drafts, those whose channel can deliver within
// the batch's own transaction (in-app: a row in forewarn's inbox) are rendered up front and then
// recorded together with their deliveries in that transaction; the rest are recorded for the
// delivery jobs, which own the claims and retries that a send to another system needs.
import type { Queryable } from '../db/pool.ts';
import type { NotificationDraft } from '../notifications/store.ts';
import type { TemplateStore } from '../templates/store.ts';
import { linkFromData, missingRecipient, type InlineDelivery, type LinkOf } from './channel.ts';
import { channels, type ChannelRegistry } from './registry.ts';

export interface InlineBatch {
  /** How many drafts it delivers. */
  readonly size: number;
  /** The drafts it delivers. */
  readonly drafts: readonly NotificationDraft[];
  /**
   * Records its drafts as delivered, with their deliveries, in the caller's transaction; a dedupe
   * key already recorded is skipped, and so are the dedupe keys in `skip` (drafts the caller
   * records otherwise: held back by a frequency cap). `failed` counts those recorded as failed
   * (their template could not render; the reason is on the row).
   */
  record(client: Queryable, skip?: ReadonlySet<string>): Promise<{ delivered: number; failed: number }>;
}

export interface SplitBatch {
  inline: InlineBatch;
  /** To record with insertNotifications and hand to the delivery jobs. */
  queued: NotificationDraft[];
}

/**
 * Splits a batch's drafts and renders the inline ones (no database work: call it outside the
 * transaction, e.g. while the previous batch is written). A draft whose channel is unknown, or
 * whose recipient lacks what its channel needs, is queued: delivery fails it with the reason. So
 * is a draft held for later (quiet hours): delivery takes it when its time comes; and a draft the
 * policy withholds (opted out, suppressed), which is recorded as cancelled and never delivered.
 */
export function splitInline(
  templates: TemplateStore,
  drafts: readonly NotificationDraft[],
  options: { linkOf?: LinkOf; registry?: ChannelRegistry } = {},
): SplitBatch {
  const registry = options.registry ?? channels;
  const linkOf = options.linkOf ?? linkFromData;
  const groups = new Map<InlineDelivery, Array<{ draft: NotificationDraft; prepared: unknown }>>();
  const queued: NotificationDraft[] = [];
  const inlined: NotificationDraft[] = [];
  for (const draft of drafts) {
    const channel = registry.get(draft.channel);
    const inline = channel?.kind === 'write' ? channel.inline : undefined;
    // A message the delivery policy holds (quiet hours) waits in the queue for its time.
    if (
      !channel ||
      !inline ||
      draft.notBefore != null ||
      draft.withheldReason != null ||
      missingRecipient(channel, draft) !== null
    ) {
      queued.push(draft);
      continue;
    }
    let group = groups.get(inline);
    if (!group) groups.set(inline, (group = []));
    group.push({ draft, prepared: inline.prepare(templates, draft, linkOf(draft)) });
    inlined.push(draft);
  }
  return {
    queued,
    inline: {
      size: inlined.length,
      drafts: inlined,
      async record(client, skip) {
        const total = { delivered: 0, failed: 0 };
        for (const [inline, group] of groups) {
          const prepared = group.filter((g) => !skip?.has(g.draft.dedupeKey)).map((g) => g.prepared);
          if (prepared.length === 0) continue;
          const { delivered, failed } = await inline.record(client, prepared);
          total.delivered += delivered;
          total.failed += failed;
        }
        return total;
      },
    },
  };
}
