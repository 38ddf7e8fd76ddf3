// The channels delivery and fan-out know: one line per channel. A notification row names its
// channel by id; a row whose channel is not listed here fails with that reason, it never stops
// a delivery job.
import type { Channel } from './channel.ts';
import { emailChannel } from './email-channel.ts';
import { inAppChannel } from './inapp-channel.ts';
import { pushChannel } from './push-channel.ts';
import { webhookChannel } from './webhook-channel.ts';

export const registeredChannels: readonly Channel[] = [
  emailChannel,
  inAppChannel,
  webhookChannel,
  pushChannel,
];

export interface ChannelRegistry {
  /** The channel with this id, or undefined when none is registered. */
  get(id: string): Channel | undefined;
  /** Every registered channel, in registration order. */
  readonly all: readonly Channel[];
}

/** A registry of `list`; ids must be unique. */
export function channelRegistry(list: readonly Channel[]): ChannelRegistry {
  const byId = new Map<string, Channel>();
  for (const channel of list) {
    if (!/^[a-z][a-z0-9-]*$/.test(channel.id))
      throw new Error(
        `channel id ${JSON.stringify(channel.id)}: expected lowercase letters, digits and "-" (the channel column's check)`,
      );
    if (byId.has(channel.id)) throw new Error(`channel "${channel.id}" is registered twice`);
    byId.set(channel.id, channel);
  }
  return { get: (id) => byId.get(id), all: [...byId.values()] };
}

export const channels: ChannelRegistry = channelRegistry(registeredChannels);

/** Why a row naming `id` cannot be delivered: no channel has that id. */
export function unknownChannelReason(id: string, registry: ChannelRegistry = channels): string {
  return `unknown channel ${JSON.stringify(id)}: no channel implementation has that id (expected one of ${registry.all
    .map((c) => c.id)
    .join(', ')}; see lib/channels/registry.ts)`;
}
