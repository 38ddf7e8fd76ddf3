// The in-app channel: a message is a row in forewarn's own inbox table, so delivering it is a
// write, made in the transaction that marks the notification sent: it exists exactly once. The
// fan-out delivers in-app messages itself, in each batch's transaction (`inline`), so that a
// large audience's inbox rows need no claim, job or second write.
import { reasonOf, renderNotification } from '../notifications/render.ts';
import {
  insertInboxEntries,
  recordInAppDeliveries,
  type InAppDelivery,
  type NotificationDraft,
} from '../notifications/store.ts';
import type { TemplateStore } from '../templates/store.ts';
import type { InlineDelivery, OutgoingMessage, WriteChannel } from './channel.ts';

const inline: InlineDelivery<InAppDelivery> = {
  prepare: renderInApp,
  record: recordInAppDeliveries,
};

export const inAppChannel: WriteChannel = {
  id: 'inapp',
  kind: 'write',
  needs: 'user',
  write: (client, messages) => insertInboxEntries(client, messages.map(inboxEntry)),
  inline,
};

function inboxEntry({ notification: n, rendered, link }: OutgoingMessage) {
  return {
    notificationId: n.id,
    // Delivery hands over only messages whose recipient has what the channel needs.
    userId: n.userId!,
    kind: n.kind,
    title: rendered.title ?? '',
    body: rendered.text,
    link,
  };
}

/** A draft rendered for the inbox; a template failure is kept, to be recorded as the reason. */
export function renderInApp(
  templates: TemplateStore,
  draft: NotificationDraft,
  link: string | null,
): InAppDelivery {
  try {
    const message = renderNotification(templates, draft);
    return { draft, message: { title: message.title ?? '', body: message.text, link } };
  } catch (error) {
    return { draft, message: { error: reasonOf(error) } };
  }
}
