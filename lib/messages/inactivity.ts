// The inactivity watcher's message kinds: security check-ups. `security-checkup` is the first of
// an inactivity period, whatever step the user reached first; `security-checkup-reminder` a later
// step of the same period. Both go to the one user the cause is about, on the user channels, in
// the security category (held by the quiet hours configured for it, in the user's own zone).
//
// The copy is a check-up, not an order (NIST SP 800-63B rev. 4: no forced periodic password
// changes): it carries no password, code, token or sign-in link, only the configured security
// page (notifications.links.securityUrl, taken as it is) or none. A check-up whose user came
// back (or is no longer active) before it is sent is cancelled as stale.
import type { Queryable } from '../db/pool.ts';
import { lockIncidentIfOpen } from '../incidents/store.ts';
import type { CauseEventPayload } from '../incidents/store.ts';
import { readActiveIdleSince, readCheckupRecipient } from '../platform/inactive-users.ts';
import { resolveLocale } from '../templates/locale.ts';
import { requiredLocales, type TemplateInput } from '../../templates/kinds.ts';
import { DETECTOR, type PeriodOpened, type StepReached } from '../../detectors/inactivity/index.ts';
import type { CauseEvent, MessageContext, MessageKind, QueuedMessage, Recipient } from './kind.ts';

/** What a check-up's cause event carries (detectors/inactivity/types.ts). */
export type CheckupPayload = CauseEventPayload & (PeriodOpened | StepReached);

/** The user, read once per fan-out: null when they are gone or no longer active. */
interface Prepared {
  recipient: Recipient | null;
}

async function prepare(ctx: MessageContext, event: CauseEvent<CheckupPayload>): Promise<Prepared> {
  const user = await readCheckupRecipient(ctx.platformDb, ctx.platformSchema, event.payload.userId);
  if (!user || user.status !== 'active') return { recipient: null };
  return {
    recipient: { userId: user.id, address: user.email, locale: user.locale, timezone: user.timezone },
  };
}

/** The cause's one user, in one page. */
async function audience(
  _ctx: MessageContext,
  _event: CauseEvent<CheckupPayload>,
  page: { after: string | null },
  prepared: Prepared,
) {
  if (page.after !== null || !prepared.recipient) return { recipients: [], cursor: null };
  return { recipients: [prepared.recipient], cursor: null };
}

const displayLocales = new Set<string>(requiredLocales);

/** A day as the user reads it: in their own zone, in the language of the template they get. */
export function localDate(at: number, locale: string, timeZone: string | null | undefined): string {
  const language = resolveLocale(displayLocales, locale);
  return new Intl.DateTimeFormat(language, {
    dateStyle: 'long',
    ...(timeZone ? { timeZone } : {}),
  }).format(at);
}

function checkupData(ctx: MessageContext, event: CauseEvent<CheckupPayload>, recipient: Recipient) {
  const config = ctx.config().notifications;
  const p = event.payload;
  return {
    siteName: config.siteName,
    lastActiveDate: localDate(p.since, recipient.locale, recipient.timezone),
    timezone: recipient.timezone ?? ctx.config().timezone,
    neverSignedIn: p.neverSignedIn,
    idleDays: Math.max(1, p.idleDays),
    stepDays: p.stepDays,
    securityUrl: config.links.securityUrl,
  };
}

/**
 * The stale rule: a check-up is cancelled when its period has ended (the sweep resolved it) or
 * the user is, by the platform's data now, back or no longer active.
 */
async function userCameBack(
  db: Queryable,
  ctx: Omit<MessageContext, 'db' | 'linkKeys'>,
  messages: readonly QueuedMessage[],
): Promise<Set<string>> {
  const causes = [...new Set(messages.map((m) => m.causeId).filter((id): id is string => id !== null))];
  const { rows } = await db.query<{ id: string; since: number; open: boolean }>(
    `SELECT id, (open_evidence->>'since')::float8 AS since, resolved_at IS NULL AS open
       FROM forewarn.incidents WHERE id = ANY ($1::bigint[])`,
    [causes],
  );
  const periods = new Map(rows.map((r) => [r.id, r]));
  const users = [...new Set(messages.map((m) => m.userId).filter((id): id is string => id !== null))];
  const idleSince = await readActiveIdleSince(ctx.platformDb, ctx.platformSchema, users);
  const stale = new Set<string>();
  for (const m of messages) {
    const period = m.causeId === null ? undefined : periods.get(m.causeId);
    const since = m.userId === null ? undefined : idleSince.get(m.userId);
    if (!period || !period.open || since !== period.since) stale.add(m.id);
  }
  return stale;
}

/** What both check-ups share: the category, the one user, the period's rules and the link. */
const checkupKind = {
  category: 'security',
  channels: (config) => config.notifications.userChannels,
  prepare,
  audience,
  // Written only while the period is open (its row locked meanwhile).
  stillTrue: (client, event) => lockIncidentIfOpen(client, event.causeId),
  stale: userCameBack,
  link: (data) => (typeof data.securityUrl === 'string' ? data.securityUrl : null),
  summary: (event) => ({ step: event.payload.stepDays }),
} satisfies Omit<MessageKind<CheckupPayload, Prepared>, 'id' | 'on' | 'data'>;

export const securityCheckup: MessageKind<CheckupPayload, Prepared> = {
  ...checkupKind,
  id: 'security-checkup',
  on: { detector: DETECTOR, events: ['opened'] },
  data: (ctx, event, recipient): TemplateInput<'security-checkup'> => checkupData(ctx, event, recipient),
};

export const securityCheckupReminder: MessageKind<CheckupPayload, Prepared> = {
  ...checkupKind,
  id: 'security-checkup-reminder',
  on: { detector: DETECTOR, events: ['step'] },
  data: (ctx, event, recipient): TemplateInput<'security-checkup-reminder'> => ({
    ...checkupData(ctx, event, recipient),
    previousStepDays: event.payload.previousStepDays ?? event.payload.stepDays,
  }),
};

export const inactivityMessageKinds: readonly MessageKind<CheckupPayload, Prepared>[] = [
  securityCheckup,
  securityCheckupReminder,
];
