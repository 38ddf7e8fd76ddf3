// The email channel: a rendered notification becomes one email (its Message-ID derived from the
// dedupe key, so a repeat after a crash is recognisable; RFC 8058 one-click List-Unsubscribe
// headers when the message has an unsubscribe link, lib/messages/unsubscribe.ts) and goes out through the process's pooled sender
// (lib/channels/email.ts), which sorts every failure into retryable and permanent.
import type { Config } from '../config/schema.ts';
import { reasonOf } from '../notifications/render.ts';
import type { NotificationDraft } from '../notifications/store.ts';
import type { RenderedMessage } from '../templates/store.ts';
import type { ChannelContext, OutgoingMessage, SendChannel, SendOutcome } from './channel.ts';
import { DeliveryError } from './delivery-error.ts';
import { messageIdFor, type EmailMessage } from './email.ts';

export const emailChannel: SendChannel = {
  id: 'email',
  kind: 'send',
  needs: 'address',
  // Two sends per pooled connection: one on the wire, one ready behind it. More would only wait,
  // rendered, in the sender's queue (other jobs' sends share the same connections).
  limits: (config: Config) => ({
    inFlight: Math.max(1, config.notifications.email.maxConnections * 2),
    perCall: 1,
  }),
  send: (messages, ctx) => Promise.all(messages.map((m) => sendOne(m, ctx))),
};

async function sendOne(
  { notification: n, rendered }: OutgoingMessage,
  ctx: ChannelContext,
): Promise<SendOutcome> {
  try {
    await ctx.resources
      .email()
      .send(emailMessageFor(n, rendered, ctx.config.notifications.email.messageIdDomain));
    return { status: 'sent' };
  } catch (error) {
    // An error of another kind than the sender's own is unexpected: retried, within the attempts.
    if (!(error instanceof DeliveryError) || error.retryable)
      return { status: 'retry', reason: reasonOf(error) };
    return { status: 'failed', reason: reasonOf(error), addressRejected: error.addressRejected };
  }
}

/** The email a rendered notification becomes: its Message-ID and unsubscribe link included. */
export function emailMessageFor(
  n: NotificationDraft,
  message: RenderedMessage,
  messageIdDomain: string,
): EmailMessage {
  const unsubscribe = typeof n.data.unsubscribeUrl === 'string' ? n.data.unsubscribeUrl : null;
  return {
    to: n.address!,
    subject: message.subject ?? '',
    text: message.text,
    html: message.html ?? '',
    messageId: messageIdFor(n.dedupeKey, messageIdDomain),
    ...(unsubscribe
      ? {
          headers: {
            'List-Unsubscribe': `<${unsubscribe}>`,
            // The URL takes a POST with this body and unsubscribes at once (RFC 8058).
            'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
          },
        }
      : {}),
  };
}
