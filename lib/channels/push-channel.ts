// The push channel: a user's message as one signed POST to the platform's SMS or push gateway
// (notifications.push.target, a json-format webhook target), carrying the user id, so that the
// gateway, which knows the user's phone or device, delivers it. It carries the in-app copy (a
// title and a short text). Retries, timeouts and how each answer is sorted are the webhook
// channel's (lib/channels/webhook-channel.ts).
import type { SendChannel } from './channel.ts';
import { postTo } from './webhook-channel.ts';

/** POSTs in flight per delivery job; each waits at most its target's timeoutMs. */
const IN_FLIGHT = 8;

export const pushChannel: SendChannel = {
  id: 'push',
  kind: 'send',
  needs: 'user',
  template: 'inapp',
  limits: () => ({ inFlight: IN_FLIGHT, perCall: 1 }),
  send: (messages, ctx) => {
    const target = ctx.config.notifications.push?.target;
    if (target === undefined)
      return Promise.resolve(
        messages.map(() => ({
          status: 'failed' as const,
          reason: 'the push channel has no gateway: notifications.push.target is not set in the config',
        })),
      );
    return Promise.all(messages.map((m) => postTo(target, m, ctx)));
  },
};
