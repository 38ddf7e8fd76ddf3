// What a message kind declares to plug into the spine: the cause events that send it, its
// category, its audience (a keyset-paged query, never loaded whole), the data its templates get,
// the channels it goes on and its stale rule. Fan-out and delivery know a kind only through this
// interface (lib/messages/registry.ts lists them); its templates live in templates/<id>/ and their
// variables in templates/kinds.ts. Every message has the dedupe key
// `cause:<cause id>:<kind>:<channel>:<recipient>`, unique in PostgreSQL, so however often a
// fan-out runs, a recipient gets a kind once per cause and channel.
import type { Config } from '../config/schema.ts';
import type { Pool, PoolClient, Queryable } from '../db/pool.ts';
import type { CauseEventPayload } from '../incidents/store.ts';
import type { LinkKeyring } from '../links.ts';
import type { Logger } from '../logger.ts';

export const categories = ['service', 'requested', 'promotional', 'security', 'ops'] as const;
/**
 * service: warnings about the user's own payments and orders; requested: alerts the user asked
 * for (restock); promotional: marketing; security: account check-ups; ops: forewarn's operators.
 */
export type Category = (typeof categories)[number];

/** Who a message goes to: a platform user, or an ops address (userId null). */
export interface Recipient {
  userId: string | null;
  /** The email address, if the recipient has one. */
  address: string | null;
  locale: string;
  /** The recipient's IANA zone (users.timezone): quiet hours are theirs. Absent: the config's zone. */
  timezone?: string | null;
  /** The channels this recipient gets, when narrower than the kind's (those a warning went on). */
  channels?: readonly string[];
  /**
   * The message answers trouble the recipient is in right now (a payment of theirs is stuck on
   * the channel): quiet hours never hold it.
   */
  urgent?: boolean;
}

/** One page of an audience, and where the next starts (null: the audience is exhausted). */
export interface AudiencePage<R extends Recipient = Recipient> {
  recipients: R[];
  cursor: string | null;
}

export interface MessageContext {
  db: Pool;
  platformDb: Pool;
  platformSchema: string;
  config: () => Config;
  logger: Logger;
  /** Signs links that act on an account. */
  linkKeys: LinkKeyring;
  /** The base of public links to forewarn's HTTP role (FOREWARN_PUBLIC_URL). */
  publicUrl: string;
}

/** A cause event as fan-out hands it to a kind: its payload, type and number, and the event's time. */
export interface CauseEvent<P extends CauseEventPayload = CauseEventPayload> {
  eventId: string;
  causeId: string;
  type: string;
  seq: number;
  payload: P;
}

/** A queued message, as its kind's stale rule sees it when the message's turn comes. */
export interface QueuedMessage {
  id: string;
  kind: string;
  causeId: string | null;
  userId: string | null;
  data: Record<string, unknown>;
}

export interface MessageKind<
  P extends CauseEventPayload = CauseEventPayload,
  Prepared = unknown,
  R extends Recipient = Recipient,
> {
  /** The kind's id: its templates' folder and the `kind` column. */
  id: string;
  category: Category;
  /**
   * The cause events that send it: the detector's id, the event types and, when the detector
   * has causes of several kinds (a low-stock episode, a restock), the cause kinds.
   */
  on: { detector: string; events: readonly string[]; kinds?: readonly string[] };
  /**
   * The kind whose message this one answers (a recovery notice answers its warning): the
   * frequency caps never hold it back, since the user was told of a problem and must hear it is
   * over. It is counted like any other message.
   */
  answers?: string;
  /** The channels it goes on (fan-out skips email for a recipient without an address). */
  channels: (config: Config) => readonly string[];
  /** Reads what every recipient's data needs, once per fan-out run (names, links, counts). */
  prepare?: (ctx: MessageContext, event: CauseEvent<P>) => Promise<Prepared>;
  /**
   * One page of recipients after `after`. `taken` counts the recipients this event already
   * recorded (for audiences with a size, such as a restock wave).
   */
  audience: (
    ctx: MessageContext,
    event: CauseEvent<P>,
    page: { after: string | null; limit: number; taken: number },
    prepared: Prepared,
  ) => Promise<AudiencePage<R>>;
  /** A recipient's template data (validated against the kind's schema when rendered). */
  data: (
    ctx: MessageContext,
    event: CauseEvent<P>,
    recipient: R,
    prepared: Prepared,
  ) => Record<string, unknown>;
  /**
   * Whether the cause still warrants the message, checked in each batch's transaction before its
   * messages are written (and holding what it needs locked, so a concurrent change waits): false
   * stops the fan-out of this kind.
   */
  stillTrue?: (client: PoolClient, event: CauseEvent<P>) => Promise<boolean>;
  /**
   * The stale rule: of the queued messages whose turn came, the ids to cancel rather than send
   * (the incident resolved, the stock ran out, the user came back).
   */
  stale?: (
    db: Queryable,
    ctx: Omit<MessageContext, 'db' | 'linkKeys'>,
    messages: readonly QueuedMessage[],
  ) => Promise<Set<string>>;
  /**
   * Ops alerts only: alerts with the same key that open within the configured wait reach ops as
   * one message (Alertmanager's group_by), e.g. a whole region down.
   */
  group?: (event: CauseEvent<P>) => string;
  /** The in-app message's link, from its data. */
  link?: (data: Record<string, unknown>) => string | null;
  /** Fields a dry run's JSON line adds for this kind (e.g. which reminder step a message is). */
  summary?: (event: CauseEvent<P>) => Record<string, unknown>;
}
