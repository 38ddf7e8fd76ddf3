// The one interface every delivery channel implements (email, in-app, webhook), in the way
// of Alertmanager's integrations: delivery (lib/notifications/deliver.ts) claims, renders, hands
// each channel its own messages and records the outcomes, and knows no channel by name.
// A channel is one of two kinds, because there are two ways a message can be delivered once:
// - `send`: another system takes the message (an SMTP server, an HTTP endpoint). It is sent
//   first and marked sent after, in group commits; a crash in between sends it again, so the
//   channel gives the receiver a stable id to recognise a repeat (Message-ID, a webhook's
//   idempotency key). send() sorts each failure into retry (temporary) or failed (permanent).
// - `write`: delivering is a write to forewarn's own database (the in-app inbox). It is written
//   in the very transaction that marks the messages sent, so each exists exactly once.
import type { Config } from '../config/schema.ts';
import type { Queryable } from '../db/pool.ts';
import type { Logger } from '../logger.ts';
import type { ClaimedNotification, NotificationDraft } from '../notifications/store.ts';
import type { RenderedMessage, TemplateStore } from '../templates/store.ts';
import type { EmailSender } from './email.ts';

/** What a recipient must have for the channel to reach it: an address, or a platform user id. */
export type ChannelNeeds = 'address' | 'user';

/** A claimed notification, rendered with its kind's template for this channel. */
export interface OutgoingMessage {
  /** The row: id, dedupe key (the same on every attempt), recipient, data, attempts so far. */
  notification: ClaimedNotification;
  rendered: RenderedMessage;
  /** Where the message leads (an in-app message's tap target, a webhook's link field), or null. */
  link: string | null;
}

/** What became of one message handed to a channel. */
export type SendOutcome =
  | { status: 'sent' }
  /** Temporary: tried again after a backoff (at least `afterMs`, e.g. a Retry-After), while attempts last. */
  | { status: 'retry'; reason: string; afterMs?: number }
  /**
   * Permanent: recorded as failed with the reason, never tried again. `addressRejected`: the
   * failure says the address itself is bad (no such mailbox, malformed), not just this message;
   * delivery then adds it to the channel's suppression list in the same transaction.
   */
  | { status: 'failed'; reason: string; addressRejected?: boolean };

/**
 * What channels use to deliver, made once per process and shared by every delivery job (the
 * pooled SMTP sender). A new channel adds its own resource here (the webhook: the environment its
 * secrets come from), and the job that builds the delivery context supplies it.
 */
export interface ChannelResources {
  /** The email sender (SMTP pool or .eml outbox), created on first use. */
  email: () => EmailSender;
  /**
   * Secrets the config names by environment variable, and whether production's rules apply: the
   * process's own environment unless given (tests give their own).
   */
  environment?: ChannelEnvironment;
}

export interface ChannelEnvironment {
  /** The value of the environment variable (a webhook's signing secret), undefined when unset. */
  secret(variable: string): string | undefined;
  /** NODE_ENV=production: what development lets by (plain http to localhost) is refused. */
  production: boolean;
}

export interface ChannelContext {
  /** The config the delivery job runs with. */
  config: Config;
  /** Delivery's logger ({ component: 'delivery' }). */
  logger: Logger;
  resources: ChannelResources;
}

interface ChannelCommon {
  /** The id in the `channel` column and in templates' file names (`<locale>.<id>.liquid`). */
  readonly id: string;
  /** A message whose recipient lacks it fails without being handed over. */
  readonly needs: ChannelNeeds;
  /**
   * The templates its messages are rendered with (`templates/<kind>/<locale>.<template>.liquid`):
   * its own id unless set. A webhook, say, may carry the in-app copy.
   */
  readonly template?: string;
}

export interface SendChannel extends ChannelCommon {
  readonly kind: 'send';
  /**
   * How delivery hands messages over: `inFlight` calls of send() at once per job, each with up to
   * `perCall` messages (1 unless the receiver takes batches). Email keeps two sends in flight per
   * pooled connection: one on the wire, one ready behind it.
   */
  limits(config: Config): { inFlight: number; perCall: number };
  /** Delivers the messages; one outcome per message, in their order. Never rejects for one message's failure. */
  send(messages: readonly OutgoingMessage[], ctx: ChannelContext): Promise<SendOutcome[]>;
}

export interface WriteChannel extends ChannelCommon {
  readonly kind: 'write';
  /**
   * Writes the messages' deliveries in `client`'s transaction, the one that has just marked them
   * sent (only the rows still this job's are passed): both commit, or neither.
   */
  write(client: Queryable, messages: readonly OutgoingMessage[]): Promise<void>;
  /**
   * Delivery within the fan-out's own batch transaction, needing no claim or job: the fan-out
   * prepares a batch's drafts (rendered, outside the transaction, while it reads ahead) and
   * records them with their deliveries in the batch's transaction (lib/channels/inline.ts).
   */
  readonly inline?: InlineDelivery;
}

export type Channel = SendChannel | WriteChannel;

/** A draft rendered for inline delivery, or why it could not be (it is then recorded as failed). */
export interface InlineDelivery<P = unknown> {
  prepare(templates: TemplateStore, draft: NotificationDraft, link: string | null): P;
  /** Records the drafts and their deliveries; a dedupe key already recorded is skipped. */
  record(client: Queryable, prepared: readonly P[]): Promise<{ delivered: number; failed: number }>;
}

/** The link a notification leads to, from its data (a message kind's `link`). */
export type LinkOf = (n: NotificationDraft) => string | null;

/**
 * Until the message kinds say (MessageKind.link), a message leads where its data's `payUrl`
 * points, as the payment warnings' do.
 */
export const linkFromData: LinkOf = (n) => (typeof n.data.payUrl === 'string' ? n.data.payUrl : null);

/** Whether the recipient has what the channel needs, and if not, the reason it fails with. */
export function missingRecipient(channel: Channel, n: NotificationDraft): string | null {
  if (channel.needs === 'address' && !n.address)
    return `channel "${channel.id}" needs an address and notification ${describe(n)} has none`;
  if (channel.needs === 'user' && !n.userId)
    return `channel "${channel.id}" needs a user and notification ${describe(n)} has none`;
  return null;
}

const describe = (n: NotificationDraft) =>
  'id' in n ? `${String(n.id)} (${n.dedupeKey})` : JSON.stringify(n.dedupeKey);
