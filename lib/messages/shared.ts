// What many message kinds share: the ops audience, the "its cause has resolved" stale rule, the
// signed link to a user's notification settings and the zone a recipient's times are printed in.
import type { Config } from '../config/schema.ts';
import type { Queryable } from '../db/pool.ts';
import { signedUrl } from '../links.ts';
import { isTimeZone } from '../policy/quiet-hours.ts';
import type { AudiencePage, MessageContext, QueuedMessage, Recipient } from './kind.ts';

/** The channels ops alerts go on: email to the ops addresses, the webhook to the ops targets. */
export const opsChannels = (): readonly string[] => ['email', 'webhook'];

/**
 * Who gets ops alerts: each ops address by email, and each webhook target named in
 * notifications.ops.webhooks (its id is the address), each on its own channel only.
 */
export function opsRecipients(config: Config): Recipient[] {
  const ops = config.notifications.ops;
  return [
    ...ops.emails.map((address) => ({ userId: null, address, locale: ops.locale, channels: ['email'] })),
    ...ops.webhooks.map((target) => ({
      userId: null,
      address: target,
      locale: ops.locale,
      channels: ['webhook'],
    })),
  ];
}

/** Ops alerts go to every configured ops address and target, in one page. */
export async function opsAudience(
  ctx: MessageContext,
  _event: unknown,
  page: { after: string | null },
): Promise<AudiencePage> {
  if (page.after !== null) return { recipients: [], cursor: null };
  return { recipients: opsRecipients(ctx.config()), cursor: null };
}

/** The stale rule of messages about something that must still be true: their cause has resolved. */
export async function causeResolved(
  db: Queryable,
  _ctx: unknown,
  messages: readonly QueuedMessage[],
): Promise<Set<string>> {
  const causes = [...new Set(messages.map((m) => m.causeId).filter((id): id is string => id !== null))];
  if (causes.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    'SELECT id FROM forewarn.incidents WHERE id = ANY ($1::bigint[]) AND resolved_at IS NOT NULL',
    [causes],
  );
  const resolved = new Set(rows.map((r) => r.id));
  return new Set(messages.filter((m) => m.causeId !== null && resolved.has(m.causeId)).map((m) => m.id));
}

/** The settings link acts on the account, so it carries a signed token naming the user. */
export function preferencesUrl(ctx: Pick<MessageContext, 'config' | 'linkKeys'>, userId: string): string {
  const links = ctx.config().notifications.links;
  const expiresAt = Math.floor(Date.now() / 1000) + links.ttlDays * 86_400;
  return signedUrl(
    links.preferencesUrl,
    { userId, purpose: 'notification-preferences', expiresAt },
    ctx.linkKeys,
  );
}

/**
 * The zone a recipient's message times are printed in: their own (users.timezone) when Intl knows
 * it, the config's otherwise (ops, and users without one).
 */
export function messageTimeZone(
  ctx: Pick<MessageContext, 'config'>,
  recipient: { timezone?: string | null },
): string {
  return recipient.timezone && isTimeZone(recipient.timezone) ? recipient.timezone : ctx.config().timezone;
}
