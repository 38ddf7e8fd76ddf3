// The unsubscribe link of users' emails: every email of a category a user can stop by email
// (service, requested, promotional) carries a signed link to the HTTP role's /unsubscribe, as the
// `unsubscribeUrl` template variable (the footer) and the List-Unsubscribe header
// (lib/channels/email-channel.ts). Security and ops emails have none: a check-up must never look
// like a mass mailing, and ops mail goes to forewarn's own team.
import { unsubscribeUrl } from '../links.ts';
import type { Category, MessageContext } from './kind.ts';

/** The categories whose emails carry an unsubscribe link. */
export const UNSUBSCRIBABLE_BY_EMAIL: ReadonlySet<Category> = new Set([
  'service',
  'requested',
  'promotional',
]);

/** A message's data, with `unsubscribeUrl` added when it is an email that carries one. */
export function withUnsubscribeLink(
  ctx: Pick<MessageContext, 'config' | 'linkKeys' | 'publicUrl'>,
  message: { category: Category; channel: string; userId: string | null },
  data: Record<string, unknown>,
  nowMs: number,
): Record<string, unknown> {
  if (
    message.channel !== 'email' ||
    message.userId === null ||
    !UNSUBSCRIBABLE_BY_EMAIL.has(message.category)
  ) {
    return data;
  }
  const ttlDays = ctx.config().notifications.links.unsubscribeTtlDays;
  return {
    ...data,
    unsubscribeUrl: unsubscribeUrl({
      publicUrl: ctx.publicUrl,
      keys: ctx.linkKeys,
      userId: message.userId,
      category: message.category,
      channel: message.channel,
      expiresAt: Math.floor(nowMs / 1000) + ttlDays * 86_400,
    }),
  };
}
